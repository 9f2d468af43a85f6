"""Throughput of signature generator v2 (synthetic name signatures), images per CPU second and per wall second.

Run: `python -m bench.bench_synth_v2 [--writers 40]`. Prints a markdown table and writes
bench/results/bench_synth_v2.json. Rendering in memory, one process, genuine : skilled : simple = 3 : 1 : 1.
Rows: a fixed 150x220 canvas, tight crops at their own size (the default framing), and the training stream
(`SyntheticSignatureStream`, no transform). CPU time is reported beside wall time because the machine is shared:
images per CPU second is the rate of one uncontended core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from verify.synth import NameSignatureGenerator, ScanConfig
from verify.synth.stream import SyntheticSignatureStream

RESULTS = Path(__file__).resolve().parent / "results" / "bench_synth_v2.json"
_KINDS = ("genuine", "genuine", "genuine", "skilled", "simple")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()}-core CPU ({cpu}), Python {platform.python_version()}"


def _timed(label: str, images: int, work: Callable[[], None]) -> dict[str, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "case": label,
        "images": images,
        "wall_s": round(wall, 3),
        "images_per_s": round(images / wall, 1),
        "cpu_s": round(cpu, 3),
        "images_per_cpu_s": round(images / cpu, 1),
    }


def _generator_case(label: str, scan: ScanConfig, writers: int) -> dict[str, object]:
    gen = NameSignatureGenerator(seed=0, scan=scan)
    for w in range(10**6, 10**6 + 30):  # every font loaded outside the timing
        gen.render(w)

    def work() -> None:
        for w in range(writers):
            for i, kind in enumerate(_KINDS):
                gen.render(w, kind, i)  # type: ignore[arg-type]

    return _timed(label, writers * len(_KINDS), work)


def _stream_case(writers: int) -> dict[str, object]:
    stream = SyntheticSignatureStream(seed=0, genuine=3, skilled=1, simple=1, groups=writers, first_writer=10**7)

    def work() -> None:
        for _ in stream:
            pass

    return _timed("training stream (tight crops)", writers * stream.group_size, work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Signature generator v2 throughput (synthetic data).")
    parser.add_argument("--writers", type=int, default=40, help="writers per case, 5 images each (default: 40)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    load_before = round(os.getloadavg()[0], 2)
    rows = [
        _generator_case("canvas 150x220", ScanConfig(canvas=(150, 220)), args.writers),
        _generator_case("tight crops (natural size, max side 420)", ScanConfig(), args.writers),
        _stream_case(args.writers),
    ]
    result = {
        "benchmark": "signature generator v2 (synthetic name signatures, in memory, 1 process)",
        "machine": _machine(),
        "load_average_1min_before": load_before,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "rows": rows,
        "target_images_per_cpu_s": 100,
    }
    print(f"Signature generator v2 on {result['machine']}\n")
    print("| case | images | wall s | images/s (wall) | CPU s | images per CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['images']} | {r['wall_s']} | {r['images_per_s']} | {r['cpu_s']} "
            f"| {r['images_per_cpu_s']} |"
        )
    print(f"\nLoad average (1 min) before/after: {load_before} / {result['load_average_1min_after']} (shared machine)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
