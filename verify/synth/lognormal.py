"""The sigma-lognormal model of rapid handwriting movements (Plamondon's kinematic theory), vectorised.

A pen trajectory is a sum of J overlapping strokes. Stroke j moves the pen a distance D_j along a circular arc
whose direction turns linearly (in path length) from theta_start_j to theta_end_j, with a lognormal speed
profile in time:

    |v_j(t)| = D_j / (sigma_j sqrt(2 pi) (t - t0_j)) * exp(-(ln(t - t0_j) - mu_j)^2 / (2 sigma_j^2)),  t > t0_j

The fraction of the stroke done at time t is the lognormal CDF Phi((ln(t - t0_j) - mu_j) / sigma_j), so the
displacement of each arc has a closed form (no numerical integration drift): every stroke ends exactly on its
virtual target point, and the overlap in time of consecutive strokes is what rounds the corners into curves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

_SQRT_2PI = float(np.sqrt(2.0 * np.pi))


@dataclass(frozen=True)
class LognormalStrokes:
    """Parameters of J sigma-lognormal strokes, each an array of shape [J].

    Attributes:
        D: path length of each arc (same units as the positions).
        t0: time of the motor command of each stroke, seconds.
        mu: log-time delay of each stroke (its timing), log seconds.
        sigma: log-response time of each stroke (its spread), > 0.
        theta_start: pen direction at the start of each arc, radians.
        theta_end: pen direction at the end of each arc, radians.
    """

    D: np.ndarray
    t0: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    theta_start: np.ndarray
    theta_end: np.ndarray

    def end_time(self, tail: float = 3.5) -> float:
        """The time by which every stroke is essentially over (t0 + exp(mu + tail sigma)), seconds."""
        return float(np.max(self.t0 + np.exp(self.mu + tail * self.sigma)))


def strokes_from_targets(
    points: np.ndarray, dtheta: np.ndarray, t0: np.ndarray, mu: np.ndarray, sigma: np.ndarray
) -> LognormalStrokes:
    """Strokes that join consecutive virtual target points with circular arcs.

    Args:
        points: target points [J + 1, 2]; stroke j goes from points[j] to points[j + 1].
        dtheta: signed turn of the pen direction along each arc [J] (radians, > 0 turns counter-clockwise);
            |dtheta| is kept below 1.9 pi.
        t0, mu, sigma: timing of each stroke [J].

    Returns:
        The strokes; their arc lengths make each arc's chord equal to the step between its targets.
    """
    step = np.diff(np.asarray(points, dtype=np.float64), axis=0)
    chord = np.hypot(step[:, 0], step[:, 1])
    angle = np.arctan2(step[:, 1], step[:, 0])
    dtheta = np.clip(np.asarray(dtheta, dtype=np.float64), -1.9 * np.pi, 1.9 * np.pi)
    length = chord / np.sinc(dtheta / (2.0 * np.pi))  # arc length for this chord: chord / (sin(a/2)/(a/2))
    return LognormalStrokes(
        D=length,
        t0=np.asarray(t0, dtype=np.float64),
        mu=np.asarray(mu, dtype=np.float64),
        sigma=np.asarray(sigma, dtype=np.float64),
        theta_start=angle - dtheta / 2.0,
        theta_end=angle + dtheta / 2.0,
    )


def _progress(strokes: LognormalStrokes, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fraction done [J, T] and speed [J, T] of each stroke at times t [T]."""
    dt = t[None, :] - strokes.t0[:, None]
    active = dt > 0
    log_dt = np.log(np.where(active, dt, 1.0))
    z = (log_dt - strokes.mu[:, None]) / strokes.sigma[:, None]
    frac = np.where(active, ndtr(z), 0.0)
    speed = np.where(
        active,
        strokes.D[:, None] / (strokes.sigma[:, None] * _SQRT_2PI * np.where(active, dt, 1.0)) * np.exp(-0.5 * z * z),
        0.0,
    )
    return frac, speed


def trajectory(
    strokes: LognormalStrokes, start: np.ndarray, dt: float = 0.004
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample the pen trajectory of a sum of lognormal strokes.

    Args:
        strokes: J strokes.
        start: pen position at t = 0 [2].
        dt: sampling period, seconds.

    Returns:
        positions [T, 2], speed (norm of the summed velocity) [T], and times [T].
    """
    t = np.arange(0.0, strokes.end_time() + dt, dt)
    frac, speed = _progress(strokes, t)
    turn = (strokes.theta_end - strokes.theta_start)[:, None] * frac  # direction turned so far [J, T]
    heading = strokes.theta_start[:, None] + turn / 2.0  # direction of the chord done so far
    chord = strokes.D[:, None] * frac * np.sinc(turn / (2.0 * np.pi))
    pos = np.stack([(chord * np.cos(heading)).sum(0), (chord * np.sin(heading)).sum(0)], axis=1)
    phi = strokes.theta_start[:, None] + turn  # current direction of each arc
    vel = np.stack([(speed * np.cos(phi)).sum(0), (speed * np.sin(phi)).sum(0)], axis=1)
    return pos + np.asarray(start, dtype=np.float64)[None, :], np.hypot(vel[:, 0], vel[:, 1]), t
