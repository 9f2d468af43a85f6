"""`verify gallery` as a subprocess: list --samples, a closed stdout pipe, a damaged gallery, reembed naming the
sample the new model refuses: one line (or nothing) on stderr, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from verify.cli import main
from verify.gallery import FaissGallery

VERIFY_BIN = str(Path(sys.executable).parent / "verify")


def _verify(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VERIFY_BIN, *map(str, args)], capture_output=True, text=True, timeout=300)


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


@pytest.fixture
def gallery(tmp_path: Path, synth_signatures: Path) -> Path:
    """Identities 'a' (one signature) and 'b' (one blank page, which a signature model refuses)."""
    rng = np.random.default_rng(0)
    signature = (synth_signatures / "full_org" / "original_1_1.png").read_bytes()
    blank = _png(np.full((64, 96), 255, np.uint8))
    with FaissGallery.create(tmp_path / "g", dim=16, fingerprint="old-model") as g:
        g.enroll("a", rng.standard_normal(16), images=[signature], sources=["a.png"])
        g.enroll("b", rng.standard_normal(16), images=[blank], sources=["blank.png"])
    return tmp_path / "g"


def test_list_samples_prints_every_sample(gallery: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = _verify("gallery", "list", "--gallery", gallery, "--samples")
    assert proc.returncode == 0, proc.stderr
    assert "sample 1" in proc.stdout and "sample 2" in proc.stdout and "blank.png" in proc.stdout
    proc = _verify("gallery", "list", "--gallery", gallery, "--samples", "--json")
    assert '"id": 1' in proc.stdout
    main(["gallery", "stats", "--gallery", str(gallery)])
    out = capsys.readouterr().out
    assert "\nfile_bytes:\n  gallery.sqlite: " in out and "{" not in out  # nested values one per line, no dict


def test_closed_stdout_pipe_ends_quietly(gallery: Path) -> None:
    proc = subprocess.Popen(
        [VERIFY_BIN, "gallery", "stats", "--gallery", str(gallery)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the command writes (as `| head` after its lines)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 141 and b"Traceback" not in err and b"Exception ignored" not in err, err


def test_damaged_gallery_database_is_one_line(gallery: Path) -> None:
    db = gallery / "gallery.sqlite"
    db.write_bytes(db.read_bytes()[:50])
    proc = _verify("gallery", "stats", "--gallery", gallery)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "not an SQLite gallery database" in proc.stderr


def test_reembed_names_the_refused_sample_and_changes_nothing(gallery: Path, tiny_model: Path) -> None:
    proc = _verify("gallery", "reembed", "--gallery", gallery, "--model", tiny_model)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "sample 2 of 'b'" in proc.stderr and "nothing was re-embedded" in proc.stderr
    with FaissGallery.open(gallery) as g:
        assert g.fingerprint == "old-model" and g.stats()["samples"] == 2
