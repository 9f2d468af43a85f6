"""Decode and validate every image the app sees: one function, `load_image`, for paths, bytes, arrays and PIL.

Decoding is OpenCV's (`cv2.imdecode` with ``IMREAD_UNCHANGED``); PIL reads only the header first (size for
the decompression-bomb guard, EXIF orientation) and decodes what OpenCV cannot (palette/odd modes). Whatever
the source, the result is uint8 [H, W, 3] RGB or uint8 [H, W] gray; alpha is composited on white, 16-bit is
scaled, float images are read as [0, 1] (or as [0, 255] when a value exceeds 1: float TIFFs), EXIF orientation
is applied. Every failure is an `InvalidImageError` (or `ImageTooLargeError`) that names the input. OpenCV's own
log lines (e.g. "PNG input buffer is incomplete") are silenced at import: the typed error says it instead.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from verify.errors import ImageTooLargeError, InvalidImageError

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # failures are typed errors, not stderr lines

MAX_PIXELS = 40_000_000
MAX_BYTES = 50 * 2**20
_ORIENTATION_TAG = 0x0112


def read_bytes(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    max_bytes: int = MAX_BYTES,
    name: str | None = None,
) -> bytes:
    """Read a file (or pass bytes through), refusing missing, empty and over-large inputs."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), name or "<bytes>"
    else:
        path = Path(source)
        label = shown_name(name or str(path))
        try:
            info = path.stat()
        except OSError as exc:
            raise InvalidImageError(f"{label}: {_stat_problem(exc)}") from exc
        if not stat.S_ISREG(info.st_mode):
            raise InvalidImageError(f"{label}: not a file")
        size = info.st_size
        if size > max_bytes:
            raise ImageTooLargeError(f"{label}: file is {_mb(size)}; the largest accepted is {_mb(max_bytes)}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidImageError(f"{label}: cannot read file ({exc.strerror or exc})") from exc
    if not data:
        raise InvalidImageError(f"{label}: empty file (0 bytes)")
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"{label}: file is {_mb(len(data))}; the largest accepted is {_mb(max_bytes)}")
    return data


def shown_name(name: str, limit: int = 160) -> str:
    """A path or name as an error message shows it: whole up to `limit` characters, else its start and end and
    its length (a CSV cell or an argument can be megabytes long)."""
    if len(name) <= limit:
        return name
    return f"{name[: limit // 2]}...{name[-(limit // 4) :]} ({len(name):,} characters)"


def os_reason(exc: OSError) -> str:
    """An operating-system error's reason in words (its strerror; a name too long said plainly)."""
    if exc.errno == errno.ENAMETOOLONG:
        return "the path or one of its names is longer than the file system allows"
    return exc.strerror or str(exc)


def _stat_problem(exc: OSError) -> str:
    """Why a path cannot be opened, in words (no such file, a name too long, no permission, ...)."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "no such file"
    if exc.errno == errno.ENAMETOOLONG:
        return f"no such file ({os_reason(exc)})"
    return f"cannot read file ({os_reason(exc)})"


def image_sha256(data: bytes | np.ndarray) -> str:
    """Hex sha256 of encoded bytes, or of an array's shape, dtype and pixels."""
    h = hashlib.sha256()
    if isinstance(data, np.ndarray):
        h.update(f"{data.shape}|{data.dtype.str}|".encode())
        h.update(np.ascontiguousarray(data).tobytes())
    else:
        h.update(bytes(data))
    return h.hexdigest()


def load_image(
    source: Any,
    *,
    mode: str = "rgb",
    max_pixels: int = MAX_PIXELS,
    min_side: int = 16,
    max_bytes: int = MAX_BYTES,
    name: str | None = None,
) -> np.ndarray:
    """Decode an image from a path, encoded bytes, an array or a PIL image.

    Args:
        source: str/Path, bytes, np.ndarray ([H, W], [H, W, 1|3|4]; uint8, uint16, bool, float in [0, 1] or
            [0, 255];
            3/4 channels are taken as RGB/RGBA) or PIL.Image.
        mode: "rgb" or "gray".
        max_pixels: refuse images with more pixels (checked from the header before decoding when possible).
        min_side: refuse images whose height or width is smaller.
        max_bytes: refuse encoded inputs larger than this.
        name: how errors name the input (default: the path, "<bytes>", "<array>" or "<PIL image>").

    Returns:
        uint8 [H, W, 3] RGB when mode is "rgb", uint8 [H, W] when mode is "gray".
    """
    if mode not in ("rgb", "gray"):
        raise ValueError(f"mode must be 'rgb' or 'gray', not {mode!r}")
    if isinstance(source, np.ndarray):
        label = name or "<array>"
        _check_pixels(label, source.shape[:2], max_pixels)
        image = _normalise(source, label)
    elif isinstance(source, Image.Image):
        label = name or "<PIL image>"
        _check_pixels(label, source.size[::-1], max_pixels)
        image = _normalise(_pil_to_array(ImageOps.exif_transpose(source), label), label)
    elif isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        label = shown_name(name or ("<bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)))
        data = read_bytes(source, max_bytes=max_bytes, name=label)
        image = _decode(data, label, max_pixels)
    else:
        raise InvalidImageError(f"{name or '<input>'}: cannot read an image from {type(source).__name__}")
    h, w = image.shape[:2]
    if min(h, w) < min_side:
        raise InvalidImageError(f"{label}: image is {w}x{h} pixels, smaller than the minimum side {min_side}")
    if mode == "gray":
        return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n:,} bytes"


def _megapixels(n: float) -> str:
    return f"{n / 1e6:,.1f}".removesuffix(".0") + " megapixels"


def _too_many_pixels(label: str, size: str, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{label}: image is {size}; the largest accepted is {_megapixels(max_pixels)} "
        "(scan or export it at a lower resolution)"
    )


def _check_pixels(label: str, hw: tuple[int, ...], max_pixels: int) -> None:
    h, w = int(hw[0]), int(hw[1])
    if h * w > max_pixels:
        raise _too_many_pixels(label, f"{w}x{h} ({_megapixels(w * h)})", max_pixels)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xae\x42\x60\x82"  # the IEND chunk: length 0, type, its fixed CRC


def _decode(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    """Header check with PIL, decode with OpenCV (PIL fallback), then normalise and orient."""
    header = _read_header(data, label, max_pixels)
    orientation = header[1] if header else 1
    if data[:2] == b"\xff\xd8" and not _jpeg_complete(data):
        raise InvalidImageError(f"{label}: truncated or corrupt JPEG (no end-of-image marker)")
    if data[:8] == PNG_SIGNATURE and PNG_END not in data:  # libpng would print its own error on stderr first
        raise InvalidImageError(f"{label}: truncated or corrupt PNG (no end chunk)")
    try:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        raw = None
    if raw is not None and raw.size:
        if raw.ndim == 3 and raw.shape[2] >= 3:
            code = cv2.COLOR_BGRA2RGBA if raw.shape[2] == 4 else cv2.COLOR_BGR2RGB
            raw = cv2.cvtColor(np.ascontiguousarray(raw[:, :, :4]), code)
    elif header is not None:
        raw = _pil_decode(data, label)
    else:
        raise InvalidImageError(f"{label}: not an image, or a corrupt one (cannot decode)")
    _check_pixels(label, raw.shape[:2], max_pixels)
    return apply_orientation(_normalise(raw, label), orientation)


def _read_header(data: bytes, label: str, max_pixels: int) -> tuple[tuple[int, int], int] | None:
    """Size and EXIF orientation from the header only; None when PIL does not know the format."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # PIL's own, far larger limit; its message speaks of attacks
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_many_pixels(label, _megapixels(int(found[1])) if found else "too large", max_pixels) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    with im:
        w, h = im.size
        _check_pixels(label, (h, w), max_pixels)
        try:
            if im.format == "PNG":  # PNG getexif() may decode the whole image; use what the header gave
                exif = Image.Exif()
                if im.info.get("exif"):
                    exif.load(im.info["exif"])
            else:
                exif = im.getexif()
            orientation = int(exif.get(_ORIENTATION_TAG, 1))
        except Exception:  # a broken EXIF block must not make a good image unreadable
            orientation = 1
    return (h, w), orientation if 1 <= orientation <= 8 else 1


def _jpeg_complete(data: bytes) -> bool:
    """True when an end-of-image marker follows the first top-level start-of-scan marker."""
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:
            return data.rfind(b"\xff\xd9") > pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return False


def _pil_decode(data: bytes, label: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return _pil_to_array(im, label)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InvalidImageError(f"{label}: not an image, or a corrupt one ({exc})") from exc


def _pil_to_array(im: Image.Image, label: str) -> np.ndarray:
    """A PIL image of any mode as an array _normalise understands (RGB/RGBA/gray order)."""
    try:
        if im.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
            return np.asarray(im).astype(np.uint16)
        if im.mode == "I":
            return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
        if im.mode == "F":
            return np.asarray(im, dtype=np.float32)
        if im.mode in ("L", "RGB", "RGBA", "LA"):
            return np.asarray(im)
        if im.mode == "1":
            return np.asarray(im.convert("L"))
        has_alpha = im.mode in ("PA", "RGBa", "La") or "transparency" in im.info
        return np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    except (OSError, ValueError) as exc:
        raise InvalidImageError(f"{label}: cannot convert image mode {im.mode!r} ({exc})") from exc


def _normalise(arr: np.ndarray, label: str) -> np.ndarray:
    """Any supported array -> uint8 [H, W] or [H, W, 3] RGB; alpha composited on white."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)) or arr.size == 0:
        raise InvalidImageError(f"{label}: array of shape {arr.shape} is not an image")
    arr = _to_unit_or_uint8(arr, label)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        alpha = arr[:, :, -1:].astype(np.float32) / 255.0
        color = arr[:, :, :-1].astype(np.float32)
        arr = np.clip(color * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
        if arr.shape[2] == 1:
            arr = arr[:, :, 0]
    return np.ascontiguousarray(arr)


def _to_unit_or_uint8(arr: np.ndarray, label: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:  # full 16-bit range onto 8 bits: 65535 -> 255
        return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InvalidImageError(f"{label}: float image contains NaN or infinity")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 255.0:
            raise InvalidImageError(f"{label}: float image values span [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")
        scale = 255.0 if hi <= 1.0 else 1.0  # [0, 1] unless a value says the image is on the 0-255 scale
        return (arr.astype(np.float32) * scale + 0.5).astype(np.uint8)
    raise InvalidImageError(
        f"{label}: unsupported pixel type {arr.dtype}; use uint8, uint16 or float in [0, 1] or [0, 255]"
    )


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an [H, W] or [H, W, C] array, as PIL's exif_transpose does."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(int(orientation))
    return image if op is None else np.ascontiguousarray(op(image))
