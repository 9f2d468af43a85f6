"""Render pen traces as a scan-like grayscale image: variable pen width, ink, paper, pose and scanner blur."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from verify.synth.writer import Trace

_SUPERSAMPLE = 2  # draw at 2x, then area-downsample: fractional pen widths and smooth edges
_SHIFT = 3  # fixed-point bits of cv2 drawing coordinates
_LEVELS = 12  # quantisation of the pen width into this many drawing calls per image


@dataclass(frozen=True)
class Pen:
    """How the ink looks on paper for one image."""

    width: float  # stroke width in pixels at 150 px image height for relative width 1
    ink: float  # opacity in (0, 1]
    fill: float  # fraction of the free area the signature spans


def _place(traces: list[Trace], height: int, width: int, fill: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Rotate slightly, scale to fit, translate: pixel coordinates (y down) of every trace [T, 2]."""
    angle = np.deg2rad(rng.normal(0.0, 2.0))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = [(t.xy @ rot.T) * np.array([1.0, -1.0]) for t in traces]
    allp = np.concatenate(pts)
    lo, hi = allp.min(0), allp.max(0)
    margin = 0.06
    scale = fill * min(
        width * (1 - 2 * margin) / max(hi[0] - lo[0], 1e-6), height * (1 - 2 * margin) / max(hi[1] - lo[1], 1e-6)
    )
    size = (hi - lo) * scale
    free = np.array([width, height]) - size
    offset = free / 2 + rng.uniform(-0.35, 0.35, 2) * free / 2
    return [(p - lo) * scale + offset for p in pts]


def _draw_ink(pixels: list[np.ndarray], traces: list[Trace], height: int, width: int, pen: Pen) -> np.ndarray:
    """Ink coverage in [0, 1] at the output size [H, W], drawn with per-segment widths at 2x."""
    s = _SUPERSAMPLE
    canvas = np.zeros((height * s, width * s), np.uint8)
    px_width = pen.width * height / 150.0 * s
    all_w = np.concatenate([0.5 * (t.width[1:] + t.width[:-1]) for t in traces]) * px_width
    lo, hi = float(all_w.min()), float(all_w.max()) + 1e-6
    for pix, trace in zip(pixels, traces, strict=True):
        seg_w = 0.5 * (trace.width[1:] + trace.width[:-1]) * px_width
        level = np.minimum(((seg_w - lo) / (hi - lo) * _LEVELS).astype(int), _LEVELS - 1)
        fixed = np.round(pix * s * (1 << _SHIFT)).astype(np.int32)
        cuts = np.flatnonzero(np.diff(level)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [level.size]])
        order = np.argsort(level[starts], kind="stable")  # thin first, thick (darker) last
        for a, b in zip(starts[order], ends[order], strict=True):
            thick = max(1, round(lo + (level[a] + 0.5) * (hi - lo) / _LEVELS))
            shade = int(255 * min(1.0, 0.55 + 0.45 * (level[a] + 1) / _LEVELS))
            cv2.polylines(canvas, [fixed[a : b + 1]], False, shade, thick, cv2.LINE_AA, _SHIFT)
    small = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def _smooth_field(height: int, width: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field [H, W] with values around 0 and std about 1."""
    grid = rng.normal(0.0, 1.0, (cells, max(2, cells * width // max(height, 1)))).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def render_traces(traces: list[Trace], height: int, width: int, pen: Pen, rng: np.random.Generator) -> np.ndarray:
    """Render one signature as a scanned page.

    Args:
        traces: pen-down traces of the signature.
        height, width: output size in pixels.
        pen: pen width, ink opacity, how much of the page the signature fills.
        rng: the generator of this image (pose, ink, paper, noise).

    Returns:
        uint8 image [H, W]: dark ink on light paper.
    """
    pixels = _place(traces, height, width, pen.fill, rng)
    coverage = _draw_ink(pixels, traces, height, width, pen)
    ink_var = np.clip(1.0 - 0.08 * np.abs(_smooth_field(height, width, 4, rng)), 0.7, 1.0)
    alpha = np.clip(coverage * pen.ink * ink_var, 0.0, 1.0)
    paper = rng.uniform(222.0, 250.0) + 1.5 * _smooth_field(height, width, 6, rng)
    paper += np.float32(rng.uniform(1.0, 3.0)) * rng.standard_normal((height, width), dtype=np.float32)
    ink_tone = rng.uniform(5.0, 45.0)
    page = paper * (1.0 - alpha) + ink_tone * alpha
    page = cv2.GaussianBlur(page.astype(np.float32), (0, 0), rng.uniform(0.4, 0.8))
    page += np.float32(1.2) * rng.standard_normal((height, width), dtype=np.float32)
    return np.clip(np.round(page), 0, 255).astype(np.uint8)
