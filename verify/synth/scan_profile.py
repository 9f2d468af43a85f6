"""The scanning session of a synthetic signature: paper, ink, resolution and scanner settings.

A dataset scanned on one day with one pen shares these; a training set needs them varied. The generator gives
each writer a session profile (drawn from the writer's seed) that a share of their images, genuine and forged,
are scanned with; the other images draw a fresh profile each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ScanMode = Literal["colour", "gray", "binary"]
_DPIS = np.array([100, 150, 200, 240, 300, 300, 300, 400, 400, 600, 600, 600])


@dataclass(frozen=True)
class ScanProfile:
    """Session-level scan settings (per image: pose, margins, noise and texture vary on top)."""

    small: bool  # a small modern crop: x-height `small_xheight_px`, pen `small_pen_px`
    small_xheight_px: float
    small_pen_px: float
    dpi: float  # otherwise: scan resolution (letter size in pixels = x-height in mm * dpi / 25.4)
    paper_rgb: tuple[float, float, float]  # paper tone
    paper_grain: float  # std of the paper grain, gray levels
    textured: bool  # smoothed-noise texture (recycled or coarse paper)
    ink_rgb: tuple[float, float, float]
    mode: ScanMode  # colour, gray (three equal channels) or binarised
    jpeg_quality: int  # 0: lossless
    blur: float  # scanner blur sigma, pixels (0: none)
    ruled: bool  # ruled lines behind the signature
    box: bool  # a signature box around it


def ink_colour(blue: bool, rng: np.random.Generator) -> tuple[float, float, float]:
    """Black to dark gray ink, or blue ink from violet-blue to blue-green."""
    light = rng.uniform(0.0, 1.0) ** 3  # 0: dense ink; 1: a pale ballpoint, a worn felt-tip or pencil
    if not blue:
        v = rng.uniform(5.0, 60.0) + 90.0 * light
        return (v, v * rng.uniform(0.95, 1.05), v * rng.uniform(0.95, 1.2))
    hue = rng.uniform(0.0, 1.0)  # 0: violet-blue, 0.5: blue, 1: blue-green
    r = rng.uniform(10.0, 70.0) * (1.2 - hue) + 80.0 * light
    g = 30.0 + hue * rng.uniform(60.0, 140.0) + 60.0 * light
    return (r, g, rng.uniform(120.0, 200.0) + 30.0 * light)


def paper_tone(rng: np.random.Generator) -> tuple[tuple[float, float, float], float]:
    """A paper colour (white, gray, cream or tinted) and its grain."""
    kind = int(rng.choice(4, p=[0.45, 0.25, 0.15, 0.15]))
    if kind == 0:
        base = np.full(3, rng.uniform(238.0, 255.0))
    elif kind == 1:
        base = np.full(3, rng.uniform(185.0, 238.0))
    elif kind == 2:
        v = rng.uniform(225.0, 250.0)
        base = np.array([v, v - rng.uniform(2, 10), v - rng.uniform(10, 30)])
    else:
        base = rng.uniform(215.0, 252.0) - rng.uniform(0.0, 22.0, 3)
    grain = float(rng.uniform(0.5, 6.0 if kind else 3.0))
    return (float(base[0]), float(base[1]), float(base[2])), grain


def sample_profile(
    rng: np.random.Generator,
    blue_ink: bool,
    small_share: float,
    gray_share: float,
    binary_share: float,
    jpeg_share: float,
    ruled_share: float,
    box_share: float,
) -> ScanProfile:
    """Draw one scanning session; the shares are the fractions of sessions with each property."""
    paper, grain = paper_tone(rng)
    r = rng.random()
    mode: ScanMode = "binary" if r < binary_share else "gray" if r < binary_share + gray_share else "colour"
    blur = float(rng.uniform(0.0, 0.9))
    return ScanProfile(
        small=bool(rng.random() < small_share),
        small_xheight_px=float(rng.uniform(14.0, 30.0)),
        small_pen_px=float(rng.uniform(0.9, 2.0)),
        dpi=float(rng.choice(_DPIS)),
        paper_rgb=paper,
        paper_grain=grain,
        textured=bool(rng.random() < 0.25),
        ink_rgb=ink_colour(blue_ink != (rng.random() < 0.1), rng),
        mode=mode,
        jpeg_quality=int(rng.integers(35, 96)) if rng.random() < jpeg_share else 0,
        blur=blur if blur > 0.25 else 0.0,
        ruled=bool(rng.random() < ruled_share),
        box=bool(rng.random() < box_share),
    )
