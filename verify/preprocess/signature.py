"""Signature preprocessing: find the ink, crop to it, clear the background, invert, fit to the input size.

The output follows the SigNet convention: ink bright on a black (0) background, the signature's aspect ratio
kept and centred on the canvas. `to_display` turns it back into dark ink on white for people.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np

from verify.errors import ConfigError
from verify.preprocess.crop import Crop
from verify.preprocess.signature_ink import flatten_paper, normalise_strokes, remove_lines, ruled_lines, to_gray


@dataclass(frozen=True)
class SignatureParams:
    """Tunable steps; a card's "preprocessing" section may set any of them (plus "kind").

    The defaults are the original pipeline (cards written before the real-scan options load unchanged).
    """

    blur: int = 3  # Gaussian kernel (odd, pixels) before Otsu; 0 or 1: none
    margin: float = 0.05  # around the ink box, as a fraction of its larger side
    min_contrast: float = 25.0  # ink must be this many grey levels darker than paper, else the page is blank
    speck_fraction: float = 2e-4  # isolated ink blobs under this fraction of the page, away from the strokes, are dust
    ink: str = "otsu"  # "otsu": Otsu on the grey page; "flat": on the page divided by its paper (grey/tinted/textured)
    remove_lines: bool = False  # drop straight lines spanning >= line_span of the page (ruled paper, boxes)
    line_span: float = 0.9  # shortest ruled line, as a fraction of the page width (height for vertical lines); a
    # signature's underline rarely runs from edge to edge of the scan, ruled paper does
    stroke_width: float = 0.0  # > 0: strokes redrawn about this many pixels wide at the output size; 0: as scanned

    def __post_init__(self) -> None:
        if self.blur < 0 or self.margin < 0 or self.min_contrast < 0 or not 0 <= self.speck_fraction < 1:
            raise ConfigError(f"invalid signature preprocessing parameters: {self}")
        if self.ink not in ("otsu", "flat") or not 0 < self.line_span <= 1 or self.stroke_width < 0:
            raise ConfigError(f"invalid signature preprocessing parameters: {self}")


def _ink_mask(gray: np.ndarray, params: SignatureParams) -> tuple[np.ndarray, float]:
    """bool [H, W] ink mask (empty for a blank page) and the Otsu threshold; `gray` is already flattened when
    params.ink == "flat"."""
    k = params.blur | 1
    smooth = cv2.GaussianBlur(gray, (k, k), 0) if params.blur > 1 else gray
    threshold, binary = cv2.threshold(smooth, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    mask = binary > 0
    if not mask.any() or mask.all() or _contrast(gray, smooth, mask) < params.min_contrast:
        return np.zeros_like(mask), float(threshold)
    if params.remove_lines:
        binary = remove_lines(binary > 0, ruled_lines(binary > 0, params.line_span)).astype(np.uint8) * 255
        if not binary.any():
            return np.zeros_like(mask), float(threshold)
    return _drop_isolated_specks(binary, params.speck_fraction * gray.size), float(threshold)


def _contrast(gray: np.ndarray, smooth: np.ndarray, mask: np.ndarray) -> float:
    """Grey levels between the paper and the ink (both blurred): the paper's mean minus the darker of the ink's
    mean and its 5th percentile. Thin, faint strokes are mostly edge pixels, lighter than their cores, so their
    mean alone called faint signatures blank; the blurred noise of a blank page stays close to its mean."""
    ink = min(float(smooth[mask].mean()), float(np.percentile(smooth[mask], 5)))
    return float(smooth[~mask].mean()) - ink


def _drop_isolated_specks(binary: np.ndarray, min_area: float) -> np.ndarray:
    """Ink mask without components under `min_area` pixels lying away from the big strokes (dust, scanner
    noise); small parts near the strokes (i-dots, accents) stay."""
    _, labels, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
    area = stats[:, cv2.CC_STAT_AREA]
    big = np.flatnonzero(area[1:] >= min_area) + 1
    if min_area < 1 or big.size == 0:
        return binary > 0
    x0 = stats[big, cv2.CC_STAT_LEFT].min()
    y0 = stats[big, cv2.CC_STAT_TOP].min()
    x1 = (stats[big, cv2.CC_STAT_LEFT] + stats[big, cv2.CC_STAT_WIDTH]).max()
    y1 = (stats[big, cv2.CC_STAT_TOP] + stats[big, cv2.CC_STAT_HEIGHT]).max()
    reach = 0.15 * max(x1 - x0, y1 - y0)
    cx, cy = centroids[:, 0], centroids[:, 1]
    near = (cx >= x0 - reach) & (cx <= x1 + reach) & (cy >= y0 - reach) & (cy <= y1 + reach)
    keep = (area >= min_area) | near
    keep[0] = False
    return keep[labels]


def _fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize keeping the aspect ratio and centre on a black [height, width] canvas."""
    h, w = image.shape
    scale = min(height / h, width / w)
    nh, nw = max(1, min(height, round(h * scale))), max(1, min(width, round(w * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    canvas = np.zeros((height, width), np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    canvas[top : top + nh, left : left + nw] = resized
    return canvas


def signature_crop(
    image: np.ndarray, height: int = 150, width: int = 220, params: SignatureParams | None = None
) -> Crop:
    """`preprocess_signature` with what it found: Crop.info has ink_fraction, bbox (x, y, w, h in the input;
    None for a blank page), blank and threshold."""
    params = params or SignatureParams()
    gray = to_gray(image)
    if params.ink == "flat":
        gray = flatten_paper(gray)
    mask, threshold = _ink_mask(gray, params)
    ink_fraction = float(mask.mean())
    info: dict[str, Any] = {"ink_fraction": ink_fraction, "bbox": None, "blank": ink_fraction == 0.0}
    info["threshold"] = threshold
    if info["blank"]:
        return Crop(np.zeros((height, width), np.uint8), info)
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    pad = max(2, round(params.margin * max(w, h)))
    box = (slice(y, y + h), slice(x, x + w))
    inverted = np.where(mask[box], 255 - gray[box], 0).astype(np.uint8)
    inverted = np.pad(inverted, pad)  # zeros on every side, so the ink stays centred even at the page edge
    info["bbox"] = (int(x), int(y), int(w), int(h))
    out = _fit(inverted, height, width)
    if params.stroke_width > 0:
        out = normalise_strokes(out, params.stroke_width)
    return Crop(out, info)


def preprocess_signature(
    image: np.ndarray, height: int = 150, width: int = 220, params: SignatureParams | None = None
) -> np.ndarray:
    """Scanned signature (uint8 [H, W] or [H, W, 3] RGB, dark ink on light paper) -> uint8 [height, width].

    Steps: grey, light Gaussian blur, Otsu threshold for the ink (specks dropped), crop to the ink box plus a
    margin, background set to 0 and ink inverted (bright), resized keeping the aspect ratio and centred. A blank
    page gives an all-zero canvas.
    """
    return signature_crop(image, height, width, params).image


def to_display(crop: Crop | np.ndarray) -> np.ndarray:
    """A preprocessed signature as dark ink on white, uint8, same shape, for the UI."""
    image = crop.image if isinstance(crop, Crop) else np.asarray(crop)
    return (255 - image.astype(np.uint8)).astype(np.uint8)


class SignaturePreprocessor:
    """The "signature" preprocessor of a model card: ``pre(image) -> Crop`` at card["input"] size.

    Reads card["input"]["height"/"width"/"channels"] and optional card["preprocessing"] fields of
    `SignatureParams`; with 3 channels the grey crop is repeated into [H, W, 3].
    """

    def __init__(self, card: dict[str, Any]) -> None:
        try:
            spec = card["input"]
            self.height, self.width = int(spec["height"]), int(spec["width"])
            self.channels = int(spec.get("channels", 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"model card 'input' needs integer height and width: {exc}") from exc
        extra = {k: v for k, v in (card.get("preprocessing") or {}).items() if k != "kind"}
        known = {f.name for f in fields(SignatureParams)}
        unknown = sorted(set(extra) - known)
        if unknown:
            raise ConfigError(f"unknown signature preprocessing fields {unknown}; known: {sorted(known)}")
        self.params = SignatureParams(**extra)

    def __call__(self, image: np.ndarray) -> Crop:
        crop = signature_crop(image, self.height, self.width, self.params)
        if self.channels == 3:
            crop.image = np.repeat(crop.image[:, :, None], 3, axis=2)
        return crop
