"""The shape of a writer's signature: virtual target points and arc turns, grouped in pen-down components.

Cursive script is modelled as a horizontal progression with a vertical up/down oscillation (one oscillation per
letter), as in the oscillation theory of handwriting: up-strokes reach the x-height or an ascender, down-strokes
return to the baseline or a descender; ascenders and descenders become loops when the down-stroke comes back
across the up-stroke. A capital initial and an ending flourish complete the signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from verify.synth.style import WriterStyle


@dataclass
class Component:
    """One pen-down movement: targets [K + 1, 2] (x right, y up, x-height units) and arc turns [K]."""

    points: list[tuple[float, float]] = field(default_factory=list)
    dtheta: list[float] = field(default_factory=list)

    def to(self, x: float, y: float, turn: float) -> None:
        """Add a stroke from the last target to (x, y) whose direction turns by `turn` radians."""
        self.points.append((x, y))
        self.dtheta.append(turn)

    @property
    def pen(self) -> tuple[float, float]:
        return self.points[-1]


@dataclass(frozen=True)
class SignatureShape:
    """A signature's shape: per pen-down component, target points [K + 1, 2] and arc turns [K]."""

    points: tuple[np.ndarray, ...]
    dtheta: tuple[np.ndarray, ...]


def _initial(style: WriterStyle, rng: np.random.Generator, comp: Component) -> None:
    height = rng.uniform(2.2, 3.2)
    x, _ = comp.pen
    if style.initial == "loop":  # a tall looped stem, like a cursive L, J or S
        comp.to(x + 0.7, height, 1.8 * style.curvature)
        comp.to(x + 0.15, -0.2, 1.4 * style.curvature)
        comp.to(x + 0.9, 0.5, 1.2)
    else:  # an open oval, like a cursive O, C or G
        comp.to(x + 1.2, height, 0.9)
        comp.to(x + 0.2, 0.9 * height, 1.4)
        comp.to(x + 0.3, 0.0, 1.3)
        comp.to(x + 1.3, 0.6, 1.2)


def _letter(style: WriterStyle, rng: np.random.Generator, comp: Component, base: float) -> tuple[str, float]:
    """One up/down oscillation: an x-height letter, an ascender or a descender, looped or not.

    Returns:
        The letter's kind ("x", "asc" or "desc") and the x of its top, for an i-dot or a t-cross.
    """
    w = style.letter_width * rng.uniform(0.75, 1.25)
    x, _ = comp.pen
    garland = rng.random() < style.garland_p
    curv = style.curvature * rng.uniform(0.7, 1.3)
    loop = rng.random() < style.loop_p
    kind = rng.choice(["x", "asc", "desc"], p=_kind_p(style))
    if kind == "asc":
        top = rng.uniform(1.9, 2.6)
        comp.to(x + w * 0.6, base + top, min(2.3, (1.6 if loop else 0.6) * curv))
        back = -0.25 * w if loop else 0.05 * w
        comp.to(x + w * 0.6 + back, base, min(2.0, (1.3 if loop else 0.2) * curv))
    elif kind == "desc":
        comp.to(x + w * 0.5, base + 1.0, 0.5 * curv if garland else -0.8 * curv)
        comp.to(x + w * 0.45, base - rng.uniform(1.1, 1.6), -0.2)
        if loop:
            comp.to(x + w * 0.05, base - 0.6, -2.2)
    else:
        comp.to(x + w * 0.55, base + rng.uniform(0.8, 1.15), curv if garland else -curv)
        comp.to(x + w, base, curv if garland else -1.3 * curv)
    return str(kind), x + w * 0.55


def _mark(kind: str, x: float, base: float, rng: np.random.Generator) -> Component | None:
    """An i-dot above an x-height letter or a t-cross through an ascender; none for descenders."""
    if kind == "x":
        dot = Component(points=[(x + 0.15, base + rng.uniform(1.5, 1.9))])
        dot.to(x + 0.2, dot.pen[1] - 0.03, 0.0)
        return dot
    if kind == "asc":
        cross = Component(points=[(x - 0.35, base + 1.3)])
        cross.to(x + rng.uniform(0.3, 0.6), base + rng.uniform(1.3, 1.5), float(rng.uniform(-0.3, 0.3)))
        return cross
    return None


def _kind_p(style: WriterStyle) -> list[float]:
    return [1.0 - style.ascender_p - style.descender_p, style.ascender_p, style.descender_p]


def _flourish(style: WriterStyle, rng: np.random.Generator, comp: Component, start_x: float) -> None:
    x, y = comp.pen
    if style.flourish == "underline":  # a long sweep back under the name
        comp.to(x + 0.3, y - 0.8, -1.2)
        comp.to(start_x + rng.uniform(-0.3, 0.8), -rng.uniform(0.6, 1.2), rng.uniform(-0.5, 0.3))
    elif style.flourish == "tail":  # a long rising exit stroke
        comp.to(x + rng.uniform(1.0, 2.0), y + rng.uniform(0.6, 1.6), rng.uniform(-0.6, 0.6))
    elif style.flourish == "loop":  # a large loop around the end of the name
        comp.to(x + 0.8, y + 1.8, 1.8)
        comp.to(x - 0.6, y - 0.6, 2.0)
        comp.to(x + 1.2, y - 0.2, 0.8)


def _words(style: WriterStyle, rng: np.random.Generator, comps: list[Component]) -> list[Component]:
    """Write the name into comps[-1] (a short first name and a pen lift first, for two words); return marks."""
    phase = rng.uniform(0, 2 * np.pi)
    sizes = [int(rng.integers(2, 5)), style.n_letters] if style.words == 2 else [style.n_letters]
    marks, i = [], 0
    for k, size in enumerate(sizes):
        if k > 0:
            x, _ = comps[-1].pen
            comps.append(Component(points=[(x + rng.uniform(0.5, 0.9), 0.2)]))
        for _ in range(size):
            base = style.baseline_slope * i * style.letter_width + style.baseline_wave * np.sin(phase + 0.9 * i)
            kind, top_x = _letter(style, rng, comps[-1], base)
            mark = _mark(kind, top_x, base, rng) if rng.random() < style.marks_p else None
            if mark is not None:
                marks.append(mark)
            i += 1
    return marks


def sample_shape(style: WriterStyle, rng: np.random.Generator) -> SignatureShape:
    """Draw the virtual target points of a writer's signature.

    Args:
        style: the writer's habits.
        rng: the writer's own generator.

    Returns:
        The shape, with slant and aspect applied, in x-height units (y up).
    """
    comps: list[Component] = [Component(points=[(0.0, 0.0)])]
    if style.initial != "none":
        _initial(style, rng, comps[-1])
        if style.pen_lift:
            x, _ = comps[-1].pen
            comps.append(Component(points=[(x + 0.3, 0.3)]))
    marks = _words(style, rng, comps)
    start_x = comps[-1].points[0][0]
    x, y = comps[-1].pen
    comps[-1].to(x + 0.35, y + 0.6, 0.6)  # exit stroke
    _flourish(style, rng, comps[-1], start_x)
    comps.extend(marks)
    points, turns = [], []
    for comp in comps:
        p = np.asarray(comp.points, dtype=np.float64)
        p = np.stack([p[:, 0] + style.slant * p[:, 1], p[:, 1] * style.aspect], axis=1)
        points.append(p)
        turns.append(np.asarray(comp.dtheta, dtype=np.float64))
    return SignatureShape(points=tuple(points), dtheta=tuple(turns))
