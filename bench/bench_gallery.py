"""Gallery search on SYNTHETIC clustered 128-d embeddings: Flat (exact), HNSW32 (efSearch tuned), IVF (nprobe tuned).

Run: `python -m bench.bench_gallery [--full] [--queries 1000]`. Sizes 10k and 100k (1M with --full). Data are
synthetic identities (10 samples around a random unit centre, intra-identity cosine ~0.75), queries are new
samples of enrolled identities. recall@1 = the index's top-1 sample has the exact top-1 score (ties allowed).
q/s is for batches of queries with 2 faiss threads; memory is the serialized index size per vector. Also times
`FaissGallery` itself (SQLite + index, one query at a time) at 10k. Writes bench/results/bench_gallery.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from verify.fsutil import atomic_write_json
from verify.gallery import FaissGallery
from verify.gallery import index as ix

RESULTS = Path(__file__).resolve().parent / "results" / "bench_gallery.json"
DIM, PER_ID, SPREAD = 128, 10, 0.6
EF_SEARCH = (16, 32, 64, 128, 256)
NPROBE = (1, 2, 4, 8, 16, 32, 64, 128)
TARGET_RECALL = 0.95


def _machine() -> str:
    return f"{os.cpu_count()}-core CPU ({platform.machine()}), faiss {faiss.__version__}, 2 faiss threads"


def synthetic(n: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors: base [n, 128] (n/10 identities x 10 samples), queries [Q, 128] of the same ids."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // PER_ID, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def around(ids: np.ndarray) -> np.ndarray:
        x = centres[ids] + SPREAD * rng.standard_normal((len(ids), DIM)).astype(np.float32) / DIM**0.5
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    base = np.concatenate([around(np.arange(i, min(i + 100_000, n)) // PER_ID) for i in range(0, n, 100_000)])
    return base.astype(np.float32), around(rng.integers(0, len(centres), n_queries)).astype(np.float32)


def _timed_search(index: faiss.Index, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    scores, _ = index.search(queries, k)
    return scores[:, 0], len(queries) / (time.perf_counter() - start)


def _sweep(name: str, index: faiss.Index, param: str, values: tuple[int, ...], queries: np.ndarray, exact: np.ndarray):
    """Recall@1 and q/s for each search parameter value; the tuned one is the fastest reaching the target."""
    rows = []
    for v in values:
        ix.set_search_params(index, name, f"{param}={v}")
        scores, qps = _timed_search(index, queries)
        rows.append({param: v, "recall_at_1": float(np.mean(scores >= exact - 1e-5)), "qps": qps})
    good = [r for r in rows if r["recall_at_1"] >= TARGET_RECALL]
    return (max(good, key=lambda r: r["qps"]) if good else max(rows, key=lambda r: r["recall_at_1"])), rows


def bench_size(n: int, n_queries: int) -> list[dict[str, Any]]:
    """Build and search every index type on n synthetic vectors."""
    base, queries = synthetic(n, n_queries)
    ids = np.arange(n, dtype=np.int64)
    nlist = int(2 * np.sqrt(n))
    results = []
    for name, param, values in (
        ("Flat", None, ()),
        ("HNSW32", "efSearch", EF_SEARCH),
        (f"IVF{nlist},Flat", "nprobe", NPROBE),
    ):
        start = time.perf_counter()
        index = ix.build_index(DIM, name, base, ids)
        build_s = time.perf_counter() - start
        row = {"n": n, "index": name, "build_s": build_s, "bytes_per_vector": len(faiss.serialize_index(index)) / n}
        if param is None:
            exact, qps = _timed_search(index, queries)
            row.update(recall_at_1=1.0, qps=qps, setting="exact")
            exact_qps = qps
        else:
            tuned, sweep = _sweep(name, index, param, values, queries, exact)
            row.update(recall_at_1=tuned["recall_at_1"], qps=tuned["qps"], setting=f"{param}={tuned[param]}")
            row["sweep"] = sweep
        row["speedup_vs_exact"] = row["qps"] / exact_qps
        results.append(row)
        del index
    return results


def bench_gallery_object(n: int = 10_000, n_queries: int = 200) -> dict[str, Any]:
    """FaissGallery end to end: enroll n/10 identities one call each, then single-query search and identify."""
    base, queries = synthetic(n, n_queries, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        gallery = FaissGallery.create(Path(tmp) / "g", dim=DIM, fingerprint="bench")
        start = time.perf_counter()
        for i in range(0, n, PER_ID):
            gallery.enroll(f"id{i // PER_ID}", base[i : i + PER_ID])
        enroll_s = time.perf_counter() - start
        start = time.perf_counter()
        for q in queries:
            gallery.search(q, k=5)
        search_qps = n_queries / (time.perf_counter() - start)
        start = time.perf_counter()
        for q in queries:
            gallery.identify(q, threshold=0.5)
        identify_qps = n_queries / (time.perf_counter() - start)
        sqlite_bytes = gallery.stats()["file_bytes"].get("gallery.sqlite", 0)
        gallery.close()
    return {
        "n": n,
        "enroll_calls_per_s": n / PER_ID / enroll_s,
        "search_qps_single": search_qps,
        "identify_qps_single": identify_qps,
        "sqlite_bytes_per_sample": sqlite_bytes / n,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| n | index | setting | recall@1 | q/s | x exact | build s | bytes/vector |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['index']} | {r['setting']} | {r['recall_at_1']:.3f} | {r['qps']:,.0f} |"
            f" {r['speedup_vs_exact']:.1f} | {r['build_s']:.1f} | {r['bytes_per_vector']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run 1M vectors (minutes, several GB of RAM)")
    parser.add_argument("--queries", type=int, default=1000, help="queries per size")
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(2)
    rows = []
    for n in (10_000, 100_000, 1_000_000) if args.full else (10_000, 100_000):
        rows += bench_size(n, args.queries)
    gallery = bench_gallery_object()
    print(f"Gallery search, SYNTHETIC clustered {DIM}-d embeddings, {_machine()}\n")
    print(_table(rows))
    print(
        f"\nFaissGallery at {gallery['n']:,} samples (SQLite + Flat index, one query at a time): "
        f"{gallery['search_qps_single']:,.0f} search/s, {gallery['identify_qps_single']:,.0f} identify/s, "
        f"{gallery['enroll_calls_per_s']:.1f} enroll calls/s (10 samples each), "
        f"{gallery['sqlite_bytes_per_sample']:.0f} SQLite bytes/sample"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {"data": "synthetic clustered embeddings", "machine": _machine(), "indexes": rows, "gallery": gallery}
    atomic_write_json(RESULTS, payload, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
