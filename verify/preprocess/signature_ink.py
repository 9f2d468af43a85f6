"""Ink extraction for real scans: input normalisation, paper flattening, ruled-line removal, stroke width.

Used by `verify.preprocess.signature` when a card asks for it (``ink="flat"``, ``remove_lines``,
``stroke_width``); the defaults there keep the original Otsu behaviour.
"""

from __future__ import annotations

import cv2
import numpy as np

from verify.errors import InvalidImageError


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any decoded image -> uint8 [H, W] grey, dark ink on light paper.

    Accepts uint8, uint16 (full range), bool and float [0, 1] arrays, [H, W], [H, W, 1], [H, W, 3] RGB or
    [H, W, 4] RGBA; alpha is composited on white paper (a transparent PNG of black ink stays readable).
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InvalidImageError(f"signature image must be [H, W], [H, W, 3] or [H, W, 4], got shape {arr.shape}")
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise InvalidImageError("a float signature image must hold values in [0, 1]")
        arr = (arr * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise InvalidImageError(f"signature image must be uint8 or uint16, got {arr.dtype}")
    if arr.ndim == 2:
        return arr
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        arr = (arr[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    return cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)


MAX_STROKE = 0.5  # a "stroke" wider than this share of the page's shorter side is shading, not ink
MAX_CLOSING = 75  # pixels: a wider paper closing runs on a page scaled down to it (the paper estimate is smooth)


def _odd(n: float) -> int:
    return int(n) | 1


def _paper(gray: np.ndarray, k: int) -> np.ndarray:
    """float32 [H, W] paper estimate: a closing with a k-pixel ellipse (the strokes erased), Gaussian-smoothed."""
    shape = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    paper = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, shape)
    return cv2.GaussianBlur(paper, (0, 0), k / 4).astype(np.float32)


def paper_kernel(gray: np.ndarray) -> int:
    """The paper closing's width (odd, pixels) that `flatten_paper` asks for on this page by default: 1/20 of the
    larger side, at least 15 and 4x the stroke width of a first Otsu mask."""
    _, first = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    # paper greying across a big scan puts half the page under Otsu's first cut, and its "stroke width" is the
    # page's: a closing that wide would flatten nothing. Thick pens on tight crops stay under a fifth.
    strokes = stroke_width(first > 0)
    strokes = strokes if strokes < MAX_STROKE * min(gray.shape) else 0.0
    return _odd(max(15, round(max(gray.shape) / 20), round(4 * strokes)))


def flatten_paper(gray: np.ndarray, kernel: int = 0) -> np.ndarray:
    """Grey page divided by its paper estimate (a morphological closing that erases the strokes, smoothed):
    uneven, grey, tinted or textured paper -> 255, ink keeps its contrast to the paper. uint8 [H, W].

    Args:
        kernel: closing size in pixels; 0: 1/20 of the larger side, at least 15 and 4x the stroke width of a
            first Otsu mask (a closing narrower than the strokes would take thick ink for paper; a width over
            `MAX_STROKE` of the shorter side is shading and does not count). A closing wider
            than `MAX_CLOSING` runs on the page scaled down by MAX_CLOSING / kernel and its estimate is scaled
            back up: an ellipse's closing costs about its width per pixel, which made a 300 dpi page take 15 s
            and an 8000 x 2000 scan minutes; pages up to about 1,500 pixels are estimated at full size, as before.
    """
    k = _odd(kernel) if kernel else paper_kernel(gray)
    if k <= MAX_CLOSING:
        paper = _paper(gray, k)
    else:
        h, w = gray.shape
        f = MAX_CLOSING / k
        small = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        paper = cv2.resize(_paper(small, MAX_CLOSING), (w, h), interpolation=cv2.INTER_LINEAR)
    flat = gray.astype(np.float32) / np.maximum(paper, 1.0) * 255.0
    return np.clip(flat, 0, 255).astype(np.uint8)


def ruled_lines(mask: np.ndarray, span: float = 0.9, max_angle: float = 5.0) -> np.ndarray:
    """bool [H, W]: the ink pixels of straight, nearly horizontal or vertical lines that run at least `span` of
    the image's width (height): ruled paper, boxes, table borders. Hough segments up to `max_angle` degrees off
    the axis and at least a third of the side long are joined along their line, kept when the joined line is
    long enough, widened to the line's thickness and cut to the mask. A signature's own underline is kept
    when it is shorter than `span` or not straight.
    """
    h, w = mask.shape
    binary = mask.astype(np.uint8) * 255
    shortest = max(15, min(h, w) // 3)
    segments = cv2.HoughLinesP(binary, 1, np.pi / 360, threshold=shortest // 2, minLineLength=shortest, maxLineGap=3)
    drawn = {"h": np.zeros((h, w), np.uint8), "v": np.zeros((h, w), np.uint8)}
    for x0, y0, x1, y1 in [] if segments is None else segments[:, 0].tolist():
        angle = abs(np.degrees(np.arctan2(y1 - y0, x1 - x0))) % 180
        axis = "h" if min(angle, 180 - angle) <= max_angle else "v" if abs(angle - 90) <= max_angle else None
        if axis is not None:
            cv2.line(drawn[axis], (x0, y0), (x1, y1), 255, 1)
    lines = np.zeros((h, w), np.uint8)
    for axis, candidates in drawn.items():
        if not candidates.any():
            continue
        joined = cv2.dilate(candidates, np.ones((3, 3), np.uint8))
        _, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        extent = stats[:, cv2.CC_STAT_WIDTH] if axis == "h" else stats[:, cv2.CC_STAT_HEIGHT]
        long_ids = np.flatnonzero(extent[1:] >= span * (w if axis == "h" else h)) + 1
        lines |= (np.isin(labels, long_ids) & (candidates > 0)).astype(np.uint8)
    if not lines.any():
        return np.zeros_like(mask)
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    on_line = (lines > 0) & mask
    half = float(np.median(dist[on_line])) if on_line.any() else 1.0
    k = 2 * int(np.ceil(half)) + 3  # the line's own thickness plus a pixel of antialiasing on each side
    grown = cv2.dilate(lines, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    return grown & mask


def remove_lines(mask: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """The ink mask without `lines`, where strokes that cross a line are bridged again (a vertical / horizontal
    closing, as long as the line is thick, of what is left, only inside the removed line pixels)."""
    if not lines.any():
        return mask
    rest = (mask & ~lines).astype(np.uint8)
    dist = cv2.distanceTransform(lines.astype(np.uint8), cv2.DIST_L2, 3)
    gap = 2 * int(np.ceil(dist.max())) + 3
    bridge = np.zeros_like(mask)
    for size in ((1, gap), (gap, 1)):
        closed = cv2.morphologyEx(rest, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, size)) > 0
        bridge |= closed
    return (rest > 0) | (bridge & lines)


def stroke_width(mask: np.ndarray) -> float:
    """Median stroke width of an ink mask in pixels: twice the median distance to the paper along the skeleton
    (approximated by the local maxima of the distance transform)."""
    if not mask.any():
        return 0.0
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    ridge = (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & mask
    return float(2.0 * np.median(dist[ridge])) if ridge.any() else 1.0


def normalise_strokes(ink: np.ndarray, width: float) -> np.ndarray:
    """A crop (uint8 [H, W], ink bright on 0) redrawn with strokes about `width` pixels wide: thin strokes are
    dilated, thick ones eroded (never to nothing), by the difference to the crop's measured width."""
    mask = ink > 0
    current = stroke_width(mask)
    steps = round((width - current) / 2.0)
    if current == 0 or steps == 0:
        return ink
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    if steps > 0:
        return cv2.dilate(ink, kernel, iterations=steps)
    thin = cv2.erode(ink, kernel, iterations=-steps)
    return thin if thin.any() else ink
