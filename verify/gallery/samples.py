"""Input checks and per-sample payloads of the gallery: names, embedding matrices, images, thumbnails, scores."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from verify.errors import ConfigError, GalleryError, InvalidImageError, ModelMismatchError

TEMPLATES = ("max", "mean")


def check_name(name: str) -> str:
    """An identity name: non-empty text without surrounding whitespace, on one line (no line breaks, tabs or other
    control characters: a name is printed in lists and claimed from one CSV cell)."""
    if not isinstance(name, str) or not name.strip():
        raise GalleryError(f"identity name {name!r} is empty; give a non-empty name")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
        raise GalleryError(f"identity name {name!r} holds a line break or another control character; give one line")
    return name.strip()


def as_matrix(embeddings: np.ndarray, dim: int, what: str = "embeddings") -> np.ndarray:
    """Validate and L2-normalise embeddings [D] or [N, D]. Returns float32 [N, D], rows of norm 1."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != dim:
        raise ModelMismatchError(
            f"{what} have shape {tuple(np.shape(embeddings))}, the gallery holds {dim}-d embeddings;"
            " embed with the gallery's model or re-embed the gallery (`verify gallery reembed`)"
        )
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(np.isfinite(x)) or np.any(norms == 0):
        raise GalleryError(f"{what} contain NaN, infinite or all-zero rows; they cannot be compared")
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W] grayscale or [H, W, 3] RGB image."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise InvalidImageError(f"expected a uint8 [H, W] or [H, W, 3] image, got {image.dtype} {image.shape}")
    bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise InvalidImageError(f"could not encode a {image.shape} image as PNG")
    return buf.tobytes()


def decode_image(data: bytes, what: str) -> np.ndarray:
    """Decode image bytes to uint8 [H, W] or [H, W, 3] RGB."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint8:
        raise InvalidImageError(f"{what}: the stored image cannot be decoded as an 8-bit image")
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


def _image_fields(image: Any) -> dict[str, Any]:
    """Storage fields of one kept image: encoded bytes, a uint8 array (stored as PNG) or a file path."""
    if image is None:
        return {}
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        return {"image": data, "image_sha256": hashlib.sha256(data).hexdigest()}
    if isinstance(image, (str, Path)):
        path = Path(image).resolve()
        if not path.is_file():
            raise InvalidImageError(f"{path}: image file not found")
        return {"image_path": str(path), "image_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    data = encode_png(image)
    return {"image": data, "image_sha256": hashlib.sha256(data).hexdigest()}


def _per_sample(values: Sequence[Any] | None, n: int, what: str) -> list[Any]:
    if values is None:
        return [None] * n
    if len(values) != n:
        raise GalleryError(f"{what} has {len(values)} entries for {n} embeddings; give one per embedding")
    return list(values)


def sample_fields(
    n: int,
    image_hashes: Sequence[str | None] | None,
    thumbnails: Sequence[Any] | None,
    images: Sequence[Any] | None,
    sources: Sequence[str | None] | None,
) -> list[dict[str, Any]]:
    """One dict of stored columns per sample (image_sha256, thumbnail, image, image_path, source)."""
    hashes = _per_sample(image_hashes, n, "image_hashes")
    thumbs = _per_sample(thumbnails, n, "thumbnails")
    fields = []
    for h, thumb, image, source in zip(
        hashes, thumbs, _per_sample(images, n, "images"), _per_sample(sources, n, "sources"), strict=True
    ):
        f = _image_fields(image)
        if h is not None:
            f["image_sha256"] = str(h)
        if thumb is not None:
            f["thumbnail"] = bytes(thumb) if isinstance(thumb, (bytes, bytearray, memoryview)) else encode_png(thumb)
        f["source"] = None if source is None else str(source)
        fields.append(f)
    return fields


def aggregate(embeddings: np.ndarray, query: np.ndarray, template: str) -> float:
    """Score of one identity: max cosine over its samples [n, D], or cosine with their normalised mean."""
    if template == "max":
        return float((embeddings @ query).max())
    if template == "mean":
        mean = embeddings.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return float(mean @ query / norm) if norm > 0 else 0.0
    raise ConfigError(f"template {template!r} is not one of {', '.join(TEMPLATES)}")
