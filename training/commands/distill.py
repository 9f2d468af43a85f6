"""`verify distill`: train a small, fast student embedder from a trained teacher model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from verify.cli.common import add_set_flag, print_json
from verify.data.protocols import FOLDER_LAYOUTS

_PROTOCOLS = ("auto", *FOLDER_LAYOUTS)
DEFAULT_STUDENT = "mobilenetv3_small_100"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "distill",
        help="distill a teacher model into a small student (KD, embedding, RKD, metric loss); writes RUN/model.*",
        description="Train a student embedder from a frozen teacher on the teacher's input size and "
        "preprocessing. Objectives and their default weights: kd_weight=1 embedding_weight=1 "
        "rkd_distance_weight=1 rkd_angle_weight=0 metric_weight=0, each changed with its own --set (e.g. --set "
        "kd_weight=0 --set metric_weight=1; every `verify train` config key too).",
    )
    p.add_argument("--teacher", type=Path, required=True, help="teacher model directory (model.json + weights)")
    p.add_argument(
        "--student", default=DEFAULT_STUDENT, help=f"student timm backbone name (default: {DEFAULT_STUDENT})"
    )
    p.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        help="dataset folder(s) with identity labels; several are pooled, their identities kept apart",
    )
    p.add_argument("--out", type=Path, required=True, help="run folder to create")
    p.add_argument(
        "--protocol", choices=_PROTOCOLS, help="dataset layout of every --data folder (default: auto-detect each)"
    )
    p.add_argument("--config", type=Path, help="YAML file of TrainConfig and DistillConfig keys")
    add_set_flag(p, "--set epochs=5 --set temperature=4")
    p.add_argument("--seed", type=int, help="random seed (split, sampling, weights)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the run summary as one JSON object")
    p.set_defaults(func=run)


def _values(args: argparse.Namespace) -> dict[str, Any]:
    """YAML file values, then --set overrides, then the dedicated flags."""
    import yaml

    from training.config import parse_overrides
    from verify.errors import ConfigError

    values: dict[str, Any] = {}
    if args.config is not None:
        try:
            loaded = yaml.safe_load(args.config.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{args.config}: cannot read the config file ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{args.config}: a config file must hold a mapping of keys to values")
        values.update(loaded)
    for key, value in parse_overrides(args.overrides).items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            value = {**values[key], **value}
        values[key] = value
    flags = {"protocol": args.protocol, "seed": args.seed, "device": args.device}
    values.update({k: v for k, v in flags.items() if v is not None})
    return values


def run(args: argparse.Namespace) -> int:
    from training.config import load_config
    from training.distill import create_distill_config, distill, split_config_values, teacher_defaults
    from training.runs import check_new_run_folder

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    check_new_run_folder(args.out, [args.teacher])  # a distillation has no --resume: a used folder is refused
    train_values, distill_values = split_config_values(_values(args))
    dc = create_distill_config(distill_values)
    config = load_config(None, (), base={**teacher_defaults(args.teacher, args.student), **train_values})
    summary = distill(args.teacher, config, dc, args.data, args.out, progress=not args.quiet)
    if args.json:
        print_json(summary)
        return 0
    val, teacher = summary.get("val") or {}, summary.get("teacher_val") or {}
    print(
        f"distilled {summary['epochs']} epoch(s), best epoch {summary['best_epoch']}: "
        f"val EER {_fmt(val.get('val_eer'))} (teacher {_fmt(teacher.get('val_eer'))}), "
        f"TAR@FAR=1e-2 random {_fmt(val.get('tar@far=0.01_random'))} "
        f"(teacher {_fmt(teacher.get('tar@far=0.01_random'))}); {summary['seconds_per_epoch']:.1f} s/epoch "
        f"-> {summary['run']}"
    )
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
