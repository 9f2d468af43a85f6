"""Batch decode workers die with their parent: a `kill -9` of `verify batch --workers 2` leaves no process."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from verify.batch.runner import CHUNK_SLEEP_ENV

VERIFY_BIN = str(Path(sys.executable).parent / "verify")


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.timeout(300)
def test_workers_die_with_a_killed_parent(synth_signatures: Path, tiny_model: Path, tmp_path: Path) -> None:
    images = sorted((synth_signatures / "full_org").glob("*.png"))[:12]
    for p in images:
        shutil.copy(p, tmp_path / p.name)
    pairs = tmp_path / "pairs.csv"
    with pairs.open("w", newline="") as fh:
        rows = [[a.name, b.name] for a, b in zip(images, images[1:] + images[:1], strict=True)]
        csv.writer(fh).writerows([["reference", "questioned"], *rows])
    cmd = [VERIFY_BIN, "batch", "--pairs", str(pairs), "--out", str(tmp_path / "out.csv"), "--model", str(tiny_model)]
    env = {**os.environ, CHUNK_SLEEP_ENV: "60"}
    proc = subprocess.Popen(
        [*cmd, "--workers", "2", "--batch-size", "2", "--chunk-rows", "1", "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 200
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the batch job ended before it was killed"
            workers = _children(proc.pid)
            time.sleep(0.2)
        assert len(workers) >= 2, "no decode workers started"
        journal = tmp_path / "out.csv.partial"
        while not (journal.exists() and journal.read_text().count("\n") >= 2) and time.monotonic() < deadline:
            time.sleep(0.2)  # the first row is written: the workers are mid-run, the parent is sleeping
        workers = _children(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:  # do not leave them behind even when the test fails
        os.kill(w, signal.SIGKILL)
    assert not survivors
