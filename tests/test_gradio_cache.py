"""app.gradio_cache: an image file Gradio serves is never seen truncated while other requests cache it again."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from gradio import processing_utils

from app import gradio_cache


def test_cached_image_is_never_seen_partial(tmp_path: Path) -> None:
    gradio_cache.install()
    image = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)
    path = Path(processing_utils.save_img_array_to_cache(image, str(tmp_path)))  # as gr.Gallery does
    size = path.stat().st_size
    inode = path.stat().st_ino
    stop = threading.Event()
    seen: list[int] = []

    def recache() -> None:
        while not stop.is_set():
            assert processing_utils.save_img_array_to_cache(image, str(tmp_path)) == str(path)

    writers = [threading.Thread(target=recache) for _ in range(2)]
    for t in writers:
        t.start()
    try:
        for _ in range(300):  # a server sending the file: stat for Content-Length, then read the body
            seen.append(len(path.read_bytes()))
    finally:
        stop.set()
        for t in writers:
            t.join()
    assert set(seen) == {size}
    assert path.stat().st_ino == inode  # complete files are left alone, not rewritten
    assert not list(tmp_path.rglob("*.tmp"))


def test_served_file_is_never_opened_for_rewriting(tmp_path: Path, monkeypatch) -> None:
    gradio_cache.install()
    image = np.full((32, 32, 3), 7, np.uint8)
    path = Path(processing_utils.save_img_array_to_cache(image, str(tmp_path)))
    written: list[Path] = []
    real = Path.write_bytes

    def spy(self: Path, data: bytes) -> int:
        written.append(self)
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", spy)
    path.unlink()  # a missing file is written under a temporary name, then renamed into place
    assert processing_utils.save_img_array_to_cache(image, str(tmp_path)) == str(path)
    assert processing_utils.save_img_array_to_cache(image, str(tmp_path)) == str(path)  # complete: left alone
    assert path not in written and len(written) == 1 and path.is_file()


def test_new_image_is_written_whole(tmp_path: Path) -> None:
    gradio_cache.install()
    image = np.zeros((40, 30, 3), np.uint8)
    path = Path(processing_utils.save_img_array_to_cache(image, str(tmp_path), format="png"))
    from PIL import Image

    with Image.open(path) as im:
        assert im.size == (30, 40)
