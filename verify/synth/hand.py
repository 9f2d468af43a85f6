"""Per-writer handwriting style for name signatures (generator v2), and its repetition-to-repetition noise.

Lengths are in x-heights (the height of a small letter = 1); y is up, the baseline at 0.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np

from verify.synth.glyphs import PRINT_FONTS, SCRIPT_FONTS, FontName

Flourish = Literal["none", "underline", "paraph", "tail", "strike", "loop"]
FLOURISHES: tuple[Flourish, ...] = ("none", "underline", "paraph", "tail", "strike", "loop")
_FLOURISH_P = (0.32, 0.22, 0.12, 0.18, 0.12, 0.04)


@dataclass(frozen=True)
class HandStyle:
    """How one writer writes: letter shapes, geometry, connections, flourish, timing and pressure."""

    font: FontName  # small letters
    caps_font: FontName  # capitals
    slant: float  # shear x += slant * y (tan of the slant angle; > 0 leans right)
    x_scale: float  # letter width relative to the font's
    caps_scale: float  # capital size relative to the font's
    tracking: float  # extra space between letters, x-heights (< 0: letters crowd)
    word_gap: float  # space between words, x-heights
    join_words: bool  # the pen runs on from one word into the next (dots and bars come at the end)
    decay: float  # letters shrink along a word by up to this fraction
    connect: float  # chance that the pen stays down from one letter to the next inside a word
    baseline_slope: float  # rise of the baseline per x-height of progression
    baseline_wave: float  # amplitude of a slow baseline undulation, x-heights
    legibility: float  # 1: every letter clear; 0: after the first letters the name flattens into a scrawl
    keep_letters: int  # letters of each word written clearly before an illegible writer starts to scrawl
    scrawl: bool  # after those letters, the rest of each word is a garland of bumps, not letters
    omit_marks: float  # chance that the writer leaves out an i-dot or t-bar (fixed per letter and position)
    flourish: Flourish  # ending / decoration
    flourish_size: float  # relative size of the flourish
    flourish_dir: float  # direction habit of the flourish, radians (a small angle above or below horizontal)
    mu: float  # log stroke time (lognormal mu), log seconds
    sigma: float  # lognormal sigma (spread of each stroke's speed profile)
    spacing: float  # time between motor commands as a fraction of exp(mu): small = fluent, rounded, simplified
    simplify: float  # tolerance when reducing the letter outlines to virtual target points, x-heights
    pressure: float  # mean pen pressure (relative; 1 = average)
    pressure_wave: float  # relative amplitude of slow pressure changes along the signature
    taper: float  # time for pressure to build up on landing and fall off on lifting, seconds
    pen_mm: float  # line width of the writer's usual pen, mm
    xheight_mm: float  # x-height on paper, mm
    blue_ink: bool  # usual ink: blue (else black)
    shape_seed: int  # seeds the writer's own deformation of each letter (the same in every repetition)
    deform: float  # amplitude of that deformation, x-heights


def sample_hand(rng: np.random.Generator) -> HandStyle:
    """Draw one writer's style.

    Script and print writers, legible and illegible ones, fluent (fast, overlapping strokes) and careful ones.
    """
    script = rng.random() < 0.65
    font: FontName = SCRIPT_FONTS[rng.integers(len(SCRIPT_FONTS))] if script else PRINT_FONTS[rng.integers(2)]
    caps_font = font if rng.random() < 0.75 else SCRIPT_FONTS[rng.integers(len(SCRIPT_FONTS))]
    legibility = float(rng.beta(1.6, 1.2))
    fluent = float(rng.uniform(0.0, 1.0))
    return HandStyle(
        font=font,
        caps_font=caps_font,
        slant=float(rng.normal(0.25 if script else 0.1, 0.18)),
        x_scale=float(np.exp(rng.normal(-0.12, 0.25))),
        caps_scale=float(np.exp(rng.normal(0.18, 0.25))),
        tracking=float(rng.normal(-0.04, 0.08) if script else rng.normal(0.06, 0.1)),
        word_gap=float(rng.uniform(0.25, 1.2)),
        join_words=bool(script and rng.random() < 0.2),
        decay=float(rng.uniform(0.0, 0.35)),
        connect=float(rng.uniform(0.7, 1.0) if script else rng.uniform(0.0, 0.5)),
        baseline_slope=float(rng.normal(0.04, 0.06)),
        baseline_wave=float(rng.uniform(0.0, 0.15)),
        legibility=legibility,
        keep_letters=int(rng.integers(1, 4)),
        scrawl=bool(rng.random() < 0.8 * (1.0 - legibility) ** 1.5),
        omit_marks=float(np.clip(rng.uniform(-0.3, 0.9) * (1.2 - legibility), 0.0, 1.0)),
        flourish=FLOURISHES[int(rng.choice(len(FLOURISHES), p=_FLOURISH_P))],
        flourish_size=float(rng.uniform(0.7, 1.3)),
        flourish_dir=float(rng.normal(0.1, 0.15)),
        mu=float(rng.uniform(-2.0, -1.5)),
        sigma=float(rng.uniform(0.18, 0.3)),
        spacing=float(0.36 + 0.4 * (1.0 - fluent) * (0.4 + 0.6 * legibility)),
        simplify=float(0.03 + 0.12 * (1.0 - legibility) + 0.04 * fluent),
        pressure=float(rng.uniform(0.75, 1.2)),
        pressure_wave=float(rng.uniform(0.05, 0.25)),
        taper=float(rng.uniform(0.02, 0.06)),
        pen_mm=float(np.exp(rng.uniform(np.log(0.08), np.log(0.4)))),
        xheight_mm=float(rng.uniform(1.8, 4.5)),
        blue_ink=bool(rng.random() < 0.55),
        shape_seed=int(rng.integers(1 << 31)),
        deform=float(rng.uniform(0.04, 0.14) if script else rng.uniform(0.06, 0.18)),
    )


# std of each numeric field between two genuine repetitions (intra-writer variability)
_REPEAT_NOISE = {
    "slant": 0.025,
    "x_scale": 0.03,
    "caps_scale": 0.04,
    "tracking": 0.025,
    "word_gap": 0.06,
    "baseline_slope": 0.015,
    "baseline_wave": 0.02,
    "flourish_size": 0.06,
    "flourish_dir": 0.04,
    "mu": 0.05,
    "sigma": 0.012,
    "spacing": 0.02,
    "pressure": 0.04,
    "pen_mm": 0.0,
    "xheight_mm": 0.06,
}
_MULTIPLICATIVE = {"x_scale", "caps_scale", "flourish_size", "sigma", "pressure", "xheight_mm"}


def perturb_hand(style: HandStyle, rng: np.random.Generator, amount: float = 1.0) -> HandStyle:
    """The style of one repetition: every numeric habit moved by `amount` times its usual repetition noise.

    Args:
        style: the writer's style.
        rng: the generator of this repetition.
        amount: 1 for a genuine repetition; larger for a forger's misjudged proportions.
    """
    changes: dict[str, float] = {}
    for f in fields(style):
        std = _REPEAT_NOISE.get(f.name)
        if not std:
            continue
        value = getattr(style, f.name)
        noise = float(rng.normal(0.0, std * amount))
        changes[f.name] = value * float(np.exp(noise)) if f.name in _MULTIPLICATIVE else value + noise
    return replace(style, **changes)  # type: ignore[arg-type]
