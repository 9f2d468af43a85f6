"""Face detection: dlib's HOG detector (default) or an OpenCV Haar cascade, on a downscaled working copy.

Boxes come back in the coordinates of the image given, as `FaceBox` objects with the detector's score.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from verify.errors import ConfigError, InvalidImageError

DETECTORS = ("hog", "haar")
SELECTIONS = ("largest", "central")
HAAR_FILE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class FaceBox:
    """A detected face: pixel box (right/bottom exclusive) in the input image and the detector's score."""

    left: int
    top: int
    right: int
    bottom: int
    score: float = 0.0
    detector: str = "hog"

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return (self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 [H, W] / [H, W, 1] / [H, W, 3] / [H, W, 4] image as contiguous RGB [H, W, 3].

    RGBA is composited over white (transparent pixels become paper-white, not black).
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = getattr(image, "dtype", type(image).__name__)
        raise InvalidImageError(f"expected a uint8 image array, got {kind}; decode it with verify.io first")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return np.ascontiguousarray(np.repeat(image.reshape(image.shape[:2])[..., None], 3, axis=2))
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float32) / 255.0
        out = image[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.ascontiguousarray(np.round(out).astype(np.uint8))
    raise InvalidImageError(f"expected an image of shape [H, W] or [H, W, 3|4], got {image.shape}")


def _build_hog() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


def _build_haar() -> Any:
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(folder or "") / HAAR_FILE
    if not folder or not path.is_file():
        raise ConfigError(
            f"the 'haar' detector needs {HAAR_FILE} from opencv-python(-headless) 4.x (cv2.data.haarcascades);"
            " this OpenCV has none: use detector='hog'"
        )
    return cv2.CascadeClassifier(str(path))


# Idle detectors by kind. dlib releases the GIL while it scans an image and a detector keeps its feature
# pyramid in itself while it runs, so concurrent detections must not share one; building a HOG detector
# takes ~0.3 s, so they are kept for reuse.
_BUILDERS = {"hog": _build_hog, "haar": _build_haar}
_IDLE: dict[str, queue.SimpleQueue[Any]] = {kind: queue.SimpleQueue() for kind in _BUILDERS}


@contextmanager
def _borrow_detector(kind: str) -> Iterator[Any]:
    """An idle detector of this kind (a new one when all are busy), given back after use."""
    try:
        detector = _IDLE[kind].get_nowait()
    except queue.Empty:
        detector = _BUILDERS[kind]()
    try:
        yield detector
    finally:
        _IDLE[kind].put(detector)


def _working_copy(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Downscale so the long side is at most `max_side`; returns the copy and its scale (<= 1)."""
    long_side = max(image.shape[:2])
    if not max_side or long_side <= max_side:
        return image, 1.0
    scale = max_side / long_side
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _run_hog(rgb: np.ndarray, upsample: int, adjust_threshold: float) -> list[tuple[float, ...]]:
    with _borrow_detector("hog") as detector:
        rects, scores, _ = detector.run(rgb, upsample, adjust_threshold)
    return [(r.left(), r.top(), r.right() + 1, r.bottom() + 1, s) for r, s in zip(rects, scores, strict=True)]


def _run_haar(rgb: np.ndarray, upsample: int) -> list[tuple[float, ...]]:
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    factor = 2**upsample
    if factor > 1:
        gray = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
    with _borrow_detector("haar") as detector:
        rects, _, weights = detector.detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40), outputRejectLevels=True
        )
    return [
        (x / factor, y / factor, (x + w) / factor, (y + h) / factor, float(s))
        for (x, y, w, h), s in zip(np.asarray(rects).reshape(-1, 4), np.ravel(weights), strict=True)
    ]


def detect_faces(
    image_rgb: np.ndarray,
    detector: str = "hog",
    upsample: int = 1,
    max_side: int | None = 800,
    adjust_threshold: float = 0.0,
) -> list[FaceBox]:
    """Find every face in an image.

    Args:
        image_rgb: uint8 [H, W, 3] RGB (grayscale and RGBA are converted).
        detector: "hog" (dlib, default) or "haar" (OpenCV cascade).
        upsample: times the working copy is doubled before detection (finds faces down to ~40 px at 1).
        max_side: detection runs on a copy downscaled to this long side (speed); boxes are mapped back.
        adjust_threshold: HOG only; negative values also return weaker detections (for scoring).

    Returns:
        Boxes in `image_rgb` coordinates, best score first.
    """
    if detector not in DETECTORS:
        raise ConfigError(f"detector must be one of {DETECTORS}, got {detector!r}")
    if upsample < 0:
        raise ConfigError(f"upsample must be >= 0, got {upsample}")
    work, scale = _working_copy(as_rgb(image_rgb), max_side)
    raw = _run_hog(work, upsample, adjust_threshold) if detector == "hog" else _run_haar(work, upsample)
    boxes = [
        FaceBox(round(x0 / scale), round(y0 / scale), round(x1 / scale), round(y1 / scale), float(s), detector)
        for x0, y0, x1, y1, s in raw
    ]
    return sorted(boxes, key=lambda b: -b.score)


def select_face(boxes: list[FaceBox], image_shape: tuple[int, ...], select: str = "largest") -> FaceBox:
    """Pick one face: the largest box, or the one whose centre is nearest the image centre."""
    if select not in SELECTIONS:
        raise ConfigError(f"select must be one of {SELECTIONS}, got {select!r}")
    if not boxes:
        raise ValueError("select_face needs at least one box")
    if select == "largest":
        return max(boxes, key=lambda b: (b.area, b.score))
    cy, cx = image_shape[0] / 2.0, image_shape[1] / 2.0
    return min(boxes, key=lambda b: (b.center[0] - cx) ** 2 + (b.center[1] - cy) ** 2)
