"""Execute an intended pen path with sigma-lognormal timing: fluent writers round and simplify, forgers hesitate.

Each pen-down polyline is reduced to virtual target points (Douglas-Peucker at the writer's tolerance), the arc
turn between targets is read from the polyline, and the strokes get lognormal timing from the writer's mu, sigma
and command spacing (`verify.synth.lognormal`). The overlap of consecutive strokes is what makes a fluent
writer's letters rounder and less legible than the font. The trajectory is sampled with each stroke evaluated
only inside its time window, so long signatures cost O(strokes x window), not O(strokes x duration).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.special import ndtr

from verify.synth.hand import HandStyle
from verify.synth.lognormal import LognormalStrokes, strokes_from_targets
from verify.synth.writer import Trace

_DT = 0.005  # sampling period, seconds
_TAIL = 3.2  # a stroke is evaluated over exp(mu +- _TAIL sigma) after its command
_SPEED_REF = 14.0  # x-heights per second at which the line gets noticeably thinner


@dataclass(frozen=True)
class Manner:
    """How one repetition is executed: a genuine writer's small noise or a forger's care and hesitation."""

    point_jitter: float = 0.02  # std of target-point noise, x-heights
    turn_jitter: float = 0.06  # std of arc-turn noise, radians
    slow: float = 0.0  # added to mu (log seconds)
    spacing: float = 1.0  # multiplies the command spacing (> 1: less overlap, more angular, closer to the model)
    hesitation: float = 0.0  # chance of a pause before each stroke
    lift: float = 0.0  # chance that a pause is a pen lift (a gap or overlap in the line, a blob where it lands)
    tremor: float = 0.0  # tremor amplitude, x-heights
    blunt: float = 0.0  # 0: tapered landings and lifts; 1: abrupt, full-pressure ends
    retouch: float = 0.0  # chance per component of going over a short piece of it again


GENUINE = Manner()


def forger_manner(rng: np.random.Generator) -> Manner:
    """A skilled forger copying a signature image: slower, more careful, shakier, with blunt ends and lifts."""
    return Manner(
        point_jitter=float(rng.uniform(0.03, 0.06)),
        turn_jitter=float(rng.uniform(0.1, 0.2)),
        slow=float(rng.uniform(0.3, 0.7)),
        spacing=float(rng.uniform(1.15, 1.6)),
        hesitation=float(rng.uniform(0.03, 0.12)),
        lift=float(rng.uniform(0.2, 0.6)),
        tremor=float(rng.uniform(0.003, 0.01)),
        blunt=float(rng.uniform(0.5, 1.0)),
        retouch=float(rng.uniform(0.0, 0.25)),
    )


def _targets(poly: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Virtual target points [K, 2] of a polyline and the signed turn of the path between them [K - 1]."""
    if len(poly) > 1:
        poly = poly[np.concatenate([[True], np.abs(np.diff(poly, axis=0)).sum(1) > 1e-9])]
    if len(poly) < 2:
        p = poly[0]
        return np.stack([p, p + np.array([0.03, 0.02])]), np.zeros(1)
    p32 = poly.astype(np.float32)
    approx = cv2.approxPolyDP(p32.reshape(-1, 1, 2), tol, False).reshape(-1, 2)
    idx = _match(p32, approx)
    seg = np.diff(poly, axis=0)
    ang = np.arctan2(seg[:, 1], seg[:, 0])
    bend = (np.diff(ang) + np.pi) % (2 * np.pi) - np.pi  # turn at each inner vertex
    cum = np.concatenate([[0.0], np.cumsum(bend)])
    turns = cum[idx[1:] - 1] - cum[idx[:-1]]
    return poly[idx], np.clip(turns, -1.6 * np.pi, 1.6 * np.pi)


def _match(poly: np.ndarray, approx: np.ndarray) -> np.ndarray:
    """Indices in `poly` of the vertices `approx` kept by Douglas-Peucker, increasing."""
    eq = (poly[None, :, :] == approx[:, None, :]).all(-1)  # [K, N]
    idx = np.argmax(eq, axis=1)
    if len(idx) < 2 or np.any(np.diff(idx) <= 0):  # a path through one of its own vertices: walk in order
        out: list[int] = []
        start = 0
        for row in eq:
            hits = np.flatnonzero(row[start:])
            if hits.size:
                start = start + int(hits[0])
                if not out or start > out[-1]:
                    out.append(start)
        idx = np.asarray(out if len(out) >= 2 else [0, len(poly) - 1])
    return idx


def sample_trajectory(strokes: LognormalStrokes, start: np.ndarray, dt: float = _DT) -> tuple[np.ndarray, np.ndarray]:
    """Positions [T, 2] and speed [T] of a sum of lognormal strokes, each evaluated only in its time window."""
    lo = strokes.t0 + np.exp(strokes.mu - _TAIL * strokes.sigma)
    hi = strokes.t0 + np.exp(strokes.mu + _TAIL * strokes.sigma)
    i0 = np.floor(lo / dt).astype(np.int64)
    span = int(np.max(np.ceil(hi / dt).astype(np.int64) - i0)) + 1
    idx = i0[:, None] + np.arange(span)[None, :]  # [J, L]
    total = int(idx.max()) + 2
    t = idx * dt
    rel = t - strokes.t0[:, None]
    log_rel = np.log(np.maximum(rel, 1e-9))
    z = (log_rel - strokes.mu[:, None]) / strokes.sigma[:, None]
    frac = ndtr(z)
    speed = (
        strokes.D[:, None]
        / (strokes.sigma[:, None] * np.sqrt(2 * np.pi) * np.maximum(rel, 1e-9))
        * np.exp(-0.5 * z * z)
    )
    turn = (strokes.theta_end - strokes.theta_start)[:, None] * frac
    head = strokes.theta_start[:, None] + turn / 2.0
    chord = strokes.D[:, None] * frac * np.sinc(turn / (2.0 * np.pi))
    phi = strokes.theta_start[:, None] + turn
    flat = idx.ravel()
    pos = np.empty((total, 2))
    vel = np.empty((total, 2))
    full = strokes.D * np.sinc((strokes.theta_end - strokes.theta_start) / (2.0 * np.pi))
    mid = 0.5 * (strokes.theta_start + strokes.theta_end)
    end_idx = i0 + span
    for k, (part, whole, v) in enumerate(
        (
            (chord * np.cos(head), full * np.cos(mid), speed * np.cos(phi)),
            (chord * np.sin(head), full * np.sin(mid), speed * np.sin(phi)),
        )
    ):
        after = np.bincount(np.minimum(end_idx, total - 1), weights=whole, minlength=total)
        pos[:, k] = np.bincount(flat, weights=part.ravel(), minlength=total)[:total] + np.cumsum(after)
        vel[:, k] = np.bincount(flat, weights=v.ravel(), minlength=total)[:total]
    return pos[:-1] + start[None, :], np.hypot(vel[:-1, 0], vel[:-1, 1])


def _width(t: np.ndarray, speed: np.ndarray, style: HandStyle, manner: Manner, rng: np.random.Generator) -> np.ndarray:
    """Relative ink width along a trace: pressure wave, thinner when fast, tapered or blunt ends."""
    wave = 1.0 + style.pressure_wave * np.sin(2 * np.pi * t / rng.uniform(0.8, 2.0) + rng.uniform(0, 6.3))
    ramp = style.taper * (1.0 - manner.blunt) + 1e-3
    edges = (1.0 - np.exp(-t / ramp)) * (1.0 - np.exp(-(t[-1] - t) / (1.5 * ramp)))
    thin = 0.55 + 0.45 * np.exp(-speed / _SPEED_REF)
    return style.pressure * wave * (0.35 + 0.65 * edges) * thin


def _tremor(n: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    if amplitude <= 0:
        return np.zeros((n, 2))
    t = np.arange(n) * _DT
    freq, phase = rng.uniform(5.0, 10.0, 2), rng.uniform(0.0, 2 * np.pi, 2)
    drift = np.cumsum(rng.normal(0.0, 1.0, (n, 2)), axis=0) * np.sqrt(_DT)
    return amplitude * (np.sin(2 * np.pi * freq * t[:, None] + phase) + 0.3 * drift)


def _schedule(
    parts: list[tuple[np.ndarray, np.ndarray]], style: HandStyle, manner: Manner, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]], list[float], tuple[np.ndarray, ...]]:
    """One timeline for the whole signature: ink strokes of each component, then an in-air stroke to the next.

    Returns:
        all target points [J + 1, 2], turns [J], the (pen-down, pen-up) times of each component, the command
        times of strokes a forger paused before, and (t0, mu, sigma) of every stroke [J].
    """
    counts = np.array([len(trn) for _, trn in parts])
    air = np.zeros(int(counts.sum()) + len(parts) - 1, bool)
    ends = np.cumsum(counts + 1) - 1  # index of the in-air stroke after each component
    air[ends[:-1]] = True
    first = np.concatenate([[0], ends[:-1] + 1])  # first ink stroke of each component
    last = ends - 1  # last ink stroke of each component
    pts = np.concatenate([p for p, _ in parts])
    turns = np.zeros(air.size)
    turns[~air] = np.concatenate([t for _, t in parts])
    turns[air] = rng.normal(0.0, 0.4, int(air.sum()))
    n = air.size
    steps = np.hypot(*np.diff(pts, axis=0).T)
    base = style.mu + manner.slow
    ink_mu = base + np.log(0.75 + 0.25 * np.sqrt(steps / 0.6)) + rng.normal(0.0, 0.05, n)
    mu = np.where(air, base + np.log(0.8 + 0.3 * np.sqrt(steps)), ink_mu)
    sigma = np.where(air, style.sigma, style.sigma * np.exp(rng.normal(0.0, 0.06, n)))
    paused = (rng.random(n) < manner.hesitation) & ~air
    paused[first] = False
    gaps = style.spacing * manner.spacing * np.exp(mu + rng.normal(0.0, 0.08, n))
    gaps = gaps + np.roll(paused, -1) * rng.uniform(0.1, 0.35, n)  # a pause delays the next command
    up_after = np.exp(mu[last] + 1.5 * sigma[last])  # last ink stroke's command -> pen up
    if len(parts) > 1:
        lead = np.exp(mu[ends[:-1]] - 1.2 * sigma[ends[:-1]])  # in-air stroke starts moving this long after its command
        gaps[last[:-1]] = np.maximum(up_after[:-1] - lead, 0.3 * np.exp(mu[last[:-1]]))
        gaps[ends[:-1]] = np.exp(mu[ends[:-1]] + 2.2 * sigma[ends[:-1]])
    t0 = np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    intervals = [(float(t0[f]), float(t0[la] + u)) for f, la, u in zip(first, last, up_after, strict=True)]
    return pts, turns, intervals, t0[paused].tolist(), (t0, mu, sigma)


def execute(comps: list[np.ndarray], style: HandStyle, manner: Manner, rng: np.random.Generator) -> list[Trace]:
    """Pen-down traces of one execution of an intended path.

    All components are written on one timeline (ink strokes, then an in-air stroke to the next component), so
    the whole signature is one vectorised lognormal evaluation.

    Args:
        comps: intended pen-down polylines (x-height units, y up), from `compose`.
        style: the writer's style (timing, pressure, simplification tolerance).
        manner: genuine noise or a forger's manner.
        rng: the generator of this execution.

    Returns:
        One `Trace` per pen-down piece (a forger's lifts split a component into several).
    """
    parts = []
    for poly in comps:
        pts, turns = _targets(poly, style.simplify)
        parts.append((pts + rng.normal(0.0, manner.point_jitter, pts.shape), turns))
    pts, turns, intervals, pauses, (t0, mu, sigma) = _schedule(parts, style, manner, rng)
    turns = turns + rng.normal(0.0, manner.turn_jitter, len(turns))
    xy, speed = sample_trajectory(strokes_from_targets(pts, turns, t0, mu, sigma), pts[0])
    xy = xy + _tremor(len(xy), manner.tremor, rng)
    cuts = [int(p / _DT) for p in pauses if rng.random() < manner.lift]
    traces: list[Trace] = []
    for down, up in intervals:
        a0, b0 = int(down / _DT), min(len(xy), int(up / _DT) + 1)
        inner = [c for c in cuts if a0 < c < b0 - 2]
        for a, b in zip([a0, *inner], [*inner, b0], strict=True):
            if a > a0:
                a = max(a0, a + int(rng.integers(-2, 3)))  # a lifted pen lands a little off: gap or overlap
            if b - a < 2:
                continue
            t = np.arange(b - a) * _DT
            traces.append(Trace(xy=xy[a:b], width=_width(t, speed[a:b], style, manner, rng)))
        if rng.random() < manner.retouch and b0 - a0 > 20:
            n = int(rng.integers(8, max(9, (b0 - a0) // 4)))
            a = int(rng.integers(a0, b0 - n))
            piece = xy[a : a + n] + rng.normal(0.0, 0.02, 2)
            traces.append(Trace(xy=piece, width=_width(np.arange(n) * _DT, speed[a : a + n], style, manner, rng)))
    return traces
