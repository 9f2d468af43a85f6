"""Batch inputs and images named by a URI (`file:///...`, `s3://bucket/key`, `gs://...`, `hdfs://...`), read
through `pyarrow.fs.FileSystem.from_uri`; plain paths stay plain paths.

A `file://` URI is turned into its local path, so local inputs keep every local rule (symbolic links resolved,
the images-folder check). Other schemes are read through pyarrow; their errors (an unknown scheme, a bucket that
cannot be reached, a missing key) become `DatasetError`s that name the URI.
"""

from __future__ import annotations

import posixpath
import re
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from verify.errors import DatasetError

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")  # two letters at least: `C:\...` is a path, not a URI


def is_uri(text: str) -> bool:
    """Whether `text` has a `scheme://` prefix."""
    return bool(_URI.match(text))


def local_path(text: str) -> str | None:
    """The local path of a `file://` URI (None for other URIs and for plain paths)."""
    parts = urlsplit(text)
    if parts.scheme.lower() != "file" or not is_uri(text):
        return None
    if parts.netloc not in ("", "localhost"):
        raise DatasetError(f"{text}: a file:// URI names a local path, file:///abs/path (not a host)")
    return unquote(parts.path)


def as_local(text: str) -> str | None:
    """The local path a plain path or a `file://` URI names; None for a remote URI."""
    return local_path(text) if is_uri(text) else text


def is_remote(text: str) -> bool:
    """A URI that is not `file://`: read through pyarrow, not through the local filesystem."""
    return is_uri(text) and local_path(text) is None


@lru_cache(maxsize=32)
def _filesystem(root: str) -> tuple[Any, str]:
    """(filesystem, its path of `root`) for `scheme://host[?options]`: set up once (S3 looks up the region)."""
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(root)  # type: ignore[no-any-return]


def open_uri(uri: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path in it) for a remote URI; one filesystem per scheme and host per process.

    Raises:
        DatasetError: pyarrow missing, an unknown scheme, a filesystem that cannot be set up (no network, no
            credentials, no library for it).
    """
    try:
        import pyarrow.fs  # noqa: F401
    except ModuleNotFoundError as exc:
        raise DatasetError(f"{uri}: reading URIs needs pyarrow (pip install 'siamese-verify[distributed]')") from exc
    parts = urlsplit(uri)
    try:
        fs, base = _filesystem(f"{parts.scheme}://{parts.netloc}" + (f"?{parts.query}" if parts.query else ""))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{uri}: cannot open this URI ({_first_line(exc)})") from exc
    return fs, f"{base.rstrip('/')}/{parts.path.lstrip('/')}"


def read_uri(uri: str, max_bytes: int | None = None) -> bytes:
    """The bytes of a remote file (at most `max_bytes` + 1, so a caller can tell it is too large).

    Raises:
        DatasetError: see `open_uri`; a missing key, a bucket that cannot be reached, a read error.
    """
    fs, path = open_uri(uri)
    try:
        with fs.open_input_stream(path) as fh:
            return bytes(fh.read() if max_bytes is None else fh.read(max_bytes + 1))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{uri}: cannot read it ({_first_line(exc)})") from exc


def parent(uri: str) -> str:
    """The folder URI of a remote file URI."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}{posixpath.dirname(parts.path.rstrip('/')).rstrip('/')}"


def join(base: str, relative: str) -> tuple[str, bool]:
    """`relative` under the folder URI `base`, and whether the result leaves `base` (`..` segments)."""
    parts = urlsplit(base)
    rel = posixpath.normpath(relative)
    outside = rel.startswith("/") or rel == ".." or rel.startswith("../")
    path = posixpath.normpath(posixpath.join(parts.path or "/", rel))
    return f"{parts.scheme}://{parts.netloc}{path}", outside


def is_under(uri: str, base: str) -> bool:
    """Whether the remote `uri` lies inside the folder URI `base` (same scheme and host, path below it)."""
    a, b = urlsplit(uri), urlsplit(base)
    if (a.scheme.lower(), a.netloc) != (b.scheme.lower(), b.netloc):
        return False
    root, path = posixpath.normpath(b.path or "/"), posixpath.normpath(a.path)
    return path == root or path.startswith(root.rstrip("/") + "/")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
