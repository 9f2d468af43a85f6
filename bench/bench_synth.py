"""Throughput of the synthetic signature generator (synthetic data), images/s with 1 and 2 worker processes.

Run: `python -m bench.bench_synth [--writers 30 --genuine 10 --forgeries 10]`. Prints a markdown table and
writes bench/results/bench_synth.json. Each run writes real PNG files and the manifest to a temporary folder.
Wall-clock rates depend on what else runs on the (shared) machine, so the CPU time of the run is reported too:
images per CPU second is the rate of one uncontended core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import cv2

from verify.synth import generate_dataset, render_writer_samples

RESULTS = Path(__file__).resolve().parent / "results" / "bench_synth.json"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()}-core CPU ({cpu}), Python {platform.python_version()}"


def _in_memory(height: int, width: int, writers: int = 5, per_kind: int = 10) -> float:
    """Images/s of rendering alone (no PNG encoding, no disk), one process."""
    start = time.perf_counter()
    for w in range(1, writers + 1):
        render_writer_samples(w, per_kind, per_kind, seed=0, height=height, width=width)
    return 2 * writers * per_kind / (time.perf_counter() - start)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system), seconds."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _dataset(workers: int, args: argparse.Namespace) -> dict[str, float]:
    images = args.writers * (args.genuine + args.forgeries)
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        generate_dataset(
            Path(tmp) / "ds",
            args.writers,
            args.genuine,
            args.forgeries,
            seed=0,
            height=args.height,
            width=args.width,
            workers=workers,
            progress=False,
        )
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    return {
        "workers": workers,
        "images": images,
        "seconds": round(seconds, 3),
        "images_per_s": round(images / seconds, 1),
        "cpu_seconds": round(cpu, 3),
        "images_per_cpu_s": round(images / cpu, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Synthetic signature generator throughput (synthetic data).")
    parser.add_argument("--writers", type=int, default=30, help="writers per run (default: 30)")
    parser.add_argument("--genuine", type=int, default=10, help="genuine signatures per writer (default: 10)")
    parser.add_argument("--forgeries", type=int, default=10, help="skilled forgeries per writer (default: 10)")
    parser.add_argument("--height", type=int, default=150, help="image height (default: 150)")
    parser.add_argument("--width", type=int, default=220, help="image width (default: 220)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    load_before = round(os.getloadavg()[0], 2)
    runs = [_dataset(w, args) for w in (1, 2)]
    memory = round(_in_memory(args.height, args.width), 1)
    result = {
        "benchmark": "synthetic signature generation (synthetic data, CEDAR layout, PNG files)",
        "machine": _machine(),
        "load_average_1min_before": load_before,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "image_size": [args.height, args.width],
        "runs": runs,
        "render_only_images_per_s_1_process": memory,
        "target_images_per_s_2_cores": 100,
    }
    print(f"Synthetic signatures, {args.height}x{args.width}, on {result['machine']}\n")
    print("| workers | images | wall s | images/s (wall) | CPU s | images per CPU s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r['workers']} | {r['images']} | {r['seconds']:.2f} | {r['images_per_s']:.1f} "
            f"| {r['cpu_seconds']:.2f} | {r['images_per_cpu_s']:.1f} |"
        )
    print(f"\nRendering only (no PNG, no disk), 1 process: {memory:.1f} images/s")
    print(f"Load average (1 min) before/after: {load_before} / {result['load_average_1min_after']} (shared machine)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
