"""Extract an uploaded zip of images without trusting it: no path traversal, no links, no zip bombs.

Every limit is checked from the zip's central directory before one byte is written, and again while
streaming (a member's header can understate its size): the total uncompressed size, the number of files, the
compression ratio of each member and of the whole archive.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from verify.errors import DatasetError

_CHUNK = 1 << 16


@dataclass(frozen=True)
class ZipLimits:
    """Limits for an uploaded archive.

    Attributes:
        max_files: most members (files and folders) the archive may list.
        max_total_bytes: most bytes all members may expand to.
        max_ratio: most a member (or the whole archive) may expand, uncompressed / compressed size.
        ratio_floor_bytes: members smaller than this are not ratio-checked (tiny files compress very well).
    """

    max_files: int = 5000
    max_total_bytes: int = 500 * 2**20
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 1 << 20


def _member_path(info: zipfile.ZipInfo, label: str) -> PurePosixPath:
    """The member's relative path, refusing absolute paths, `..`, drive letters, NULs and links."""
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DatasetError(f"{label}: refused: member {name!r} is a symbolic link")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no Unix type given (plain file)
        raise DatasetError(f"{label}: refused: member {name!r} is not a regular file")
    if "\x00" in name or "\\" in name:
        raise DatasetError(f"{label}: refused: member name {name!r} has a NUL or backslash")
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise DatasetError(f"{label}: refused: member {name!r} has an absolute path")
    if ".." in path.parts:
        raise DatasetError(f"{label}: refused: member {name!r} points outside the archive (`..`)")
    return path


def check_zip(archive: zipfile.ZipFile, label: str, limits: ZipLimits) -> list[zipfile.ZipInfo]:
    """Check the central directory against `limits`; returns the file members to extract.

    Raises:
        DatasetError: a traversal, link, special file, encrypted member, a name that is both a file and a
            folder (or a file twice), or a limit exceeded.
    """
    infos = archive.infolist()
    if len(infos) > limits.max_files:
        raise DatasetError(f"{label}: refused: {len(infos)} members, over the limit of {limits.max_files}")
    total = compressed = 0
    files = []
    for info in infos:
        _member_path(info, label)
        if info.flag_bits & 0x1:
            raise DatasetError(f"{label}: refused: member {info.filename!r} is encrypted")
        if info.is_dir():
            continue
        total += info.file_size
        compressed += info.compress_size
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise DatasetError(
                f"{label}: refused as a possible zip bomb: member {info.filename!r} expands "
                f"{info.file_size / max(info.compress_size, 1):.0f}x (limit {limits.max_ratio:.0f}x)"
            )
        files.append(info)
    _check_names(files, label)
    if total > limits.max_total_bytes:
        raise DatasetError(
            f"{label}: refused as a possible zip bomb: expands to {total} bytes, over the limit of "
            f"{limits.max_total_bytes} bytes"
        )
    if total > limits.ratio_floor_bytes and total > limits.max_ratio * max(compressed, 1):
        raise DatasetError(
            f"{label}: refused as a possible zip bomb: expands {total / max(compressed, 1):.0f}x "
            f"(limit {limits.max_ratio:.0f}x)"
        )
    return files


def _check_names(files: list[zipfile.ZipInfo], label: str) -> None:
    """Refuse a file listed twice, or a file whose path is also a folder of another member (`a` and `a/b.png`)."""
    seen: set[PurePosixPath] = set()
    folders: set[PurePosixPath] = set()
    for info in files:
        path = PurePosixPath(info.filename)
        if path in seen:
            raise DatasetError(f"{label}: refused: member {info.filename!r} appears twice")
        seen.add(path)
        folders.update(path.parents)
    clash = sorted(seen & folders)
    if clash:
        raise DatasetError(f"{label}: refused: {str(clash[0])!r} is both a file and a folder in the archive")


def safe_extract(zip_path: str | Path, dest: str | Path, limits: ZipLimits | None = None) -> list[Path]:
    """Extract the regular files of `zip_path` under `dest` after checking it (see module docstring).

    Args:
        zip_path: the uploaded archive.
        dest: an empty folder to extract into (created if missing).
        limits: size, count and ratio limits; default `ZipLimits()`.

    Returns:
        the extracted files, in archive order.

    Raises:
        DatasetError: not a zip, or refused (the message says why); nothing is extracted then.
    """
    limits = limits or ZipLimits()
    label = Path(zip_path).name
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{label}: not a zip archive ({exc})") from exc
    written: list[Path] = []
    with archive:
        members = check_zip(archive, label, limits)
        budget = limits.max_total_bytes
        try:
            for info in members:
                target = (root / _member_path(info, label)).resolve()
                if not target.is_relative_to(root):
                    raise DatasetError(f"{label}: refused: member {info.filename!r} resolves outside the archive")
                target.parent.mkdir(parents=True, exist_ok=True)
                written.append(target)
                budget = _copy_capped(archive, info, target, budget, label)
        except DatasetError:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    return written


def _copy_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, label: str) -> int:
    """Stream one member to `target`, stopping when it writes more than declared or than the budget."""
    allowed = min(info.file_size, budget)
    n = 0
    try:
        with archive.open(info) as src, open(target, "xb") as dst:
            while chunk := src.read(_CHUNK):
                n += len(chunk)
                if n > allowed:
                    raise DatasetError(f"{label}: refused: member {info.filename!r} expands past its declared size")
                dst.write(chunk)
    except FileExistsError as exc:
        raise DatasetError(f"{label}: refused: member {info.filename!r} appears twice") from exc
    except (zipfile.BadZipFile, RuntimeError, OSError, EOFError) as exc:
        raise DatasetError(f"{label}: corrupt member {info.filename!r} ({exc})") from exc
    return budget - n


def clear_folder(path: Path) -> None:
    """Remove an extraction folder (after a refusal or when a job is done)."""
    shutil.rmtree(path, ignore_errors=True)
