"""`verify eval`: evaluate a model on a dataset and write a report (and, with --calibrate, a calibrated card)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from verify.cli.common import add_json_flag, add_model_flags, int_at_least, print_json
from verify.data.protocols import EVAL_PROTOCOLS, PAIR_FORMATS
from verify.errors import ConfigError


def _target(text: str) -> float | str:
    if text.lower() == "eer":
        return "eer"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a FAR in (0, 1) or 'eer', got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a FAR in (0, 1) or 'eer', got {text!r}")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a model: EER, TAR@FAR, FAR/FRR, plots; optionally calibrate its threshold",
        description="Evaluate a model on a signature dataset, identity folders, LFW pairs or a pairs CSV. "
        "The threshold is chosen on calibration identities and all numbers are reported on disjoint test "
        "identities. Writes report.json, report.md, roc.png, det.png, scores.png into --out.",
    )
    add_model_flags(p)
    src = p.add_argument_group("data (one of --data or --pairs)")
    src.add_argument("--data", help="dataset folder (signature layouts, or <identity>/<image> folders)")
    src.add_argument("--pairs", help="LFW pairs.txt (with --protocol lfw --images ROOT) or a pairs CSV")
    src.add_argument("--images", help="images root for LFW pairs, or for relative paths in a pairs CSV")
    src.add_argument(
        "--protocol",
        choices=EVAL_PROTOCOLS,
        help="dataset layout; default: lfw for a .txt pairs file, csv for a .csv pairs file",
    )
    p.add_argument("--out", required=True, help="report folder (created)")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="write the chosen threshold and calibrator into a copy of the model card: OUT/model.json",
    )
    p.add_argument("--target-far", type=_target, default=0.01, help="threshold target: a FAR or 'eer' (0.01)")
    p.add_argument(
        "--calibrator", choices=["platt", "isotonic", "none"], default="platt", help="score -> p(match) (platt)"
    )
    p.add_argument(
        "--calibration-fraction",
        type=float,
        default=0.5,
        help="share of identities (LFW: folds) used to choose the threshold (default 0.5)",
    )
    p.add_argument(
        "--bootstrap", type=int_at_least(0), default=1000, help="bootstrap replicates for 95%% CIs (0: none)"
    )
    p.add_argument("--batch-size", type=int_at_least(1), default=32, help="embedding batch size (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, pair sampling and bootstrap")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_json_flag(p)
    p.set_defaults(func=run)


def _protocol(args: argparse.Namespace) -> str:
    if (args.data is None) == (args.pairs is None):
        raise ConfigError("give exactly one of --data DIR or --pairs FILE")
    if args.protocol:
        if args.protocol in ("lfw", "csv") and args.pairs is None:
            raise ConfigError(f"--protocol {args.protocol} reads --pairs FILE, not --data")
        if args.protocol not in ("lfw", "csv") and args.data is None:
            raise ConfigError(f"--protocol {args.protocol} reads --data DIR, not --pairs")
        return str(args.protocol)
    if args.pairs is not None:
        return "csv" if str(args.pairs).lower().endswith(".csv") else "lfw"
    raise ConfigError(f"--data needs --protocol ({', '.join(p for p in EVAL_PROTOCOLS if p not in PAIR_FORMATS)})")


def _model_path(args: argparse.Namespace, protocol: str) -> Path:
    from verify.models.defaults import resolve_model

    return resolve_model(args.model, args.modality, protocol=protocol)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the report; exit 1 when some images failed or pairs had missing files."""
    import verify
    from verify.eval.report import write_report
    from verify.eval.run import evaluate, load_eval_data
    from verify.models.card import write_calibrated_card

    protocol = _protocol(args)
    if not 0 <= args.calibration_fraction < 1:
        raise ConfigError(f"--calibration-fraction must be in [0, 1), got {args.calibration_fraction}")
    out = Path(args.out)
    model_path = _model_path(args, protocol)
    if args.calibrate and out.resolve() == (model_path if model_path.is_dir() else model_path.parent).resolve():
        raise ConfigError(f"--out {out} is the model's own folder; choose another folder (the input stays untouched)")
    data = load_eval_data(protocol, data_dir=args.data, pairs=args.pairs, images=args.images)
    model = verify.load_model(model_path)
    results = evaluate(
        model,
        data,
        batch_size=args.batch_size,
        seed=args.seed,
        calibration_fraction=args.calibration_fraction,
        target_far=args.target_far,
        calibrator=None if args.calibrator == "none" else args.calibrator,
        n_bootstrap=args.bootstrap,
        progress=not (args.no_progress or args.json),
    )
    scores = results.pop("scores")
    results["data"]["protocol"] = protocol
    card_path = None
    if args.calibrate:
        if "calibration" not in results:
            raise ConfigError("--calibrate needs a calibration part: at least 4 identities (LFW: 2 folds)")
        out.mkdir(parents=True, exist_ok=True)
        card_path = write_calibrated_card(model, results["calibration"], out)
    write_report(out, results, scores)
    failed = results["data"]["failed_images"] + results["data"].get("pairs_missing_images", 0)
    summary = _summary(results, out, card_path)
    if args.json:
        print_json(summary)
    else:
        print(_line(summary))
    return 1 if failed else 0


def _summary(results: dict[str, Any], out: Path, card_path: Path | None) -> dict[str, Any]:
    headline = {
        kind: {name: block[name]["value"] for name in ("eer", "auc", "tar@far=0.01", "far@threshold", "frr@threshold")}
        for kind, block in results["metrics"].items()
    }
    return {
        "report": str(out / "report.json"),
        "threshold": results["threshold"]["value"],
        "threshold_source": results["threshold"]["chosen_on"],
        "sizes": results["sizes"],
        "metrics": headline,
        "kfold": results.get("kfold"),
        "failed_images": results["data"]["failed_images"],
        "calibrated_card": None if card_path is None else str(card_path),
    }


def _line(summary: dict[str, Any]) -> str:
    parts = [f"{kind}: EER {m['eer']:.4f}, AUC {m['auc']:.4f}" for kind, m in summary["metrics"].items()]
    text = f"{'; '.join(parts)}; threshold {summary['threshold']:.4f} ({summary['threshold_source']})"
    text += f"; report in {Path(summary['report']).parent}"
    if summary["failed_images"]:
        text += f"; {summary['failed_images']} images failed (see report.json 'failures')"
    return text
