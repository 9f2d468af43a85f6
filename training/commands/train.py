"""`verify train`: train (or fine-tune, or resume) a Siamese embedder with metric learning.

Under `torchrun --nproc_per_node N` the same command trains with DDP (gloo on CPU, NCCL on GPUs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verify.cli.common import add_set_flag, print_json
from verify.data.protocols import FOLDER_LAYOUTS
from verify.modality import MODALITIES

if TYPE_CHECKING:
    from training.config import TrainConfig

_PROTOCOLS = ("auto", *FOLDER_LAYOUTS)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a face or signature embedder (metric learning); writes RUN/model.json + model.safetensors",
        description="Train a Siamese embedder on identity-labelled images. Identities are split into disjoint "
        "train / validation sets (RUN/split.json); the best epoch by validation EER is the run's model.",
    )
    p.add_argument(
        "--data",
        type=Path,
        nargs="+",
        help="dataset folder(s) (required unless --resume); several are pooled, their identities kept apart "
        "(e.g. your own scans and synthetic writers)",
    )
    p.add_argument("--out", type=Path, required=True, help="run folder to create (or resume)")
    p.add_argument("--config", type=Path, help="YAML file of TrainConfig fields")
    add_set_flag(p, "--set epochs=20 --set loss_params.margin=0.3")
    p.add_argument("--init", type=Path, help="fine-tune this model directory instead of starting from scratch")
    p.add_argument("--replay", type=Path, help="with --init: old dataset to replay so old identities stay good")
    p.add_argument("--replay-fraction", type=float, help="share of each batch's identities from --replay (0.25)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last saved epoch")
    p.add_argument(
        "--modality",
        choices=MODALITIES,
        help="what the images show (default: the --init model's, else signature)",
    )
    p.add_argument(
        "--protocol", choices=_PROTOCOLS, help="dataset layout of every --data folder (default: auto-detect each)"
    )
    p.add_argument("--seed", type=int, help="random seed (split, sampling, weights); runs repeat on CPU")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the run summary as one JSON object")
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> list[str]:
    flags = {"modality": args.modality, "protocol": args.protocol, "seed": args.seed, "device": args.device}
    if args.replay_fraction is not None:
        flags["replay_fraction"] = args.replay_fraction
    elif args.replay is not None and not args.resume:
        flags["replay_fraction"] = 0.25
    return list(args.overrides) + [f"{k}={v}" for k, v in flags.items() if v is not None]


def run(args: argparse.Namespace) -> int:
    from training.config import load_config
    from training.runs import check_new_run_folder, read_run_info
    from training.trainer import train
    from verify.errors import ConfigError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    base, data, init, replay = None, args.data, args.init, args.replay
    if args.resume:
        saved = read_run_info(args.out)
        base = json.loads((args.out / "config.json").read_text())
        check_same_run(saved, data, init, replay)
        data = data or list(saved["data"])
        init = init or (Path(saved["init"]) if saved.get("init") else None)
        replay = replay or (Path(saved["replay"]) if saved.get("replay") else None)
    elif data is None:
        raise ConfigError("--data is required (or --resume a run)")
    else:
        if _is_main():
            check_new_run_folder(args.out, [init] if init is not None else [])
        if init is not None:
            base = init_defaults(init)
    if args.replay is not None and args.init is None and not args.resume:
        raise ConfigError("--replay needs --init (it replays the data of the model being fine-tuned)")
    config = load_config(args.config, _overrides(args), base=base)
    if init is not None and not args.resume:
        check_init_network(config, base or {})
    if args.resume:
        check_resume_settings(config, base or {})
    summary = train(config, data, args.out, init=init, resume=args.resume, replay=replay, progress=not args.quiet)
    if not _is_main():
        return 0
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    return 0


FINETUNE_LR = 1e-4


def init_defaults(init: str | Path) -> dict[str, Any]:
    """TrainConfig values implied by the model being fine-tuned, so that config.json describes the run.

    The network, input size, normalisation and preprocessing come from the --init card whatever the config
    says (`training.trainer.build_model`); these defaults only keep the saved config and name truthful:
    modality, height, width, channels, dim, preprocessing, backbone (the timm name, or the architecture kind
    such as "dlib_resnet") and name ("<init name>-finetuned"); and a fine-tuning learning rate (1e-4, no
    warm-up). YAML and --set values still override them.
    """
    from verify.models.card import read_card

    card = read_card(init)
    inp, arch = card["input"], card.get("architecture") or {}
    values: dict[str, Any] = {
        "modality": card["modality"],
        "height": int(inp["height"]),
        "width": int(inp["width"]),
        "channels": int(inp["channels"]),
        "preprocessing": str((card.get("preprocessing") or {}).get("kind", "resize")),
        "backbone": str(arch.get("backbone") or arch.get("kind", "timm")),
        "name": f"{card.get('name') or Path(init).name}-finetuned",
        "lr": FINETUNE_LR,  # a trained network is nudged, not retrained: 1/10 of the from-scratch default
        "warmup_epochs": 0.0,
    }
    if "dim" in arch:
        values["dim"] = int(arch["dim"])
    return values


def check_init_network(config: TrainConfig, defaults: dict[str, Any]) -> None:
    """Refuse a fine-tuning config (YAML or --set) that asks for another backbone, embedding size or number of
    channels than the --init network has: those cannot change under fine-tuning (they were ignored before). The
    input height and width may change (the backbones pool globally).

    Raises:
        ConfigError: naming the setting, the network's value and the asked one.
    """
    from verify.errors import ConfigError

    changed = _changed(config, defaults, ("backbone", "dim", "channels"))
    if changed:
        key, have, want = changed
        raise ConfigError(
            f"the --init network has {key} {have}; {key}={want} cannot change it "
            "(fine-tuning keeps the network; train from scratch for another)"
        )


# Settings a checkpoint is tied to: resuming with another value would load weights into another network, or go on
# training one network on other inputs.
RUN_FIXED = ("modality", "backbone", "dim", "channels", "height", "width", "preprocessing", "preprocessing_params")


def check_resume_settings(config: TrainConfig, saved: dict[str, Any]) -> None:
    """Refuse a --resume whose --set (or YAML) changes a setting the run's checkpoint is tied to (`RUN_FIXED`),
    before anything is written (config.json was rewritten, then loading the checkpoint failed).

    Raises:
        ConfigError: naming the setting, the run's value and the asked one.
    """
    from verify.errors import ConfigError

    changed = _changed(config, saved, RUN_FIXED)
    if changed:
        key, have, want = changed
        raise ConfigError(
            f"the run was started with {key}={have}; --resume cannot change it to {want} "
            "(start a new run, or --init from this run's model)"
        )


def _changed(config: TrainConfig, fixed: dict[str, Any], keys: Sequence[str]) -> tuple[str, Any, Any] | None:
    """The first of `keys` whose config value differs from `fixed`'s, as (key, fixed value, config value)."""
    for key in keys:
        if key in fixed and getattr(config, key) != fixed[key]:
            return key, fixed[key], getattr(config, key)
    return None


def check_same_run(saved: dict[str, Any], data: Any, init: Path | None, replay: Path | None) -> None:
    """Refuse --resume with --data, --init or --replay other than the run's own (run.json): the run's split and
    validation writers come from its data, so other data would be validated on writers it lacks.

    Raises:
        ConfigError: naming the flag and the run's value.
    """
    from verify.errors import ConfigError

    def same(a: Any, b: Any) -> bool:
        return Path(a).resolve() == Path(b).resolve()

    if data and (len(data) != len(saved["data"]) or not all(map(same, data, saved["data"]))):
        run_data = ", ".join(str(d) for d in saved["data"])
        raise ConfigError(f"--resume continues the run on its own data ({run_data}); drop --data or start a new run")
    for flag, given, key in (("--init", init, "init"), ("--replay", replay, "replay")):
        if given is not None and (not saved.get(key) or not same(given, saved[key])):
            raise ConfigError(
                f"--resume continues the run from its own {flag} ({saved.get(key) or 'none'}); drop {flag}"
            )


def _is_main() -> bool:
    """False on DDP ranks other than 0 (torchrun sets RANK)."""
    return os.environ.get("RANK", "0") == "0"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _print_summary(s: dict) -> None:
    val, before = s.get("val") or {}, s.get("untrained_val") or {}
    line = (
        f"trained {s['epochs']} epoch(s), best epoch {s['best_epoch']}: val EER {_fmt(val.get('val_eer'))} "
        f"(untrained {_fmt(before.get('val_eer'))}), random-forgery EER {_fmt(val.get('eer_random'))}, "
        f"TAR@FAR=1e-2 {_fmt(val.get('tar@far=0.01_random'))}; {s['seconds_per_epoch']:.1f} s/epoch -> {s['run']}"
    )
    if s.get("old_val"):
        line += f"; old identities val EER {_fmt(s['old_val'].get('val_eer'))}"
    print(line)
