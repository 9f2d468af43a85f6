"""Gradio's image cache written atomically, so a file being served is never truncated under its reader.

Gradio (6.x) writes every image an event returns as an array or PIL image to a content-addressed cache file with
`Path.write_bytes`, which truncates and rewrites the file even when the same bytes are already there. When two
requests return the same image (a gallery cover, a demo thumbnail) at once, one rewrite can truncate the file
while the server is sending it with the Content-Length it read before: the client gets a broken image and the
server logs h11's "Too little data for declared Content-Length". `install()` replaces
`gradio.processing_utils.save_pil_to_cache` with a version that writes a new file under a temporary name and
renames it into place (readers keep the complete old inode), and only touches a file that is already complete,
as Gradio's own `save_file_to_cache` does for files.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from gradio import processing_utils


def save_pil_to_cache_atomic(img: Any, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """`gradio.processing_utils.save_pil_to_cache`, written atomically and only when missing."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    try:
        if path.stat().st_size == len(data):
            os.utime(path)  # Gradio's delete_cache ages files by ctime: a file handed out again is kept
            return str(path)
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return str(path)


def install() -> None:
    """Use `save_pil_to_cache_atomic` for every image Gradio caches (arrays go through it too). Idempotent."""
    processing_utils.save_pil_to_cache = save_pil_to_cache_atomic  # type: ignore[assignment]
