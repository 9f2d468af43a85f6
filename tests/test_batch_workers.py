"""Batch decode workers die with their parent: a `kill -9` of `verify batch --workers 2` leaves no process.

Large crops (256x384) fill the pipes back to the parent, the case where workers used to outlive it: a worker
that notices its parent is gone still waits, at exit, for its queue's feeder thread, blocked on a full pipe."""

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


def _large_input_model(directory: Path) -> Path:
    from verify.models import new_card, save_model
    from verify.models.network import create_timm_network

    arch = {"kind": "timm", "backbone": "resnet18", "dim": 16, "in_chans": 1}
    card = new_card(
        name="large-input",
        modality="signature",
        architecture=arch,
        input={"height": 256, "width": 384, "channels": 1},
        preprocessing={"kind": "signature"},
        calibration={"threshold": 0.5, "source": "test"},
    )
    return save_model(directory, create_timm_network(arch).eval(), card)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.timeout(300)
def test_workers_die_with_a_killed_parent(synth_signatures: Path, tmp_path: Path) -> None:
    model = _large_input_model(tmp_path / "model")
    sources = sorted((synth_signatures / "full_org").glob("*.png"))
    images = [f"{i}.png" for i in range(48)]
    for i, name in enumerate(images):
        shutil.copy(sources[i % len(sources)], tmp_path / name)
    pairs = tmp_path / "pairs.csv"
    with pairs.open("w", newline="") as fh:
        rows = [[a, b] for a, b in zip(images[::2], images[1::2], strict=True)]
        csv.writer(fh).writerows([["reference", "questioned"], *rows])
    cmd = [VERIFY_BIN, "batch", "--pairs", str(pairs), "--out", str(tmp_path / "out.csv"), "--model", str(model)]
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
