"""verify.fsutil: atomic writes leave either the old file or the new one, no temp files, the umask's mode."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from verify.fsutil import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    fsync_path,
    umask_mode,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_umask_mode_follows_the_umask():
    old = os.umask(0o027)
    try:
        assert umask_mode() == 0o640
    finally:
        os.umask(old)
    assert os.umask(old) == old  # umask_mode restored it


def test_bytes_text_json_round_trip(tmp_path, umask_022):
    assert atomic_write_bytes(tmp_path / "a.bin", b"\x00\xffdata") == tmp_path / "a.bin"
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\xffdata"
    atomic_write_text(tmp_path / "b.txt", "héllo\nwörld\r\n")
    assert (tmp_path / "b.txt").read_bytes() == "héllo\nwörld\r\n".encode()
    obj = {"x": [1, 2.5, None], "y": "z", "p": Path("q")}
    atomic_write_json(tmp_path / "c.json", obj, indent=2, default=str)
    text = (tmp_path / "c.json").read_text()
    assert text.endswith("}\n") and '\n  "x"' in text
    assert json.loads(text) == {**obj, "p": "q"}
    for name in ("a.bin", "b.txt", "c.json"):
        assert _mode(tmp_path / name) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.json"]


def test_overwrite_replaces_content_and_mode(tmp_path, umask_022):
    path = tmp_path / "f.txt"
    path.write_text("old")
    path.chmod(0o600)
    atomic_write_text(path, "new", fsync=False)
    assert path.read_text() == "new"
    assert _mode(path) == 0o644


def test_failure_inside_atomic_path_keeps_old_file_and_no_temp(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.exists() and tmp != path
        tmp.write_bytes(b"half-writ")
        raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_failure_when_writing_json_keeps_old_file(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_atomic_path_keeps_suffix_for_library_writers(tmp_path, umask_022):
    path = tmp_path / "img.png"
    image = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    with atomic_path(path) as tmp:
        assert tmp.suffix == ".png" and tmp.name.startswith(".img.png.")
        assert cv2.imwrite(str(tmp), image)  # OpenCV picks the encoder from the extension
        assert not path.exists()  # nothing published before the block ends
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), image)
    assert _mode(path) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["img.png"]
    with atomic_path(tmp_path / "noext", fsync_dir=True, mode=0o600) as tmp:
        assert tmp.suffix == ".tmp"
        tmp.write_text("z")
    assert _mode(tmp_path / "noext") == 0o600
    with atomic_path(tmp_path / "x.faiss", suffix=".part") as tmp:
        assert tmp.suffix == ".part"
        tmp.write_text("z")


def test_fsync_path_accepts_files_and_directories(tmp_path):
    (tmp_path / "f").write_text("x")
    fsync_path(tmp_path / "f")
    fsync_path(tmp_path)
    with pytest.raises(FileNotFoundError):
        fsync_path(tmp_path / "missing")


@pytest.mark.parametrize(("kwargs", "expected"), [({}, 1), ({"fsync": False}, 0), ({"fsync_dir": True}, 2)])
def test_fsync_as_asked(tmp_path, monkeypatch, kwargs, expected):
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    atomic_write_bytes(tmp_path / "f", b"x", **kwargs)
    assert len(synced) == expected
    if expected:
        assert Path(synced[0]).parent == tmp_path and Path(synced[0]).name.startswith(".f.")  # the temp file
    if expected == 2:
        assert Path(synced[1]) == tmp_path  # then the directory, after the rename


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError])
def test_interrupted_library_writer_leaves_nothing(tmp_path, exc):
    with pytest.raises(exc), atomic_path(tmp_path / "index.faiss") as tmp:
        tmp.write_bytes(b"partial")
        raise exc()
    assert list(tmp_path.iterdir()) == []
