"""`python -m bench` (or `make bench`): run every benchmark script and update BENCHMARKS.md.

Each script `bench/bench_*.py` prints a markdown table on stdout and writes `bench/results/<name>.json`. This
runner calls them one after another as subprocesses (so each starts cold) and puts each table, with the machine,
the date and the command that made it, into BENCHMARKS.md between the markers `<!-- bench:<name> -->` and
`<!-- /bench:<name> -->`. Only the text between a script's markers is replaced: what is written outside them
(notes under a table, sections on one-off studies) stays as it is. A script with no block yet is appended at the
end; `--fresh` writes the whole file anew from the tables alone. A script run by hand with arguments of its own
(`python -m bench.bench_signature --synth DIR` writes bench/results/bench_signature.md) goes into its block with
`python -m bench --saved bench_signature`; that works for the scripts that write their own section (title, command,
table) through `write_results`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from verify.fsutil import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
# Order and titles; scripts not listed here run after these, titled by name.
SECTIONS = {
    "bench_signature": "Signature accuracy: real scans, independent set, synthetic test writers",
    "bench_scan_sessions": "Synthetic skilled forgeries: scan variation or forger?",
    "bench_forgery_oracle": "Synthetic skilled forgeries: pen-trace oracle",
    "bench_fusion": "Fused signature score: learned share chosen on validation sets",
    "bench_writer_dependent": "Several references: best reference or a writer-dependent classifier",
    "bench_score_norm": "Single-reference score normalisation (S-norm) against a synthetic cohort",
    "bench_finetune": "Fine-tuning the signature teacher on a user's writers",
    "bench_synth": "Synthetic signature generation",
    "bench_synth_v2": "Synthetic signature generation v2 (names, forgers, scan randomisation)",
    "bench_losses": "Metric-learning losses on synthetic signatures (training issue)",
    "bench_distill": "Distilled students and CPU inference",
    "bench_ood": "Out-of-distribution rejection",
    "bench_ood_design": "Signature OOD gate: ink statistics and classifier seed",
    "bench_gate_refusals": "Signature OOD gates: genuine signatures refused",
    "bench_gate_flag": "Signatures the gate refuses, answered with --gate-mode flag",
    "bench_face": "Face verification latency and face gate",
    "bench_face_port": "dlib face ResNet: PyTorch port vs dlib",
    "bench_gallery": "Gallery search (FAISS index types)",
    "bench_batch": "Batch signature verification",
    "bench_ray": "Batch on Ray (local cluster)",
    "bench_embed": "Embedding throughput",
    "bench_big_scans": "Signature preprocessing on big scans",
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


def command_line(module: str, argv: list[str] | None) -> str:
    """How a bench script was run: `python -m MODULE ARGS` (its own argv, else the process's)."""
    return " ".join(["python -m", module, *(argv if argv is not None else sys.argv[1:])])


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


def block(name: str, text: str) -> str:
    """`text` between the markers of block `name` (a script's name, or "header")."""
    return f"<!-- bench:{name} -->\n{text.strip()}\n<!-- /bench:{name} -->\n"


def update(report: str, blocks: dict[str, str]) -> str:
    """`report` with each named block's text replaced by `blocks[name]` (blocks it lacks appended at its end);
    everything outside the markers is kept as it is."""
    for name, text in blocks.items():
        pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->\n.*?<!-- /bench:{re.escape(name)} -->\n", re.S)
        found = pattern.search(report)
        if found:
            report = report[: found.start()] + block(name, text) + report[found.end() :]
        else:
            report = report.rstrip("\n") + "\n\n" + block(name, text)
    return report


def _header() -> str:
    return (
        "# Benchmarks\n\n"
        f"Last updated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}. Each section gives "
        "when it ran; its JSON in bench/results/ names the machine it ran on.  \n"
        "Regenerate with `make bench` (`python -m bench`; text outside the `<!-- bench:... -->` markers is kept). "
        "Signature data is **synthetic** (the project's generators) except rows marked real; face figures use the "
        "bundled demo photos."
    )


def _run(name: str) -> tuple[str, bool]:
    """Run one script; its section (title, command, time, table) and whether it succeeded."""
    command = f"python -m bench.{name}"
    print(f"== {command}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    sys.stderr.write(proc.stderr[-2000:])
    body = proc.stdout.strip() if proc.returncode == 0 else f"**failed** (exit {proc.returncode}); see stderr."
    when = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    section = f"## {SECTIONS.get(name, name)}\n\nCommand: `{command}` ({seconds:.0f} s, run {when})\n\n{body}\n"
    print(body, flush=True)
    return section, proc.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", nargs="*", help="run only these scripts (e.g. bench_gallery)")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="write the report anew from the tables alone (drops every note written outside the markers)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --fresh: for scripts not run now, put their last saved table (bench/results/<name>.md) into the "
        "report",
    )
    parser.add_argument(
        "--saved",
        nargs="+",
        default=[],
        metavar="NAME",
        help="put these scripts' saved tables in their blocks without running them (after `python -m bench.NAME "
        "ARGS` wrote bench/results/NAME.md with arguments of your own)",
    )
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="report file (default BENCHMARKS.md)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.only is not None and not args.only:
        parser.error("--only needs the names of the scripts to run (e.g. --only bench_gallery)")
    blocks, failed = {"header": _header()}, 0
    for name in args.saved:
        saved = RESULTS / f"{name}.md"
        if not saved.is_file():
            parser.error(f"no saved table for {name} (bench/results/{name}.md); run python -m bench.{name} first")
        blocks[name] = saved.read_text()
    run_now = [] if args.saved and args.only is None else scripts(args.only)
    for name in scripts(None) if args.fresh and args.reuse else run_now:
        saved = RESULTS / f"{name}.md"
        if name in blocks:
            continue
        if name not in run_now:  # --fresh --reuse: the last saved table
            if saved.is_file():
                blocks[name] = saved.read_text()
            continue
        section, ok = _run(name)
        failed += not ok
        if ok:
            RESULTS.mkdir(parents=True, exist_ok=True)
            saved.write_text(section)
        blocks[name] = section
    existing = "" if args.fresh or not out.is_file() else out.read_text()
    atomic_write_bytes(out, update(existing, blocks).lstrip("\n").encode())
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
