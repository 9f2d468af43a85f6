"""Lay out the letters of a signature: Hershey glyphs placed with a writer's geometry, joined, plus a flourish.

The result is the *intended* path of the pen: pen-down polylines in x-height units (y up), in writing order.
`verify.synth.motion` then executes it with sigma-lognormal timing.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from verify.synth.glyphs import glyph
from verify.synth.hand import HandStyle

_BRIDGE_MAX = 1.6  # letters further apart than this (x-heights) are not joined even by a connecting writer


def _squash(k: int, style: HandStyle) -> float:
    """Amplitude kept by the k-th letter of a word: illegible writers flatten letters after the first few."""
    if k < style.keep_letters:
        return 1.0
    loss = (1.0 - style.legibility) * min(1.0, (k - style.keep_letters + 1) / 3.0)
    return 1.0 - 0.75 * loss


@lru_cache(maxsize=8192)
def _deformation(char: str, shape_seed: int, deform: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The writer's own way of shaping this letter: a smooth displacement field (3 waves per axis)."""
    rng = np.random.default_rng([shape_seed, ord(char)])
    freq = rng.normal(0.0, 2.2, (2, 3, 2))  # [axis, wave, (fx, fy)]
    phase = rng.uniform(0.0, 2.0 * np.pi, (2, 3))
    amp = rng.normal(0.0, deform / np.sqrt(3.0), (2, 3))
    return freq, phase, amp


def _deform(points: np.ndarray, field: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    freq, phase, amp = field
    arg = np.einsum("nd,awd->naw", points, freq) + phase[None]  # [N, axis, wave]
    return points + (amp[None] * np.sin(arg)).sum(-1)


def _letter(char: str, x: float, k: int, style: HandStyle, rng: np.random.Generator, jitter: float):
    """Strokes of one letter placed at pen position x; returns (strokes, main index, advance)."""
    upper = char.isupper()
    g = glyph(style.caps_font if upper else style.font, char)
    field = _deformation(char, style.shape_seed, style.deform)
    squash = _squash(k, style)
    size = style.caps_scale if upper else 1.0
    if not upper:
        size = 1.0 - style.decay * min(1.0, k / 8.0)  # letters shrink along the word
    sx = style.x_scale * size * (0.55 + 0.45 * squash) * float(np.exp(rng.normal(0.0, jitter)))
    sy = size * float(np.exp(rng.normal(0.0, jitter)))
    mid = 0.5
    strokes = []
    for s in g.strokes:
        s = _deform(s, field)
        y = s[:, 1] * sy
        if squash < 1.0 and not upper:
            y = mid + (y - mid) * squash
        strokes.append(np.stack([x + s[:, 0] * sx, y], axis=1))
    return strokes, g.main, g.advance * sx


def _join(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Continue polyline a into polyline b (a short connecting line between them)."""
    if np.hypot(*(a[-1] - b[0])) < 1e-6:
        return np.concatenate([a, b[1:]])
    return np.concatenate([a, b])


def _scrawl(word: str, letters: int, start: np.ndarray, style: HandStyle, rng: np.random.Generator) -> np.ndarray:
    """The rest of a word as an illegible writer writes it: a garland of bumps of the writer's own rhythm.

    The shape (bump count, heights, sharpness) is fixed per writer and word; `rng` adds repetition noise.
    """
    own = np.random.default_rng([style.shape_seed, 7, len(word), ord(word[0])])
    bumps = max(1, round(letters * own.uniform(0.3, 1.1)))
    length = letters * own.uniform(0.35, 0.75) * style.x_scale * float(np.exp(rng.normal(0.0, 0.04)))
    heights = own.uniform(0.2, 1.0, bumps) * own.uniform(0.4, 1.0) * (1.0 + rng.normal(0.0, 0.06, bumps))
    sharp = own.uniform(0.5, 2.0)
    t = np.linspace(0.0, 1.0, bumps * 8 + 1)
    which = np.minimum((t * bumps).astype(int), bumps - 1)
    y = heights[which] * np.abs(np.sin(np.pi * bumps * t)) ** sharp + own.normal(0.0, 0.25) * t
    return np.stack([start[0] + 0.15 + t * length, start[1] * (1 - t) + y], axis=1)


def _omits(style: HandStyle, char: str, k: int, stroke: int) -> bool:
    """Whether the writer leaves out this extra stroke (an i-dot, a t-bar): the same in every repetition."""
    if style.omit_marks <= 0.0:
        return False
    return bool(np.random.default_rng([style.shape_seed, 11, k, ord(char), stroke]).random() < style.omit_marks)


def _word(word: str, x: float, style: HandStyle, rng: np.random.Generator, jitter: float):
    """Components of one word: bodies, marks (i-dots, t-bars), and the pen x after it."""
    bodies: list[np.ndarray] = []
    marks: list[np.ndarray] = []
    current: np.ndarray | None = None
    for k, char in enumerate(word):
        if char == " ":
            x += style.word_gap
            continue
        rest = len(word) - k
        if style.scrawl and k >= style.keep_letters and rest >= 2 and char.islower():
            tail = _scrawl(word, rest, current[-1] if current is not None else np.array([x, 0.0]), style, rng)
            current = tail if current is None else _join(current, tail)
            x = float(tail[-1, 0]) + style.tracking
            break
        strokes, main, advance = _letter(char, x, k, style, rng, jitter)
        for i, s in enumerate(strokes):
            if i != main:
                if not _omits(style, char, k, i):
                    marks.append(s)
                continue
            near = current is not None and np.hypot(*(current[-1] - s[0])) < _BRIDGE_MAX
            if current is not None and near and char.isalpha() and rng.random() < style.connect:
                current = _join(current, s)
            else:
                if current is not None:
                    bodies.append(current)
                current = s
        x += advance + style.tracking
    if current is not None:
        bodies.append(current)
    return bodies, marks, x


def _de_casteljau(ctrl: np.ndarray, t: np.ndarray) -> np.ndarray:
    pts = np.repeat(ctrl[None, :, :], t.size, axis=0)  # [n, K, 2]
    tt = t[:, None, None]
    while pts.shape[1] > 1:
        pts = (1 - tt) * pts[:, :-1] + tt * pts[:, 1:]
    return pts[:, 0]


def _flourish(comps: list[np.ndarray], style: HandStyle, rng: np.random.Generator) -> list[np.ndarray]:
    """The writer's flourish, joined to the last letter (paraph, tail) or as its own stroke."""
    allp = np.concatenate(comps)
    (x0, y0), (x1, y1) = allp.min(0), allp.max(0)
    w, s, d = x1 - x0, style.flourish_size, style.flourish_dir
    end = comps[0][-1] if len(comps) == 1 else max(comps, key=lambda c: c[-1, 0])[-1]
    r = rng.normal(0.0, 0.05, 8)
    if style.flourish == "underline":
        pts = [
            (x0 - 0.3 + r[0], y0 - 0.3 + r[1]),
            (x0 + 0.5 * w, y0 - 0.6 * s + r[2]),
            (x1 + 0.6 * s, y0 - 0.2 + 0.25 * w * d),
        ]
        return [*comps, _de_casteljau(np.asarray(pts), np.linspace(0, 1, 24))]
    if style.flourish == "strike":
        pts = [(x0 - 0.6 * s, y0 + 0.2 + r[0]), (x0 + 0.5 * w, 0.5 * (y0 + y1) + r[1]), (x1 + 0.8 * s, y1 + 0.3 * s)]
        return [*comps, _de_casteljau(np.asarray(pts), np.linspace(0, 1, 20))]
    if style.flourish == "loop":
        t = np.linspace(0.3, 2.0 * np.pi + rng.uniform(0.2, 1.2), 48)
        cx, cy, rx, ry = x0 + 0.5 * w, 0.5 * (y0 + y1) - 0.2, 0.5 * w * s + 0.3, 0.45 * (y1 - y0) * s + 0.3
        ell = np.stack([cx + rx * np.cos(t) + 0.15 * rx * t / 6, cy + ry * np.sin(t) * (1 - 0.1 * t / 6)], axis=1)
        return [*comps, ell]
    last = max(range(len(comps)), key=lambda i: comps[i][-1, 0])
    if style.flourish == "tail":
        pts = [tuple(end), (end[0] + 0.8 * s, end[1] - 0.3 + r[0]), (end[0] + 2.5 * s, end[1] + 2.5 * s * d + r[1])]
    else:  # paraph: down and back under the name, then out to the right
        pts = [
            tuple(end),
            (end[0] + 0.5, y0 - 0.5 * s + r[0]),
            (x0 + 0.2 * w, y0 - 0.9 * s + r[1]),
            (x0 + 0.1 * w, y0 - 0.3 * s + r[2]),
            (x1 + 0.8 * s, y0 - 0.6 * s + 0.25 * w * d),
        ]
    out = list(comps)
    out[last] = _join(comps[last], _de_casteljau(np.asarray(pts), np.linspace(0, 1, 28)))
    return out


def compose(words: list[str], style: HandStyle, rng: np.random.Generator, jitter: float = 0.03) -> list[np.ndarray]:
    """The intended pen path of a signature.

    Args:
        words: what is signed, e.g. ["A.", "Koene"].
        style: the writer's (or this repetition's) style.
        rng: the generator of this repetition (letter-to-letter size noise, joins).
        jitter: std of the log of each letter's width and height change (larger for a forger's proportions).

    Returns:
        Pen-down polylines [N_i, 2] in x-height units, y up, in writing order.
    """
    bodies: list[np.ndarray] = []
    marks: list[np.ndarray] = []
    x = 0.0
    for word in words:
        new, dots, x = _word(word, x, style, rng, jitter)
        if style.join_words and bodies and new:  # the pen runs on into the next word
            bodies[-1] = _join(bodies[-1], new[0])
            new = new[1:]
        bodies.extend(new)
        if style.join_words:
            marks.extend(dots)
        else:
            bodies.extend(dots)
        x += style.word_gap * (0.35 if style.join_words else 1.0)
    comps = [c for c in bodies + marks if len(c) >= 1]
    if style.flourish != "none" and comps:
        comps = _flourish(comps, style, rng)
    phase, period = rng.uniform(0.0, 2.0 * np.pi), rng.uniform(6.0, 14.0)
    out = []
    for c in comps:
        y = (
            c[:, 1]
            + style.baseline_slope * c[:, 0]
            + style.baseline_wave * np.sin(2 * np.pi * c[:, 0] / period + phase)
        )
        out.append(np.stack([c[:, 0] + style.slant * y, y], axis=1))
    return out
