"""dlib's face ResNet: the PyTorch port (batched) vs dlib itself (one chip at a time), on 2 CPU threads.

The port is timed at 2 and at 1 torch threads: on a shared 2-core machine, 2 threads lose most of their time
waiting for each other whenever other processes hold a core.

Run: `python -m bench.bench_face_port [--repeats 3]`. Prints a markdown table and writes
bench/results/bench_face_port.json.

Input: 32 real 150x150 chips (dlib HOG + 5 landmarks + get_face_chip, padding 0.25) of the demo photos in
tests/data/faces: the detected faces, their mirror images, then dlib.jitter_image copies to reach 32 (the same
faces repeated: a speed test, not an accuracy test). Each timing is the median of `--repeats` passes over all
32 chips after one warm-up pass, the embedders taking turns; faces/s = 32 / that time. Also reported: the
smallest cosine similarity between the port's and dlib's descriptors on those chips.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from verify.fsutil import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_face_port.json"
MODEL = ROOT / "assets" / "models" / "face-resnet"
FACES = ROOT / "tests" / "data" / "faces"
N_CHIPS = 32


def _machine() -> str:
    """The machine in words."""
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()}-core CPU ({cpu}), Python {platform.python_version()}, OMP_NUM_THREADS=2"


def _chips() -> list[np.ndarray]:
    import cv2
    import dlib

    from training.convert_dlib import default_dat_path

    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(str(default_dat_path().parent / "shape_predictor_5_face_landmarks.dat"))
    chips = []
    for path in sorted(FACES.glob("*.jpg")):
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        chips += [dlib.get_face_chip(img, shapes(img, box), 150, 0.25) for box in detector(img, 1)]
    chips += [np.ascontiguousarray(c[:, ::-1]) for c in chips]
    jitter = [j for c in chips for j in dlib.jitter_image(c, 4)]
    return (chips + jitter)[:N_CHIPS]


def _timed(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds per function over `repeats` rounds after one warm-up round.

    Each round runs every function once, so that load from other processes on a shared machine falls on
    all of them alike.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(repeats + 1):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _with_threads(fn: Callable[[], Any], threads: int) -> Callable[[], Any]:
    import torch

    def call() -> Any:
        torch.set_num_threads(threads)
        return fn()

    return call


def run(repeats: int, threads: tuple[int, ...] = (2, 1)) -> dict[str, Any]:
    import dlib
    import torch

    from training.convert_dlib import default_dat_path
    from verify.models.card import load_network
    from verify.models.runtime import crops_to_tensor

    net, card = load_network(MODEL)
    rec = dlib.face_recognition_model_v1(str(default_dat_path()))
    chips = _chips()
    x = crops_to_tensor(chips, card)

    def port_batched() -> np.ndarray:
        with torch.inference_mode():
            return net.forward_raw(crops_to_tensor(chips, card)).numpy()

    def port_single() -> None:
        with torch.inference_mode():
            for i in range(len(chips)):
                net.forward_raw(x[i : i + 1])

    def dlib_single() -> np.ndarray:
        return np.array([np.asarray(rec.compute_face_descriptor(c)) for c in chips])

    def dlib_batched() -> None:
        rec.compute_face_descriptor(chips)

    fns: dict[str, Callable[[], Any]] = {}
    for n in threads:
        fns[f"PyTorch port, batch of 32, {n} thread(s)"] = _with_threads(port_batched, n)
        fns[f"PyTorch port, one chip at a time, {n} thread(s)"] = _with_threads(port_single, n)
    fns["dlib, one chip at a time"] = dlib_single
    fns["dlib, list of 32 chips in one call"] = dlib_batched
    rows = _timed(fns, repeats)
    raw, ref = port_batched(), dlib_single()
    cos = (raw * ref).sum(1) / np.linalg.norm(raw, axis=1) / np.linalg.norm(ref, axis=1)
    return {
        "machine": _machine(),
        "chips": len(chips),
        "repeats": repeats,
        "torch": torch.__version__,
        "dlib": dlib.__version__,
        "faces_per_s": {k: round(len(chips) / v, 1) for k, v in rows.items()},
        "ms_per_face": {k: round(1000 * v / len(chips), 2) for k, v in rows.items()},
        "min_cosine_port_vs_dlib": round(float(cos.min()), 7),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
    }


def table(res: dict[str, Any]) -> str:
    lines = [
        f"Machine: {res['machine']}; {res['chips']} real face chips (demo photos, mirrored and jittered); "
        f"median of {res['repeats']} interleaved passes; torch {res['torch']}, dlib {res['dlib']}; "
        f"1-min load average after the run {res['load_average_1min_after']} (the machine is shared).",
        "",
        "| embedder | faces/s | ms/face |",
        "|---|---:|---:|",
    ]
    for name, fps in res["faces_per_s"].items():
        lines.append(f"| {name} | {fps} | {res['ms_per_face'][name]} |")
    lines += ["", f"Smallest cosine between port and dlib descriptors: {res['min_cosine_port_vs_dlib']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per embedder (median is kept)")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[2, 1], help="torch intra-op thread counts to time the port at"
    )
    args = parser.parse_args(argv)
    res = run(args.repeats, tuple(args.threads))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS, res, indent=2)
    print(table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
