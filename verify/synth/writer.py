"""Genuine repetitions and skilled forgeries of a signature shape, as sampled pen traces.

A genuine repetition perturbs the writer's own target points, arc turns and timing slightly (intra-writer
variability). A skilled forger starts from the genuine shape but writes it with their own, slower timing
(larger mu, less stroke overlap, hesitations), their own pen pressure, more shape variability and tremor, as in
Ferrer et al.'s GPDS-Synthetic forgeries: close in shape, different in dynamics and therefore in the ink.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from verify.synth.lognormal import strokes_from_targets, trajectory
from verify.synth.shapes import SignatureShape
from verify.synth.style import WriterStyle

_SPEED_REF = 8.0  # x-heights per second at which the ink line is noticeably thinner
_DT = 0.005  # sampling period of the trajectory, seconds


@dataclass(frozen=True)
class Trace:
    """One pen-down trace: positions [T, 2] (x-heights, y up) and relative ink width [T]."""

    xy: np.ndarray
    width: np.ndarray


@dataclass(frozen=True)
class _Manner:
    """How one repetition is executed (genuine writers: small values; forgers: larger)."""

    point_jitter: float  # std of target-point noise, x-heights
    turn_jitter: float  # std of arc-turn noise, radians
    shear_jitter: float  # std of the change of slant
    scale_jitter: float  # std of the log of the change of size
    slow: float  # added to mu (log seconds): > 0 is slower
    spacing: float  # multiplies the time between motor commands (> 1: less overlap, more angular)
    hesitation: float  # chance of a pause before each stroke
    tremor: float  # tremor amplitude, x-heights
    ramp: float  # time for pressure to build up after touching the paper, seconds


_GENUINE = _Manner(0.035, 0.08, 0.025, 0.03, 0.0, 1.0, 0.0, 0.0, 0.06)


def _forger_manner(rng: np.random.Generator) -> _Manner:
    return _Manner(
        point_jitter=float(rng.uniform(0.06, 0.1)),
        turn_jitter=float(rng.uniform(0.15, 0.3)),
        shear_jitter=float(rng.uniform(0.04, 0.08)),
        scale_jitter=float(rng.uniform(0.04, 0.08)),
        slow=float(rng.uniform(0.35, 0.7)),
        spacing=float(rng.uniform(1.0, 1.25)),
        hesitation=float(rng.uniform(0.05, 0.2)),
        tremor=float(rng.uniform(0.012, 0.03)),
        ramp=0.015,
    )


def _timing(n: int, style: WriterStyle, manner: _Manner, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """t0, mu, sigma [n] of the n strokes of one component."""
    mu = style.mu + manner.slow + rng.normal(0.0, 0.07, n)
    sigma = style.sigma * np.exp(rng.normal(0.0, 0.08, n))
    gaps = style.spacing * manner.spacing * np.exp(style.mu + manner.slow + rng.normal(0.0, 0.1, n))
    gaps = gaps + (rng.random(n) < manner.hesitation) * rng.uniform(0.08, 0.3, n)
    t0 = np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    return t0, mu, sigma


def _tremor(t: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Physiological tremor (5-10 Hz) plus slow drift [T, 2]."""
    if amplitude <= 0:
        return np.zeros((t.size, 2))
    freq = rng.uniform(5.0, 10.0, 2)
    phase = rng.uniform(0.0, 2.0 * np.pi, 2)
    wobble = np.sin(2.0 * np.pi * freq[None, :] * t[:, None] + phase[None, :])
    noise = np.cumsum(rng.normal(0.0, 1.0, (t.size, 2)), axis=0) * np.sqrt(_DT)
    return amplitude * (wobble + 0.8 * noise)


def _pressure(t: np.ndarray, style: WriterStyle, ramp: float, rng: np.random.Generator) -> np.ndarray:
    """Relative pen pressure along one trace [T]: a slow wave, lighter where the pen lands and leaves."""
    wave = 1.0 + style.pressure_wave * np.sin(2.0 * np.pi * t / rng.uniform(0.8, 2.0) + rng.uniform(0, 6.3))
    edges = (1.0 - np.exp(-t / ramp)) * (1.0 - np.exp(-(t[-1] - t) / (2.0 * ramp)))
    return style.pressure * wave * (0.45 + 0.55 * edges)


def _execute(shape: SignatureShape, style: WriterStyle, manner: _Manner, rng: np.random.Generator) -> list[Trace]:
    shear = rng.normal(0.0, manner.shear_jitter)
    scale = np.exp(rng.normal(0.0, manner.scale_jitter, 2))
    traces = []
    for points, turns in zip(shape.points, shape.dtheta, strict=True):
        pts = points + rng.normal(0.0, manner.point_jitter, points.shape)
        pts = np.stack([(pts[:, 0] + shear * pts[:, 1]) * scale[0], pts[:, 1] * scale[1]], axis=1)
        t0, mu, sigma = _timing(turns.size, style, manner, rng)
        strokes = strokes_from_targets(pts, turns + rng.normal(0.0, manner.turn_jitter, turns.size), t0, mu, sigma)
        xy, speed, t = trajectory(strokes, pts[0], dt=_DT)
        xy = xy + _tremor(t, manner.tremor, rng)
        thin = 0.6 + 0.4 * np.exp(-speed / _SPEED_REF)  # fast strokes leave a thinner line
        traces.append(Trace(xy=xy, width=_pressure(t, style, manner.ramp, rng) * thin))
    return traces


def genuine_traces(shape: SignatureShape, style: WriterStyle, rng: np.random.Generator) -> list[Trace]:
    """One genuine repetition of a writer's signature.

    Args:
        shape: the writer's signature shape.
        style: the writer's habits (timing, pressure).
        rng: the generator of this repetition.

    Returns:
        One `Trace` per pen-down component.
    """
    return _execute(shape, style, _GENUINE, rng)


def imitating_style(genuine: WriterStyle, forger: WriterStyle, rng: np.random.Generator) -> WriterStyle:
    """The habits of `forger` while imitating `genuine`'s signature.

    The forger copies what they see: the rhythm that shapes the curves (stroke overlap, about the same lognormal
    spread), the size on the page and a similar pen; their own pressure and ink stay. Their slowness, hesitations
    and tremor come from the forger's manner in `forgery_traces`.

    Args:
        genuine: the genuine writer's habits.
        forger: the forger's own habits.
        rng: the forger's generator.

    Returns:
        The style the forger writes the imitation with.
    """
    return replace(
        forger,
        mu=genuine.mu,
        sigma=0.5 * (genuine.sigma + forger.sigma),
        spacing=genuine.spacing,
        pen_width=genuine.pen_width * float(np.exp(rng.normal(0.0, 0.2))),
        fill=genuine.fill,
    )


def forgery_traces(
    shape: SignatureShape, forger: WriterStyle, rng: np.random.Generator, manner_rng: np.random.Generator
) -> list[Trace]:
    """One skilled forgery: the genuine `shape` written by `forger`, slowly and less steadily.

    Args:
        shape: the genuine writer's signature shape (what the forger imitates).
        forger: the forger's habits while imitating (see `imitating_style`).
        rng: the generator of this repetition.
        manner_rng: the forger's own generator for how carefully they imitate (same for all their forgeries).

    Returns:
        One `Trace` per pen-down component.
    """
    return _execute(shape, forger, _forger_manner(manner_rng), rng)
