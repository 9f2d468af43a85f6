"""The Ray engine against the local engine on one machine (synthetic data), and bulk gallery building.

Run: `python -m bench.bench_ray [--pairs 10000] [--bulk 100000] [--rounds 2] [--results DIR]`. Prints markdown
tables and writes bench_ray.json and bench_ray.md into `--results` (default bench/results). The pairs, images
and model are `bench_batch`'s (synthetic signatures, the bundled signature student). Rows:
- `--rounds` rounds, each: the local engine, cold cache (every image decoded, preprocessed, embedded), DataLoader
  workers 0 and 2, then the Ray engine on a local cluster of 2 CPUs (`ray.init(num_cpus=2)`, started once and
  timed apart; each job starts its actor pool and loads the model in every actor), partitions of 2,000 rows.
  Interleaved, so a machine shared with other jobs loads both engines alike; each row states the 1-minute load
  average before it;
- bulk embedding of the bench images (`run_embed`, both engines);
- a gallery built in one pass from `--bulk` synthetic unit embeddings (128-d, 10 per identity, clustered) written
  as a `verify embed` Parquet file: write, build (index chosen by size) and recall@1 of 500 noisy queries
  against exact search.
The ratio Ray / local is on job time with the cluster running (how a cluster is used); "incl. start" adds the
one-off `ray.init`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.bench_batch import FORGERIES, GENUINE, _machine, _model, _pairs
from verify.batch import BatchConfig, ImageCache, run_batch
from verify.batch.embed_job import run_embed
from verify.batch.ray_engine import run_batch_ray
from verify.batch.ray_images import RayOptions
from verify.synth import generate_dataset
from verify.verifier import Verifier

RESULTS = Path(__file__).resolve().parent / "results"


def _local(verifier: Verifier, pairs: Path, out: Path, workers: int, batch: int) -> dict:
    load = round(os.getloadavg()[0], 2)
    config = BatchConfig(pairs=pairs, out=out, workers=workers, batch_size=batch, chunk_rows=512)
    s = run_batch(verifier, config, progress=False, cache=ImageCache())
    return {"engine": f"local, workers {workers}", "pairs": s.rows, "seconds": round(s.seconds, 2), "load": load}


def _ray(verifier: Verifier, pairs: Path, out: Path, options: RayOptions, label: str) -> dict:
    load = round(os.getloadavg()[0], 2)
    s = run_batch_ray(verifier, BatchConfig(pairs=pairs, out=out), options, progress=False)
    return {"engine": f"ray, {label}", "pairs": s.rows, "seconds": round(s.seconds, 2), "load": load}


def _max_diff(a: Path, b: Path) -> dict:
    x, y = (pd.read_csv(p, dtype=str, keep_default_na=False) for p in (a, b))
    score = np.nanmax(np.abs(pd.to_numeric(x["score"], errors="coerce") - pd.to_numeric(y["score"], errors="coerce")))
    return {"max_abs_score_diff": float(score), "same_decisions": bool((x["decision"] == y["decision"]).all())}


def _bulk(tmp: Path, n: int, fingerprint: str, seed: int = 0) -> dict:
    from verify.gallery import FaissGallery
    from verify.gallery.bulk import build_gallery
    from verify.gallery.embeddings_file import EMBED_COLUMNS, write_embeddings

    rng = np.random.default_rng(seed)
    dim, per = 128, 10
    centres = rng.normal(size=(n // per, dim)).astype(np.float32)
    x = np.repeat(centres, per, axis=0) + 0.35 * rng.normal(size=(n // per * per, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = [f"s{i}" for i in range(len(x))]
    frame = pd.DataFrame(
        {
            "id": ids,
            "path": [f"/data/{i}.png" for i in ids],
            "sha256": [f"{i:064x}" for i in range(len(x))],
            "fingerprint": fingerprint,
            "embedding": list(x),
            "status": "ok",
            "reason": "",
            "ood_score": None,
        },
        columns=list(EMBED_COLUMNS),
    )
    t0 = time.perf_counter()
    write_embeddings(frame, tmp / "bulk.parquet", dim)
    write_s = time.perf_counter() - t0
    pd.DataFrame({"id": ids, "identity": [f"p{i // per}" for i in range(len(x))]}).to_csv(tmp / "labels.csv")
    summary = build_gallery(tmp / "gallery", tmp / "bulk.parquet", tmp / "labels.csv", fingerprint=fingerprint)
    picks = rng.choice(len(x), 500, replace=False)
    queries = x[picks] + 0.02 * rng.normal(size=(500, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = (queries @ x.T).argmax(axis=1) // per
    with FaissGallery.open(tmp / "gallery", fingerprint=fingerprint) as gallery:
        t1 = time.perf_counter()
        found = [gallery.identify(q, threshold=-1.0).name for q in queries]
        search_ms = 1e3 * (time.perf_counter() - t1) / len(queries)
    recall = float(np.mean([f == f"p{e}" for f, e in zip(found, exact, strict=True)]))
    return {
        "embeddings": len(x),
        "identities": summary.identities,
        "index_type": summary.index_type,
        "parquet_write_s": round(write_s, 2),
        "build_s": round(summary.seconds, 2),
        "recall_at_1_vs_exact": round(recall, 3),
        "identify_ms": round(search_ms, 2),
        "parquet_mib": round((tmp / "bulk.parquet").stat().st_size / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=10_000, help="synthetic pairs (default 10,000)")
    p.add_argument("--bulk", type=int, default=100_000, help="synthetic embeddings for the gallery build")
    p.add_argument("--batch-size", type=int, default=64, help="images per embedding batch (default 64)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of local (workers 0, 2) then Ray (default 2)")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for bench_ray.json/.md")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    import ray

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        model_path, model_note = _model(tmp)
        writers = max(4, args.pairs // (5 * (GENUINE + FORGERIES)) + 1)
        generate_dataset(tmp, writers, GENUINE, FORGERIES, seed=0, workers=2, progress=False)
        pairs = _pairs(tmp, args.pairs, writers)
        verifier = Verifier.from_path(model_path)
        verifier.model.embed_crops([np.zeros((8, 8), np.uint8)] * 2)
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - t0
        try:
            options = RayOptions(batch_size=args.batch_size, partition_rows=2000)
            runs = []
            for k in range(1, args.rounds + 1):
                runs += [_local(verifier, pairs, tmp / f"local{w}_{k}.csv", w, args.batch_size) for w in (0, 2)]
                runs.append(_ray(verifier, pairs, tmp / f"ray{k}.csv", options, f"job {k}"))
                runs[-1]["vs_local_this_round"] = round(min(r["seconds"] for r in runs[-3:-1]) / runs[-1]["seconds"], 2)
            agreement = _max_diff(tmp / "local0_1.csv", tmp / "ray1.csv")
            embed = []
            for engine in ("local", "ray"):
                s = run_embed(verifier, tmp / "full_org", tmp / f"emb_{engine}.parquet", engine, batch_size=64)  # type: ignore[arg-type]
                embed.append({"engine": engine, "images": s.images, "seconds": round(s.seconds, 2)})
        finally:
            ray.shutdown()
        bulk = _bulk(tmp, args.bulk, verifier.model.fingerprint)
    local_best = min(r["seconds"] for r in runs if r["engine"].startswith("local"))
    for r in runs:
        r["pairs_per_s"] = round(r["pairs"] / r["seconds"], 1)
        r["vs_best_local"] = round(local_best / r["seconds"], 2)
        if r["engine"].startswith("ray"):
            r["vs_best_local_incl_start"] = round(local_best / (r["seconds"] + init_s), 2)
    for e in embed:
        e["images_per_s"] = round(e["images"] / e["seconds"], 1)
    result = {
        "benchmark": "Ray engine vs local engine, synthetic signature pairs (synthetic data); bulk gallery build",
        "machine": _machine(),
        "model": model_note,
        "images": writers * (GENUINE + FORGERIES),
        "ray_init_s": round(init_s, 2),
        "load_average_1min_before": round(load, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "command": f"python -m bench.bench_ray --pairs {args.pairs} --bulk {args.bulk} --rounds {args.rounds}",
        "runs": runs,
        "agreement_local_vs_ray": agreement,
        "embed": embed,
        "bulk_gallery": bulk,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "bench_ray.json").write_text(json.dumps(result, indent=2) + "\n")
    table = _table(result)
    (args.results / "bench_ray.md").write_text(
        f"## Batch on Ray (local cluster)\n\nCommand: `{result['command']}`\n\n{table}"
    )
    print(table)


def _table(r: dict) -> str:
    agree = r["agreement_local_vs_ray"]
    lines = [
        f"Ray engine vs local engine, synthetic signatures ({r['images']} images), {r['machine']}",
        f"model: {r['model']}; load average {r['load_average_1min_before']} before; `ray.init(num_cpus=2)` "
        f"took {r['ray_init_s']} s; Ray vs local scores: max |diff| {agree['max_abs_score_diff']:.1e}, "
        f"same decisions: {agree['same_decisions']}\n",
        "| engine | pairs | seconds | pairs/s | x best local | x best local incl. ray.init | x this round's local "
        "| load before |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in r["runs"]:
        incl = x.get("vs_best_local_incl_start", "")
        lines.append(
            f"| {x['engine']} | {x['pairs']} | {x['seconds']} | {x['pairs_per_s']} | {x['vs_best_local']} | {incl} "
            f"| {x.get('vs_local_this_round', '')} | {x['load']} |"
        )
    lines += ["", "| bulk embedding (`run_embed`) | images | seconds | images/s |", "|---|---|---|---|"]
    lines += [f"| {e['engine']} | {e['images']} | {e['seconds']} | {e['images_per_s']} |" for e in r["embed"]]
    b = r["bulk_gallery"]
    lines += [
        "",
        "| bulk gallery build | embeddings | identities | index | Parquet write s | build s | recall@1 vs exact"
        " | identify ms |",
        "|---|---|---|---|---|---|---|---|",
        f"| synthetic 128-d | {b['embeddings']} | {b['identities']} | {b['index_type']} | {b['parquet_write_s']} | "
        f"{b['build_s']} | {b['recall_at_1_vs_exact']} | {b['identify_ms']} |",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
