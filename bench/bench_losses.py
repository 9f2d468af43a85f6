"""Losses and miners compared under one training budget on synthetic signatures (writer-independent).

Methods: contrastive (all pairs), triplet with semi-hard mining only, triplet with the FaceNet semi-hard -> hard
curriculum, margin loss with distance-weighted sampling. Each trains the same network for the same epochs and
steps on the same train writers (a fifth held out for model selection), then is scored on *separate* test
writers: EER against skilled and random forgeries, TAR@FAR=1e-2, seconds per epoch. The untrained network is
scored too, to show what training buys.

Data: SYNTHETIC signatures from `verify.synth` (sigma-lognormal writers, skilled forgers), not a real dataset.

    python -m bench.bench_losses            # 60 train / 20 test writers, 12 + 12 each, 64x96 px, 4 epochs
    python -m bench.bench_losses --full     # 150 / 50 writers, 24 + 24 each, 150x220 px, 10 epochs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "bench_losses.json"
METHODS: dict[str, dict[str, Any]] = {
    "contrastive": {"loss": "contrastive", "loss_params": {"margin": 1.0}, "miner": "none"},
    "triplet_semihard": {"loss": "triplet", "loss_params": {"margin": 0.2}, "miner": "semihard"},
    "triplet_curriculum": {"loss": "triplet", "loss_params": {"margin": 0.2}, "miner": "curriculum"},
    "margin_dws": {"loss": "margin", "loss_params": {"margin": 0.2, "beta": 1.2}, "miner": "distance_weighted"},
}
# modest: timm's tiny `test_resnet` (0.4 M parameters) so that four runs fit a shared 2-core CPU; full: resnet18
MODEST = {"train_writers": 60, "test_writers": 20, "per_kind": 12, "height": 64, "width": 96, "epochs": 6,
          "backbone": "test_resnet"}  # fmt: skip
FULL = {"train_writers": 150, "test_writers": 50, "per_kind": 24, "height": 150, "width": 220, "epochs": 10,
        "backbone": "resnet18"}  # fmt: skip


def _datasets(size: dict[str, int], cache: Path) -> tuple[Path, Path]:
    from verify.synth import generate_dataset

    out = []
    for part, writers, seed in (("train", size["train_writers"], 11), ("test", size["test_writers"], 23)):
        root = cache / f"{part}-{writers}w-{size['per_kind']}-{size['height']}x{size['width']}"
        if not (root / "manifest.csv").is_file():
            generate_dataset(root, writers, size["per_kind"], size["per_kind"], seed, size["height"], size["width"],
                             workers=1, progress=False)  # fmt: skip
        out.append(root)
    return out[0], out[1]


def _config(method: str, size: dict[str, int], args: argparse.Namespace) -> Any:
    from training.config import TrainConfig

    spec = dict(METHODS[method])
    if spec["miner"] == "curriculum":
        end = max(2, size["epochs"] - 1)
        spec["miner_params"] = {"kind": "linear", "start_epoch": 1, "end_epoch": end, "final_fraction": 0.5}
    return TrainConfig(
        modality="signature", height=size["height"], width=size["width"], backbone=size["backbone"], dim=128,
        val_metric="eer_mean",
        epochs=size["epochs"], p=8, k=4, early_stopping=0, warmup_epochs=0.5, lr=args.lr, seed=args.seed,
        device=args.device, name=f"bench-{method}", **spec,
    )  # fmt: skip


def _test_metrics(run: Path, test_root: Path) -> dict[str, Any]:
    from training.data import build_crop_set, load_samples
    from training.validation import validate
    from verify.models.card import load_network

    net, card = load_network(run)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    crops = build_crop_set(load_samples(test_root, "signature"), card)
    return validate(net.to(device), crops, card, device, max_impostor_pairs=200_000)


def _row(name: str, test: dict[str, Any], **extra: Any) -> dict[str, Any]:
    keep = ("eer_skilled", "eer_random", "tar@far=0.01_random", "tar@far=0.01_skilled")
    return {"method": name, **{k: test.get(k) for k in keep}, **extra}


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def markdown(rows: list[dict[str, Any]]) -> str:
    cols = ["method", "eer_skilled", "eer_random", "tar@far=0.01_random", "tar@far=0.01_skilled",
            "val_eer", "val_eer_untrained", "best_epoch", "s_per_epoch"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _run_all(args: argparse.Namespace, size: dict[str, Any], train_root: Path, test_root: Path, runs: Path) -> list:
    from training.trainer import build_model, train
    from verify.models.card import save_model

    rows = []
    torch.manual_seed(args.seed)  # the same initial weights as the trained runs start from
    untrained = build_model(_config("triplet_curriculum", size, args))
    save_model(runs / "untrained", untrained.net, untrained.card)
    rows.append(_row("untrained", _test_metrics(runs / "untrained", test_root)))
    for method in args.methods:
        summary = train(_config(method, size, args), train_root, runs / method, progress=False)
        row = _row(method, _test_metrics(runs / method, test_root), val_eer=summary["best_val_eer"],
                   val_eer_untrained=(summary["untrained_val"] or {}).get("val_eer"),
                   best_epoch=summary["best_epoch"], s_per_epoch=round(summary["seconds_per_epoch"], 1))  # fmt: skip
        rows.append(row)
        print(markdown(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)  # progress; the table goes to stdout
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's full size (150/50 writers, 150x220)")
    parser.add_argument("--epochs", type=int, help="override the epochs of the chosen size")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS), help="which")
    parser.add_argument("--backbone", help="timm backbone (default: test_resnet, with --full resnet18)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (2 cores are shared)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bench_losses_data")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    size = dict(FULL if args.full else MODEST)
    if args.epochs:
        size["epochs"] = args.epochs
    if args.backbone:
        size["backbone"] = args.backbone
    train_root, test_root = _datasets(size, args.cache)
    with tempfile.TemporaryDirectory(prefix="bench_losses_") as tmp:
        rows = _run_all(args, size, train_root, test_root, Path(tmp))
    device = "cuda: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() and args.device != "cpu" else ""
    machine = device or f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), shared"
    doc = {
        "benchmark": "bench_losses", "data": "SYNTHETIC signatures (verify.synth), writer-independent split",
        "size": size, "machine": machine, "threads": args.threads,
        "torch": torch.__version__, "rows": rows, "note": "test writers are disjoint from train/val writers; "
        "s_per_epoch includes the per-epoch validation; the best epoch is chosen by the mean of skilled and random "
        "EER on validation writers (val_eer); skilled forgeries of training writers are in the batches",
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\n{doc['data']}; {size}; {machine}\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
