"""Web UI under load: N `verify` calls from C concurrent `gradio_client` clients against the running app.

Run: `python -m bench.bench_load [--requests 24] [--concurrency 4] [--url URL] [--cached]`. Without --url it
starts the app in this process (bundled face model, empty temporary gallery, queue concurrency 2) on a free
localhost port. Each request verifies a pair of the bundled demo face photos (real photos, not synthetic); by
default every request sends freshly perturbed copies (one pixel changed) so no embedding comes from the
verifier's cache, as with new photos; --cached resends the same files. Latency is client-side wall time per
call (upload + queue + pipeline + download). Writes bench/results/bench_load.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import cv2
import numpy as np

from verify.fsutil import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT / "assets" / "demo" / "faces"
RESULTS = ROOT / "bench" / "results" / "bench_load.json"
PAIRS = [("obama.jpg", "obama3.jpg"), ("obama.jpg", "biden.jpg"), ("obama2.jpg", "obama_partial_face.jpg")]


def _machine() -> str:
    return f"{os.cpu_count()}-core CPU ({platform.machine()}), torch 2 threads, app queue concurrency 2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_app(work: Path) -> tuple[Any, str]:
    """The app in this process on a free port (empty gallery); returns (blocks, url)."""
    import torch

    from app.service import VerifyService
    from app.ui import build_app, launch_app

    torch.set_num_threads(2)
    blocks = build_app(VerifyService(work / "gallery", work_dir=work / "jobs"))
    _, url, _ = launch_app(blocks, port=_free_port(), block=False)
    return blocks, url


def _perturbed(name: str, out: Path, i: int) -> str:
    """A copy of a demo photo with one pixel changed, so its content hash is new."""
    image = cv2.imread(str(FACES / name))
    image[0, 0, 0] = (int(image[0, 0, 0]) + 1 + i) % 256
    path = out / f"{i:04d}-{name.rsplit('.', 1)[0]}.png"
    cv2.imwrite(str(path), image)
    return str(path)


def _requests(n: int, cached: bool, out: Path) -> list[tuple[str, str]]:
    pairs = [PAIRS[i % len(PAIRS)] for i in range(n)]
    if cached:
        return [(str(FACES / a), str(FACES / b)) for a, b in pairs]
    return [(_perturbed(a, out, 2 * i), _perturbed(b, out, 2 * i + 1)) for i, (a, b) in enumerate(pairs)]


def run_load(url: str, jobs: list[tuple[str, str]], concurrency: int) -> dict[str, Any]:
    """Send `jobs` with `concurrency` clients (one Client per thread); latency per call and errors."""
    from gradio_client import Client, handle_file

    local = threading.local()
    errors: list[str] = []

    def call(job: tuple[str, str]) -> float | None:
        if not hasattr(local, "client"):
            local.client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        start = time.perf_counter()
        try:
            _, result, _, _ = local.client.predict(handle_file(job[0]), handle_file(job[1]), "face", api_name="/verify")
            if result["decision"] not in ("match", "no match"):
                raise RuntimeError(f"unexpected decision {result['decision']!r}")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            return None
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = [t for t in pool.map(call, jobs) if t is not None]
    wall = time.perf_counter() - start
    ms = sorted(1e3 * t for t in latencies)
    return {
        "requests": len(jobs),
        "concurrency": concurrency,
        "ok": len(ms),
        "errors": len(errors),
        "error_examples": errors[:3],
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "p95_ms": round(float(np.percentile(ms, 95)), 1) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
        "max_ms": round(ms[-1], 1) if ms else None,
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(ms) / wall, 2) if wall > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_load", description=__doc__)
    parser.add_argument("--requests", type=int, default=24, help="verify calls to send (default 24)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--url", default=None, help="a running app (default: start one in this process)")
    parser.add_argument("--cached", action="store_true", help="resend the same files (embedding cache hits)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        blocks, url = (None, args.url) if args.url else start_app(work)
        try:
            warm = work / "warm"
            warm.mkdir()
            run_load(url, _requests(1, args.cached, warm), 1)  # the first call loads the model
            result = run_load(url, _requests(args.requests, args.cached, work), args.concurrency)
        finally:
            if blocks is not None:
                blocks.close()
    result.update(
        machine=_machine(),
        workload=f"verify of demo face photo pairs ({'same files' if args.cached else 'new pixels every call'})",
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    print(f"Web UI `verify` under load ({result['machine']}; {result['workload']})\n")
    print("| requests | clients | ok | errors | p50 ms | p95 ms | mean ms | max ms | req/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {result['requests']} | {result['concurrency']} | {result['ok']} | {result['errors']} | {result['p50_ms']} "
        f"| {result['p95_ms']} | {result['mean_ms']} | {result['max_ms']} | {result['throughput_rps']} |"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS, result, indent=2)
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
