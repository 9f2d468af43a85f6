"""Cheap statistics of a preprocessed signature crop's ink, for the OOD gate.

They describe what a learned backbone may not: how much of the ink box is filled, how many separate pieces,
how even and how thick the strokes are, how much of the ink lies on long straight lines (rules, boxes, tables),
how much of the edge energy runs along the axes (print, tables) rather than slanted (handwriting), and how
shape-like the pieces are: ink lying on the outline of its own convex hull (an outlined polygon or ellipse), ink
filling its hull (a filled shape), large enclosed holes (a drawn frame) and how alike the pieces' heights are.
Crops follow the signature preprocessing convention: ink bright on a black (0) background.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

INK_FEATURES = (
    "empty",
    "ink_density",
    "log_aspect",
    "log_components",
    "largest_component",
    "log_stroke_width",
    "stroke_width_cv",
    "thick_fraction",
    "line_fraction",
    "axis_line_fraction",
    "axis_gradient_fraction",
)
SHAPE_FEATURES = ("hull_outline_fraction", "hull_fill", "hole_area", "largest_hole", "component_height_cv")
ALL_FEATURES = INK_FEATURES + SHAPE_FEATURES  # what gates fitted from now on read; older gates read INK_FEATURES
_INK_FLOOR, _INK_SHARE = 4, 0.3


def _grey(crop: np.ndarray) -> np.ndarray:
    arr = np.asarray(crop)
    if arr.ndim == 3:
        arr = arr[..., :3].mean(axis=-1)
    if arr.dtype != np.uint8:
        arr = np.clip(arr if arr.max() > 1.5 else arr * 255, 0, 255)
    return arr.astype(np.uint8)


def _line_fractions(mask: np.ndarray, size: int) -> tuple[float, float]:
    """Share of ink pixels on long straight segments (probabilistic Hough), and on axis-aligned ones."""
    min_len = max(8, int(0.3 * size))
    lines = cv2.HoughLinesP(mask, 1, np.pi / 180, threshold=min_len // 2, minLineLength=min_len, maxLineGap=2)
    if lines is None:
        return 0.0, 0.0
    drawn, axis = np.zeros_like(mask), np.zeros_like(mask)
    for x0, y0, x1, y1 in lines[:, 0, :]:
        cv2.line(drawn, (int(x0), int(y0)), (int(x1), int(y1)), 1, 3)
        angle = abs(np.degrees(np.arctan2(y1 - y0, x1 - x0))) % 90
        if min(angle, 90 - angle) < 3:
            cv2.line(axis, (int(x0), int(y0)), (int(x1), int(y1)), 1, 3)
    ink = mask > 0
    total = max(int(ink.sum()), 1)
    return float((drawn[ink] > 0).sum() / total), float((axis[ink] > 0).sum() / total)


def _shape_statistics(mask: np.ndarray, stroke_width: float) -> list[float]:
    """SHAPE_FEATURES of an ink mask (uint8 0/1) whose strokes are `stroke_width` px wide."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    total = int(mask.sum())
    outline = np.zeros_like(mask)
    hull_area, heights = 0.0, []
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < max(8, 0.02 * total):  # dots and specks say nothing about shape
            continue
        hull = cv2.convexHull(cv2.findNonZero((labels == i).astype(np.uint8)))
        cv2.polylines(outline, [hull], True, 1, round(stroke_width + 2))
        hull_area += cv2.contourArea(hull)
        heights.append(float(stats[i, cv2.CC_STAT_HEIGHT]))
    ink = mask > 0
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    holes = [cv2.contourArea(c) for c, h in zip(contours, hierarchy[0], strict=True) if h[3] >= 0] if contours else []
    _, _, w, h = cv2.boundingRect(mask)
    return [
        float((outline[ink] > 0).sum() / max(total, 1)),
        float(total / max(hull_area, 1.0)),
        float(sum(holes) / (w * h)),
        float(max(holes, default=0.0) / (w * h)),
        float(np.std(heights) / np.mean(heights)) if len(heights) > 1 else 0.0,
    ]


def ink_statistics(crop: np.ndarray, names: Sequence[str] = ALL_FEATURES) -> np.ndarray:
    """The statistics `names` (of ALL_FEATURES) of one crop [H, W] or [H, W, C] (ink bright on black).
    Returns float64 [len(names)]."""
    unknown = set(names) - set(ALL_FEATURES)
    if unknown:
        raise ValueError(f"unknown ink statistics {sorted(unknown)}")
    full = _all_statistics(crop, shapes=not set(SHAPE_FEATURES).isdisjoint(names))
    return full[[ALL_FEATURES.index(n) for n in names]]


def _all_statistics(crop: np.ndarray, shapes: bool) -> np.ndarray:
    """ALL_FEATURES of one crop; the SHAPE_FEATURES stay 0 unless `shapes` (gates fitted before them skip them)."""
    grey = _grey(crop)
    out = np.zeros(len(ALL_FEATURES))
    if not grey.any():
        out[0] = 1.0
        return out
    # relative to the crop's own ink, so that faint grey ink and binarised black ink give the same mask
    mask = (grey > max(_INK_FLOOR, _INK_SHARE * float(np.percentile(grey[grey > 0], 90)))).astype(np.uint8)
    if mask.sum() < 4:
        out[0] = 1.0
        return out
    _, _, w, h = cv2.boundingRect(mask)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)[mask > 0]
    gx = cv2.Sobel(grey.astype(np.float32), cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey.astype(np.float32), cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    angle = np.degrees(np.arctan2(gy, gx)) % 90
    near_axis = np.minimum(angle, 90 - angle) < 8
    lines, axis_lines = _line_fractions(mask * 255, max(w, h))
    out[1 : len(INK_FEATURES)] = [
        mask.sum() / (w * h),
        np.log(w / h),
        np.log1p(n - 1),
        areas.max() / areas.sum(),
        np.log(2 * dist.mean()),
        dist.std() / dist.mean(),
        np.mean(dist > 0.05 * grey.shape[0]),
        lines,
        axis_lines,
        mag[near_axis].sum() / max(float(mag.sum()), 1e-9),
    ]
    if shapes:
        out[len(INK_FEATURES) :] = _shape_statistics(mask, 2 * float(dist.mean()))
    return out


def ink_statistics_batch(crops: Sequence[np.ndarray], names: Sequence[str] = ALL_FEATURES) -> np.ndarray:
    """`ink_statistics` of every crop. Returns float64 [N, len(names)]."""
    if len(crops) == 0:
        return np.zeros((0, len(names)))
    return np.stack([ink_statistics(c, names) for c in crops])
