"""app.zipsafe: names that would collide on disk are refused with a clear DatasetError, nothing written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from app.zipsafe import safe_extract
from verify.errors import DatasetError


def _zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "members",
    [[("a", b"file"), ("a/b.png", b"x")], [("a/b.png", b"x"), ("a", b"file")], [("d/a", b"1"), ("d/a/c/e.png", b"2")]],
)
def test_name_that_is_both_file_and_folder_is_refused(tmp_path: Path, members: list[tuple[str, bytes]]) -> None:
    with pytest.raises(DatasetError, match="is both a file and a folder") as info:
        safe_extract(_zip(tmp_path / "t.zip", members), tmp_path / "out")
    assert str(tmp_path) not in str(info.value)  # no server path in the message
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_file_listed_twice_is_refused(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        archive = _zip(tmp_path / "t.zip", [("a.png", b"1"), ("a.png", b"2")])
    with pytest.raises(DatasetError, match="appears twice"):
        safe_extract(archive, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.png"))
