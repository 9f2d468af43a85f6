"""Embedding throughput and latency of every bundled model under each CPU inference option (2 threads).

Run: `python -m bench.bench_embed [--rounds 3] [--seconds 1.0] [--no-compile] [--models DIR ...]`. Prints a
markdown table and writes bench/results/bench_embed.json.

Inputs are synthetic crops at each model's input size (random pen strokes for signature models, noise for
face models), already preprocessed: the table times the network, not detection or signature cleaning.
Options compared on the same tensors: the runtime as it is (`torch.inference_mode`, NCHW float32),
channels_last, `torch.compile` (inductor, compile time listed apart), 1 vs 2 threads, onnxruntime fp32 and
int8 (dynamic quantisation, `verify.export`), torch dynamic int8 (quantises nn.Linear only). The machine is
shared, so variants run round-robin for several rounds and each keeps its best round's throughput; latency
percentiles pool every batch-1 call. `diff` is the max abs difference of the embeddings to the runtime's.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_embed.json"
THREADS = 2
PASSIVE = " + OMP_WAIT_POLICY=PASSIVE"
Fn = Callable[[torch.Tensor], Any]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()}-core CPU ({cpu}), {THREADS} threads, load average {load:.1f} at start"


def synthetic_crops(card: dict[str, Any], n: int, seed: int = 0) -> list[np.ndarray]:
    """n uint8 crops at the card's input size: dark random strokes on white (1 channel) or RGB noise."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w, c = (int(card["input"][k]) for k in ("height", "width", "channels"))
    if c == 3:
        return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    crops = []
    for _ in range(n):
        img = np.full((h, w), 255, np.uint8)
        pts = np.stack([rng.integers(0, w, 8), rng.integers(0, h, 8)], axis=1).astype(np.int32)
        cv2.polylines(img, [pts], False, 0, 2)
        crops.append(img)
    return crops


def _onnx_fn(net: torch.nn.Module, model_dir: Path, tmp: Path, quantize: str | None, threads: int) -> Fn:
    from verify.export import _session, export_onnx

    out = tmp / f"{model_dir.name}-{quantize or 'fp32'}.onnx"
    export_onnx(model_dir, out, quantize=quantize)
    sess = _session(out, threads)
    return lambda x: sess.run(None, {"input": x.numpy()})[0]


def torch_variants(
    model_dir: Path, tmp: Path, compile_: bool, passive: bool = False
) -> tuple[dict[str, Fn], dict[str, Fn], dict]:
    """(2-thread variants, 1-thread variants, notes) for a torch model directory; `passive`: the plain torch
    variants only, named for the OMP_WAIT_POLICY=PASSIVE child process they run in."""
    from verify.models.card import load_network

    net, _ = load_network(model_dir)
    net.eval()
    notes: dict[str, Any] = {}
    cl = load_network(model_dir)[0].eval().to(memory_format=torch.channels_last)
    if passive:
        two = {
            f"torch (runtime){PASSIVE}": net,
            f"torch channels_last{PASSIVE}": lambda x: cl(x.contiguous(memory_format=torch.channels_last)),
        }
        return two, {f"torch (runtime), 1 thread{PASSIVE}": net}, notes
    dyn = torch.ao.quantization.quantize_dynamic(load_network(model_dir)[0].eval(), {torch.nn.Linear}, torch.qint8)
    two: dict[str, Fn] = {
        "torch (runtime)": net,
        "torch channels_last": lambda x: cl(x.contiguous(memory_format=torch.channels_last)),
        "torch dynamic int8": dyn,
        "onnxruntime fp32": _onnx_fn(net, model_dir, tmp, None, THREADS),
        "onnxruntime int8": _onnx_fn(net, model_dir, tmp, "int8", THREADS),
    }
    if compile_:
        two["torch.compile"] = torch.compile(load_network(model_dir)[0].eval())
    one: dict[str, Fn] = {
        "torch (runtime), 1 thread": net,
        "onnxruntime fp32, 1 thread": _onnx_fn(net, model_dir, tmp, None, 1),
    }
    return two, one, notes


def _timed(fn: Fn, x: torch.Tensor, seconds: float) -> list[float]:
    durations, end = [], time.perf_counter() + seconds
    with torch.inference_mode():
        while time.perf_counter() < end or len(durations) < 3:
            t = time.perf_counter()
            fn(x)
            durations.append(time.perf_counter() - t)
    return durations


def measure(variants: dict[str, Fn], inputs: dict[int, torch.Tensor], rounds: int, seconds: float) -> dict:
    """Round-robin timing. Returns name -> {"b1_per_s", "b32_per_s", "p50_ms", "p95_ms", ...} per batch size."""
    calls: dict[tuple[str, int], list[list[float]]] = {(n, b): [] for n in variants for b in inputs}
    with torch.inference_mode():
        for fn in variants.values():  # warm-up (and compile) outside the timed rounds
            for x in inputs.values():
                fn(x)
    for _ in range(rounds):
        for name, fn in variants.items():
            for b, x in inputs.items():
                calls[(name, b)].append(_timed(fn, x, seconds))
    out: dict[str, dict[str, float]] = {}
    for name in variants:
        row: dict[str, float] = {}
        for b in inputs:
            per_round = calls[(name, b)]
            row[f"b{b}_per_s"] = max(b * len(d) / sum(d) for d in per_round)
            pooled = np.concatenate([np.asarray(d) for d in per_round]) * 1000 / b
            row[f"b{b}_p50_ms"] = float(np.percentile(pooled, 50))
            row[f"b{b}_p95_ms"] = float(np.percentile(pooled, 95))
        out[name] = row
    return out


def _diffs(variants: dict[str, Fn], x: torch.Tensor, ref: np.ndarray) -> dict[str, float]:
    out = {}
    with torch.inference_mode():
        for name, fn in variants.items():
            got = np.asarray(fn(x), np.float32)
            out[name] = float(np.abs(got - ref).max())
    return out


def bench_model(model_dir: Path, rounds: int, seconds: float, compile_: bool, passive: bool = False) -> dict[str, Any]:
    from verify.models.loading import load_model
    from verify.models.runtime import crops_to_tensor

    model = load_model(model_dir, device="cpu")
    crops = synthetic_crops(model.card, 32)
    inputs = {1: crops_to_tensor(crops[:1], model.card), 32: crops_to_tensor(crops, model.card)}
    t = time.perf_counter()
    crops_to_tensor(crops, model.card)
    result: dict[str, Any] = {"model": model_dir.name, "to_tensor_ms_per_image": (time.perf_counter() - t) * 1000 / 32}
    if not hasattr(model, "net") and passive:
        return {**result, "variants": {}}
    if not hasattr(model, "net"):  # a non-torch loader (dlib): its own embed_crops only
        variants = {"native": lambda x: model.embed_crops(crops[: len(x)])}
        result["variants"] = measure(variants, inputs, rounds, seconds)
        return result
    with tempfile.TemporaryDirectory() as tmp:
        two, one, notes = torch_variants(model_dir, Path(tmp), compile_, passive)
        ref = model.net(inputs[32]).detach().numpy()
        if "torch.compile" in two:
            t = time.perf_counter()
            with torch.inference_mode():
                two["torch.compile"](inputs[1])
                two["torch.compile"](inputs[32])
            notes["compile_s"] = round(time.perf_counter() - t, 1)
        torch.set_num_threads(THREADS)
        rows = measure(two, inputs, rounds, seconds)
        torch.set_num_threads(1)
        rows.update(measure(one, inputs, rounds, seconds))
        torch.set_num_threads(THREADS)
        diffs = _diffs({**two, **one}, inputs[32], ref)
    for name, row in rows.items():
        row["max_abs_diff"] = diffs.get(name, 0.0)
    result.update(variants=rows, notes=notes)
    return result


def bundled_models() -> list[Path]:
    root = ROOT / "assets" / "models"
    return sorted(p for p in root.iterdir() if (p / "model.json").is_file()) if root.is_dir() else []


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | option | emb/s b=1 | emb/s b=32 | p50 ms (b=1) | p95 ms (b=1) | ms/img (b=32) | max abs diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for name, r in res["variants"].items():
            lines.append(
                f"| {res['model']} | {name} | {r['b1_per_s']:.1f} | {r['b32_per_s']:.1f} | {r['b1_p50_ms']:.1f} | "
                f"{r['b1_p95_ms']:.1f} | {r['b32_p50_ms']:.2f} | {r.get('max_abs_diff', 0.0):.1e} |"
            )
    return "\n".join(lines)


def _add_passive(results: list[dict[str, Any]], models: list[Path], args: argparse.Namespace) -> None:
    """Run the torch variants in a child process with OMP_WAIT_POLICY=PASSIVE (read by OpenMP at load time:
    idle threads sleep instead of spinning, which matters when other processes share the cores)."""
    cmd = [sys.executable, "-m", "bench.bench_embed", "--passive-child", "--rounds", str(args.rounds)]
    cmd += ["--seconds", str(args.seconds), "--models", *map(str, models)]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    for res, child in zip(results, json.loads(proc.stdout.strip().splitlines()[-1]), strict=True):
        res["variants"].update(child["variants"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", type=Path, help="model directories (default: all bundled)")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds per option (default 3)")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per option, batch size and round")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile)")
    parser.add_argument("--passive-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    header = machine()
    models = args.models or bundled_models()
    if args.passive_child:  # the plain torch variants again, in a process started with OMP_WAIT_POLICY=PASSIVE
        print(json.dumps([bench_model(m, args.rounds, args.seconds, False, passive=True) for m in models]))
        return 0
    results = [bench_model(m, args.rounds, args.seconds, not args.no_compile) for m in models]
    _add_passive(results, models, args)
    print(f"Embedding throughput, synthetic crops, {header}\n")
    print(table(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": header, "data": "synthetic crops", "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
