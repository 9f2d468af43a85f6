"""Per-writer style of a synthetic signature: shape habits, timing habits, pen and ink."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WriterStyle:
    """The habits of one synthetic writer; shape lengths are in x-heights (height of a small letter = 1)."""

    slant: float  # horizontal shear x += slant * y (tan of the slant angle; > 0 leans right)
    aspect: float  # vertical scale of letters relative to their width
    letter_width: float  # x advance of one up/down letter oscillation
    n_letters: int  # letters in the name part
    ascender_p: float  # chance that a letter has an ascender (l, h, b, k, ...)
    descender_p: float  # chance that a letter has a descender (g, y, j, ...)
    loop_p: float  # chance that an ascender or descender is a loop rather than a stick
    garland_p: float  # chance of a garland (u-like, counter-clockwise) rather than arcade (n-like) joint
    curvature: float  # typical turn of the pen direction along one stroke, radians
    words: int  # 1 (name) or 2 (first name, pen lift, surname)
    marks_p: float  # chance per letter of an i-dot or t-cross written after the name, as a separate mark
    initial: str  # capital initial: "none", "loop" or "oval"
    pen_lift: bool  # lift the pen between the initial and the name
    flourish: str  # ending: "none", "underline", "tail" or "loop"
    baseline_slope: float  # rise of the baseline per x-height of progression
    baseline_wave: float  # amplitude of a slow baseline undulation, x-heights
    mu: float  # log stroke time (lognormal mu), log seconds
    sigma: float  # lognormal sigma (spread of each stroke's speed profile)
    spacing: float  # time between consecutive motor commands, as a fraction of exp(mu)
    pressure: float  # mean pen pressure (relative; 1 = average)
    pressure_wave: float  # relative amplitude of slow pressure changes along the signature
    pen_width: float  # stroke width in pixels at 150 px image height, at average pressure and low speed
    ink: float  # ink opacity in (0, 1]
    fill: float  # fraction of the free image area the signature spans


def sample_style(rng: np.random.Generator) -> WriterStyle:
    """Draw one writer's habits.

    Args:
        rng: the writer's own generator.

    Returns:
        A `WriterStyle`; ranges follow what handwriting studies report for Western signatures (right slant,
        strong overlap of strokes in fluent writers, 0.1-0.3 s strokes).
    """
    return WriterStyle(
        slant=float(rng.uniform(-0.1, 0.6)),
        aspect=float(rng.uniform(0.8, 1.5)),
        letter_width=float(rng.uniform(0.4, 0.7)),
        n_letters=int(rng.integers(4, 10)),
        ascender_p=float(rng.uniform(0.1, 0.4)),
        descender_p=float(rng.uniform(0.0, 0.25)),
        loop_p=float(rng.uniform(0.4, 1.0)),
        garland_p=float(rng.uniform(0.2, 0.9)),
        curvature=float(rng.uniform(0.5, 1.2)),
        words=int(1 + (rng.random() < 0.35)),
        marks_p=float(rng.uniform(0.0, 0.2)),
        initial=str(rng.choice(["none", "loop", "oval"], p=[0.2, 0.45, 0.35])),
        pen_lift=bool(rng.random() < 0.5),
        flourish=str(rng.choice(["none", "underline", "tail", "loop"], p=[0.3, 0.3, 0.28, 0.12])),
        baseline_slope=float(rng.normal(0.0, 0.04)),
        baseline_wave=float(rng.uniform(0.0, 0.25)),
        mu=float(rng.uniform(-1.9, -1.45)),
        sigma=float(rng.uniform(0.18, 0.32)),
        spacing=float(rng.uniform(0.35, 0.6)),
        pressure=float(rng.uniform(0.75, 1.2)),
        pressure_wave=float(rng.uniform(0.05, 0.25)),
        pen_width=float(rng.uniform(1.6, 3.0)),
        ink=float(rng.uniform(0.85, 1.0)),
        fill=float(rng.uniform(0.75, 0.95)),
    )
