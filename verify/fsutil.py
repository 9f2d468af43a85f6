"""Atomic file writes: a temporary file beside the target, fsync, then `os.replace` over it.

A reader sees either the old file or the new one, never a half-written one; a writer that fails (or is
interrupted) leaves the old file intact and removes its temporary file. Published files get the mode a plainly
created file would get under the process umask (`tempfile.mkstemp` alone would leave them 0600).

`atomic_path` hands a temporary PATH to writers that want a file name (safetensors `save_file`,
`faiss.write_index`, `cv2.imwrite`, matplotlib `savefig`); the `atomic_write_*` functions write data directly.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_path",
    "umask_mode",
]


def umask_mode() -> int:
    """The mode a plainly created file would get under the current umask (e.g. 0o644 for umask 022)."""
    return 0o666 & ~_current_umask()


def _current_umask() -> int:
    """The process umask, read from /proc where possible: setting it to read it is racy across threads."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or a directory (fsyncing the directory makes a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(
    path: str | os.PathLike[str],
    *,
    suffix: str | None = None,
    fsync: bool = True,
    fsync_dir: bool = False,
    mode: int | None = None,
) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on normal exit it replaces `path`, on an exception it is removed.

    The temporary file exists (empty) when yielded; write it by name. On normal exit it gets `mode` (default:
    `umask_mode()`), is fsynced (when `fsync`), renamed over `path`, and the directory is fsynced (when
    `fsync_dir`, which makes the rename itself durable).

    Args:
        path: the target file; its directory must exist.
        suffix: the temporary file's suffix; default the target's suffix (".png", ".safetensors", ...) so
            writers that look at the extension work, or ".tmp" when the target has none.
        fsync: flush the temporary file to disk before the rename.
        fsync_dir: fsync the directory after the rename.
        mode: the published file's permission bits; default the umask's normal mode.
    """
    target = Path(path)
    if suffix is None:
        suffix = target.suffix or ".tmp"
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, umask_mode() if mode is None else mode)
        if fsync:
            fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync_dir:
        fsync_path(target.parent)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, fsync: bool = True, fsync_dir: bool = False
) -> Path:
    """Write `data` to `path` atomically (see `atomic_path`); returns `path` as a Path."""
    with atomic_path(path, suffix=".tmp", fsync=fsync, fsync_dir=fsync_dir) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(
    path: str | os.PathLike[str],
    text: str,
    *,
    encoding: str = "utf-8",
    fsync: bool = True,
    fsync_dir: bool = False,
) -> Path:
    """Write `text` to `path` atomically, encoded as `encoding`, newlines as given (no translation)."""
    return atomic_write_bytes(path, text.encode(encoding), fsync=fsync, fsync_dir=fsync_dir)


def atomic_write_json(
    path: str | os.PathLike[str], obj: Any, *, fsync: bool = True, fsync_dir: bool = False, **json_kwargs: Any
) -> Path:
    """Write `json.dumps(obj, **json_kwargs)` plus a final newline to `path` atomically.

    Args:
        path: the target file.
        obj: a JSON-able object.
        fsync: flush the file to disk before the rename.
        fsync_dir: fsync the directory after the rename.
        **json_kwargs: passed to `json.dumps` (indent, default, sort_keys, ...).
    """
    return atomic_write_text(path, json.dumps(obj, **json_kwargs) + "\n", fsync=fsync, fsync_dir=fsync_dir)
