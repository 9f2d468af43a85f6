"""Throughput of `verify batch` on synthetic signature pairs (synthetic data): pairs/s and peak memory.

Run: `python -m bench.bench_batch [--pairs 10000] [--workers 0,2]`. Prints a markdown table and writes
bench/results/bench_batch.json. Images come from the synthetic generator (150x220, CEDAR layout, one image per
5 pairs); pairs mix genuine/genuine, genuine/skilled forgery and genuine/other writer. The model is the bundled
signature student when `assets/models/signature-student` exists, else an untrained resnet18 at 150x220 (the
rate is the same shape of work, the scores mean nothing). "cold": a new embedding cache, every image decoded,
preprocessed and embedded; "warm": the same pairs again with the cache of the cold run (only scoring and
writing). Peak memory is `ru_maxrss` of this process (monotonic over the run) and of its worker processes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from verify.batch import BatchConfig, ImageCache, run_batch
from verify.models.defaults import assets_dir
from verify.synth import generate_dataset
from verify.verifier import Verifier

RESULTS = Path(__file__).resolve().parent / "results" / "bench_batch.json"
GENUINE, FORGERIES = 6, 4


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()}-core CPU ({cpu}), Python {platform.python_version()}, torch {torch.__version__}"


def _model(tmp: Path) -> tuple[Path, str]:
    student = assets_dir() / "models" / "signature-student"
    if (student / "model.json").is_file():
        return student, "bundled signature-student"
    from verify.models import new_card, save_model
    from verify.models.network import create_timm_network

    arch = {"kind": "timm", "backbone": "resnet18", "dim": 128, "in_chans": 1}
    card = new_card(
        name="untrained-resnet18",
        modality="signature",
        architecture=arch,
        input={"height": 150, "width": 220, "channels": 1},
        preprocessing={"kind": "signature"},
        calibration={"threshold": 0.5, "source": "untrained stand-in"},
    )
    save_model(tmp / "model", create_timm_network(arch).eval(), card)
    return tmp / "model", "untrained resnet18 at 150x220, dim 128 (no bundled student yet)"


def _pairs(root: Path, n_pairs: int, writers: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path = root / "pairs.csv"
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "reference", "questioned", "label"])
        for k in range(n_pairs):
            w = int(rng.integers(1, writers + 1))
            a, b = rng.choice(np.arange(1, GENUINE + 1), size=2, replace=False)
            ref = f"full_org/original_{w}_{a}.png"
            kind = k % 3
            if kind == 0:
                row = (ref, f"full_org/original_{w}_{b}.png", 1)
            elif kind == 1:
                row = (ref, f"full_forg/forgeries_{w}_{rng.integers(1, FORGERIES + 1)}.png", 0)
            else:
                other = 1 + (w + int(rng.integers(0, writers - 1))) % writers
                row = (ref, f"full_org/original_{other}_{b}.png", 0)
            out.writerow([f"p{k}", *row])
    return path


def _peak_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(own, 1), round(kids, 1)


def _run(verifier: Verifier, pairs: Path, out: Path, workers: int, batch: int, cache: ImageCache) -> dict:
    config = BatchConfig(pairs=pairs, out=out, workers=workers, batch_size=batch, chunk_rows=512)
    cpu0 = time.process_time()
    summary = run_batch(verifier, config, progress=False, cache=cache)
    own, kids = _peak_mib()
    return {
        "workers": workers,
        "pairs": summary.rows,
        "images_embedded": summary.images_embedded,
        "seconds": round(summary.seconds, 2),
        "pairs_per_s": round(summary.rows / summary.seconds, 1),
        "main_cpu_seconds": round(time.process_time() - cpu0, 2),
        "peak_rss_mib": own,
        "peak_rss_workers_mib": kids,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=10_000, help="synthetic pairs to verify (default 10,000)")
    p.add_argument("--workers", default="0,2", help="comma list of DataLoader worker counts (default 0,2)")
    p.add_argument("--batch-size", type=int, default=64, help="images per embedding batch (default 64)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model_path, model_note = _model(tmp)
        writers = max(4, args.pairs // (5 * (GENUINE + FORGERIES)) + 1)
        t0 = time.perf_counter()
        generate_dataset(tmp, writers, GENUINE, FORGERIES, seed=0, workers=2, progress=False)
        gen_s = time.perf_counter() - t0
        pairs = _pairs(tmp, args.pairs, writers)
        verifier = Verifier.from_path(model_path)
        verifier.model.embed_crops([np.zeros((8, 8), np.uint8)] * 2)  # warm up the network's first call
        runs = []
        for workers in (int(w) for w in args.workers.split(",")):
            cache = ImageCache()
            runs.append({"cache": "cold", **_run(verifier, pairs, tmp / "cold.csv", workers, args.batch_size, cache)})
            runs.append({"cache": "warm", **_run(verifier, pairs, tmp / "warm.csv", workers, args.batch_size, cache)})
    result = {
        "benchmark": "verify batch on synthetic signature pairs (synthetic data)",
        "machine": _machine(),
        "model": model_note,
        "images": writers * (GENUINE + FORGERIES),
        "dataset_generation_s": round(gen_s, 1),
        "batch_size": args.batch_size,
        "load_average_1min_before": round(load, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "command": f"python -m bench.bench_batch --pairs {args.pairs} --workers {args.workers}",
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    _print(result)


def _print(result: dict) -> None:
    print(f"`verify batch` throughput, synthetic signatures ({result['images']} images), {result['machine']}")
    print(f"model: {result['model']}; load average {result['load_average_1min_before']} before\n")
    print("| cache | workers | pairs | images embedded | seconds | pairs/s | peak RSS MiB (main / workers) |")
    print("|---|---|---|---|---|---|---|")
    for r in result["runs"]:
        print(
            f"| {r['cache']} | {r['workers']} | {r['pairs']} | {r['images_embedded']} | {r['seconds']} | "
            f"{r['pairs_per_s']} | {r['peak_rss_mib']} / {r['peak_rss_workers_mib']} |"
        )


if __name__ == "__main__":
    main()
