"""Distillation on synthetic signatures: teacher vs student trained alone vs students distilled per objective.

Run: `python -m bench.bench_distill [--teacher assets/models/signature-teacher] [--epochs 10] [--student ARCH]`
Prints markdown tables and writes bench/results/bench_distill.json.

Data: synthetic signatures (`verify.synth`, sigma-lognormal writers with skilled forgeries); training writers
(seed 0) and test writers (seed 1) are different people (writer-independent protocol). Without --teacher a
resnet18 teacher is trained here first (`verify train` defaults, few epochs: the default run is modest
because the machine's 2 cores are shared); with --teacher the bundled teacher is used and the data are made
at its input size. Rows: the teacher, the student architecture trained alone with the metric loss, and the
student distilled with each objective alone and with the combination. Columns: parameters, weights file
size, CPU embeddings/s at batch 1 and 32 (2 threads, best of round-robin rounds: the machine is shared) and at
batch 1 with 1 thread, p50/p95 latency per image at batch 1, EER (skilled and random forgeries), TAR at
FAR=1e-2 (random forgeries) and the share of the teacher's TAR kept. The int8 rows quantise the combined
student (onnxruntime dynamic int8; torch dynamic int8, which only quantises nn.Linear layers). Torch runs with
OMP_WAIT_POLICY=PASSIVE (set here unless the environment sets it), the faster setting on shared cores.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep: 10x+ on shared cores (bench_embed)

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.bench_embed import RESULTS as _EMBED_RESULTS
from bench.bench_embed import machine, measure

RESULTS = _EMBED_RESULTS.with_name("bench_distill.json")
OBJECTIVES = {
    "distilled: KD": {"kd_weight": 1.0, "embedding_weight": 0.0, "rkd_distance_weight": 0.0},
    "distilled: embedding": {"kd_weight": 0.0, "embedding_weight": 1.0, "rkd_distance_weight": 0.0},
    "distilled: RKD": {"kd_weight": 0.0, "embedding_weight": 0.0, "rkd_distance_weight": 1.0, "rkd_angle_weight": 2.0},
    "distilled: KD+emb+RKD": {"kd_weight": 1.0, "embedding_weight": 1.0, "rkd_distance_weight": 1.0},
}
CANDIDATES = ("resnet10t", "mnasnet_050", "regnetx_002", "mobilenetv3_small_050", "mobilenetv3_small_100")


def make_data(work: Path, args: argparse.Namespace, height: int, width: int) -> tuple[Path, Path]:
    from verify.synth import generate_dataset

    out = []
    for name, writers, seed in (("train", args.train_writers, 0), ("test", args.test_writers, 1)):
        path = work / f"{name}-{height}x{width}"
        if not (path / "manifest.csv").is_file():
            generate_dataset(path, writers, args.genuine, args.forgeries, seed, height, width, progress=False)
        out.append(path)
    return out[0], out[1]


def _config(args: argparse.Namespace, **values: Any) -> Any:
    from training.config import load_config

    base = {"protocol": "cedar", "epochs": args.epochs, "p": 8, "k": 4, "lr": 2e-3, "early_stopping": 0,
            "val_fraction": 0.25, "augment": False, "device": "cpu", "seed": 0, **values}  # fmt: skip
    return load_config(None, (), base=base)


def train_teacher(args: argparse.Namespace, data: Path, work: Path, size: dict[str, int]) -> Path:
    from training.trainer import train

    out = work / "teacher"
    if not (out / "model.json").is_file():
        train(_config(args, backbone="resnet18", epochs=args.teacher_epochs, **size), data, out, progress=False)
    return out


def train_students(args: argparse.Namespace, teacher: Path, data: Path, work: Path) -> dict[str, Path]:
    from training.distill import DistillConfig, distill, teacher_defaults
    from training.trainer import train

    defaults = teacher_defaults(teacher, args.student)
    runs = {"student alone": work / f"{args.student}-alone"}
    if not (runs["student alone"] / "model.json").is_file():
        train(_config(args, **{**defaults, "name": "student-alone"}), data, runs["student alone"], progress=False)
    for label, weights in OBJECTIVES.items():
        out = work / f"{args.student}-{label.split(': ')[1].replace('+', '-').lower()}"
        runs[label] = out
        if not (out / "model.json").is_file():
            t0 = time.perf_counter()
            distill(teacher, _config(args, **defaults), DistillConfig(**weights), data, out, progress=False)
            print(f"  {label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return runs


def evaluate(embed: Any, card: dict[str, Any], test: Path) -> dict[str, Any]:
    """EER (skilled, random) and TAR@FAR=1e-2 (random, skilled) of `embed(crops) -> [N, D]` on the test writers."""
    from training.data import build_crop_set, load_samples
    from training.validation import pair_metrics, score_pairs

    crop_set = build_crop_set(load_samples(test, "signature", "cedar"), card)
    emb = np.asarray(embed(crop_set.crops), np.float32)
    metrics = pair_metrics(score_pairs(emb, crop_set.samples, 200_000, 0))
    return {k: metrics[k] for k in ("eer_skilled", "eer_random", "tar@far=0.01_random", "tar@far=0.01_skilled")}


def _params(net: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in net.parameters()))


def rows_for(runs: dict[str, Path], test: Path, work: Path) -> tuple[dict[str, dict], dict[str, Any]]:
    """Accuracy and size per row, and the callables to time (one per distinct network)."""
    from verify.export import OnnxEmbedder, export_onnx
    from verify.models.loading import load_model

    rows: dict[str, dict] = {}
    timers: dict[str, Any] = {}
    for label, path in runs.items():
        model = load_model(path, device="cpu")
        rows[label] = {"parameters": _params(model.net), "file_mb": (path / "model.safetensors").stat().st_size / 2**20}
        rows[label].update(evaluate(model.embed_crops, model.card, test))
        rows[label]["arch"] = model.card["architecture"].get("backbone")
        if label in ("teacher", "student alone", "distilled: KD+emb+RKD"):
            timers[label] = model.net
    best = runs["distilled: KD+emb+RKD"]
    onnx_path = work / "student-int8.onnx"
    export_onnx(best, onnx_path, quantize="int8")
    int8 = OnnxEmbedder(onnx_path, threads=2)
    rows["KD+emb+RKD, onnxruntime int8"] = {"parameters": rows["distilled: KD+emb+RKD"]["parameters"],
                                           "file_mb": onnx_path.stat().st_size / 2**20,
                                           **evaluate(int8.embed_crops, int8.card, test)}  # fmt: skip
    timers["KD+emb+RKD, onnxruntime int8"] = lambda x: int8.session.run(None, {"input": x.numpy()})[0]
    student = load_model(best, device="cpu")
    dyn = torch.ao.quantization.quantize_dynamic(student.net, {torch.nn.Linear}, torch.qint8)
    student.net = dyn
    n_params = rows["distilled: KD+emb+RKD"]["parameters"]
    rows["KD+emb+RKD, torch dynamic int8"] = {
        "parameters": n_params, "file_mb": None, **evaluate(student.embed_crops, student.card, test)
    }  # fmt: skip
    timers["KD+emb+RKD, torch dynamic int8"] = dyn
    return rows, timers


def speed(timers: dict[str, Any], card: dict[str, Any], rounds: int, seconds: float) -> dict[str, dict]:
    from bench.bench_embed import synthetic_crops
    from verify.models.runtime import crops_to_tensor

    crops = synthetic_crops(card, 32)
    inputs = {1: crops_to_tensor(crops[:1], card), 32: crops_to_tensor(crops, card)}
    torch.set_num_threads(2)
    two = measure(timers, inputs, rounds, seconds)
    torch.set_num_threads(1)
    one = measure({k: v for k, v in timers.items() if "onnxruntime" not in k}, {1: inputs[1]}, rounds, seconds)
    torch.set_num_threads(2)
    for name, row in two.items():
        row["b1_1thread_per_s"] = one.get(name, {}).get("b1_per_s")
    return two


def candidates(card: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Speed of untrained candidate student backbones at the teacher's input size (batch 1 and 32, 2 threads)."""
    from bench.bench_embed import synthetic_crops
    from verify.models.network import create_timm_network
    from verify.models.runtime import crops_to_tensor

    crops = synthetic_crops(card, 32)
    inputs = {1: crops_to_tensor(crops[:1], card), 32: crops_to_tensor(crops, card)}
    nets, out = {}, {}
    for arch in ("resnet18", *CANDIDATES):
        try:
            net = create_timm_network({**card["architecture"], "backbone": arch}).eval()
            with torch.inference_mode():
                net(inputs[1])
            nets[arch] = net
        except RuntimeError as exc:
            out[arch] = {"error": str(exc).splitlines()[0][:120]}
    for arch, row in measure(nets, inputs, 1, seconds).items():
        out[arch] = {"parameters": _params(nets[arch]), **row}
    return out


def _f(v: Any, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def table(rows: dict[str, dict], speeds: dict[str, dict]) -> str:
    lines = [
        "| model | arch | params (M) | file MB | emb/s b=1 | emb/s b=32 | emb/s b=1, 1 thr | p50 ms | p95 ms "
        "| EER skilled | EER random | TAR@FAR=1e-2 | teacher TAR kept |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    teacher_tar = rows["teacher"]["tar@far=0.01_random"] or float("nan")
    for label, r in rows.items():
        timing_key = label if label in speeds else ("distilled: KD+emb+RKD" if label.startswith("distilled") else None)
        s = speeds.get(timing_key or "", {})
        tar = r["tar@far=0.01_random"]
        lines.append(
            f"| {label} | {r.get('arch') or ''} | {r['parameters'] / 1e6:.2f} | {_f(r['file_mb'], '.1f')} "
            f"| {_f(s.get('b1_per_s'), '.1f')} | {_f(s.get('b32_per_s'), '.1f')} "
            f"| {_f(s.get('b1_1thread_per_s'), '.1f')} "
            f"| {_f(s.get('b1_p50_ms'), '.1f')} | {_f(s.get('b1_p95_ms'), '.1f')} | {_f(r['eer_skilled'])} "
            f"| {_f(r['eer_random'])} | {_f(tar)} | {_f(None if tar is None else tar / teacher_tar, '.1%')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from training.commands.distill import DEFAULT_STUDENT
    from verify.models.card import read_card

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", type=Path, help="use this teacher (e.g. assets/models/signature-teacher)")
    p.add_argument("--student", default=DEFAULT_STUDENT, help=f"student backbone (default {DEFAULT_STUDENT})")
    p.add_argument("--train-writers", type=int, default=40, help="synthetic training writers (default 40)")
    p.add_argument("--test-writers", type=int, default=16, help="synthetic test writers (default 16)")
    p.add_argument("--genuine", type=int, default=10, help="genuine signatures per writer (default 10)")
    p.add_argument("--forgeries", type=int, default=6, help="skilled forgeries per writer (default 6)")
    p.add_argument("--epochs", type=int, default=10, help="student epochs (default 10)")
    p.add_argument("--teacher-epochs", type=int, default=8, help="epochs of the teacher trained here (default 8)")
    p.add_argument("--size", default="96x144", help="input HxW when training the teacher here (default 96x144)")
    p.add_argument("--work", type=Path, help="keep data and runs here (default: a temporary folder)")
    p.add_argument("--rounds", type=int, default=3, help="timing rounds (default 3)")
    p.add_argument("--seconds", type=float, default=1.0, help="seconds per timing round (default 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    header = f"{machine()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.teacher is not None:
            inp = read_card(args.teacher)["input"]
            height, width = int(inp["height"]), int(inp["width"])
        else:
            height, width = (int(v) for v in args.size.split("x"))
        train_data, test_data = make_data(work, args, height, width)
        t0 = time.perf_counter()
        teacher = args.teacher or train_teacher(args, train_data, work, {"height": height, "width": width})
        runs = {"teacher": teacher, **train_students(args, teacher, train_data, work)}
        train_s = time.perf_counter() - t0
        rows, timers = rows_for(runs, test_data, work)
        card = read_card(teacher)
        speeds = speed(timers, card, args.rounds, args.seconds)
        cands = candidates(card, args.seconds)
    print(f"Distillation on synthetic signatures ({args.train_writers} train / {args.test_writers} test writers, "
          f"{height}x{width}, student {args.student}, {args.epochs} epochs), {header}\n")  # fmt: skip
    print(table(rows, speeds))
    print("\nCandidate student backbones (untrained, same input, 2 threads):\n")
    print("| backbone | params (M) | emb/s b=1 | emb/s b=32 |\n|---|---|---|---|")
    for arch, c in cands.items():
        if "error" in c:
            print(f"| {arch} | - | fails: {c['error']} | |")
        else:
            print(f"| {arch} | {c['parameters'] / 1e6:.2f} | {c['b1_per_s']:.1f} | {c['b32_per_s']:.1f} |")
    result = {"machine": header, "data": "synthetic signatures (verify.synth)", "args": vars(args),
              "train_seconds": round(train_s, 1), "rows": rows, "speed": speeds, "candidates": cands}  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
