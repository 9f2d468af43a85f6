"""`python -m bench` (or `make bench`): run every benchmark script and regenerate BENCHMARKS.md.

Each script `bench/bench_*.py` prints a markdown table on stdout and writes `bench/results/<name>.json`. This
runner calls them one after another as subprocesses (so each starts cold), keeps their tables, and writes
BENCHMARKS.md with the machine, the date and, for each table, the command that made it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
# Order and titles; scripts not listed here run after these, titled by name.
SECTIONS = {
    "bench_signature": "Signature accuracy: real scans, independent set, synthetic test writers",
    "bench_fusion": "Fused signature score: learned share chosen on validation sets",
    "bench_finetune": "Fine-tuning the signature teacher on a user's writers",
    "bench_synth": "Synthetic signature generation",
    "bench_synth_v2": "Synthetic signature generation v2 (names, forgers, scan randomisation)",
    "bench_losses": "Metric-learning losses on synthetic signatures (training issue)",
    "bench_distill": "Distilled students and CPU inference",
    "bench_ood": "Out-of-distribution rejection",
    "bench_ood_design": "Signature OOD gate: ink statistics and classifier seed",
    "bench_gate_refusals": "Signature OOD gates: genuine signatures refused",
    "bench_face": "Face verification latency and face gate",
    "bench_face_port": "dlib face ResNet: PyTorch port vs dlib",
    "bench_gallery": "Gallery search (FAISS index types)",
    "bench_batch": "Batch signature verification",
    "bench_ray": "Batch on Ray (local cluster)",
    "bench_embed": "Embedding throughput",
    "bench_load": "Web UI under concurrent load",
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, {gpu}; Python {platform.python_version()}, "
        f"torch {torch.__version__}, {platform.system()} {platform.release()}"
    )


def write_results(out: Path, title: str, command: str, text: str, data: dict[str, Any], seconds: float) -> None:
    """A bench script's results: OUT.json (date, machine, command + `data`) and OUT.md, the BENCHMARKS.md section
    (title, command with its time and date, `text`)."""
    from verify.fsutil import atomic_write_json

    now = dt.datetime.now(dt.timezone.utc)
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = {"date": now.isoformat(timespec="seconds"), "machine": machine(), "command": command}
    atomic_write_json(out.with_suffix(".json"), {**stamp, **data})
    header = f"## {title}\n\nCommand: `{command}` ({seconds:.0f} s, run {now:%Y-%m-%d %H:%M} UTC)"
    out.with_suffix(".md").write_text(f"{header}\n\n{text}\n")


def scripts(only: list[str] | None) -> list[str]:
    found = sorted(p.stem for p in BENCH.glob("bench_*.py"))
    ordered = [s for s in SECTIONS if s in found] + [s for s in found if s not in SECTIONS]
    return [s for s in ordered if not only or s in only]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", nargs="*", help="run only these scripts (e.g. bench_gallery)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="for scripts not run now, put their last saved table (bench/results/<name>.md) in the report",
    )
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="report file (default BENCHMARKS.md)")
    args = parser.parse_args(argv)
    parts = [
        "# Benchmarks\n",
        f"Machine: {machine()}.  ",
        f"Report made {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC (each section gives when it ran). "
        "Regenerate with `make bench` "
        "(`python -m bench`). Signature data is **synthetic** (the project's generators) except rows marked real; "
        "face figures use the bundled demo photos.\n",
    ]
    failed = 0
    run_now = scripts(args.only)
    for name in scripts(None if args.reuse else args.only):
        command = f"python -m bench.{name}"
        saved = RESULTS / f"{name}.md"
        if name not in run_now:
            if saved.is_file():
                parts.append(saved.read_text())
            continue
        print(f"== {command}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        sys.stderr.write(proc.stderr[-2000:])
        title = SECTIONS.get(name, name)
        body = proc.stdout.strip() if proc.returncode == 0 else f"**failed** (exit {proc.returncode}); see stderr."
        failed += proc.returncode != 0
        when = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
        section = f"## {title}\n\nCommand: `{command}` ({seconds:.0f} s, run {when})\n\n{body}\n"
        if proc.returncode == 0:
            RESULTS.mkdir(parents=True, exist_ok=True)
            saved.write_text(section)
        parts.append(section)
        print(body, flush=True)
    Path(args.out).write_text("\n".join(parts))
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
