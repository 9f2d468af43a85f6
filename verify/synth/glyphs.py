"""Single-stroke letter shapes from the Hershey fonts (PyPI `hershey-fonts`), in x-height units.

Every glyph is a list of pen-down polylines in the order the font draws them, with y up, the baseline at y = 0
and the x-height at y = 1; x starts at 0 on the glyph's left side and `advance` is its width. The "complex"
fonts draw thick lines as 2-3 parallel strokes; `_drop_doubled` keeps one of each, so that every font can be
written by one pen.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Literal

import numpy as np

from verify.errors import ConfigError

FontName = Literal["cursive", "scripts", "scriptc", "rowmans", "futural"]
SCRIPT_FONTS: tuple[FontName, ...] = ("cursive", "scripts", "scriptc")
PRINT_FONTS: tuple[FontName, ...] = ("rowmans", "futural")
_COMPLEX = {"scriptc"}
_BASELINE = 9.0  # Hershey y (down) of the baseline in every font used here


@dataclass(frozen=True)
class Glyph:
    """One letter: pen-down polylines [N_i, 2] (x-height units, y up) in drawing order, and its advance."""

    strokes: tuple[np.ndarray, ...]
    advance: float

    @property
    def main(self) -> int:
        """Index of the longest stroke (the letter body, which joins its neighbours in connected writing)."""
        lengths = [float(np.hypot(*np.diff(s, axis=0).T).sum()) if len(s) > 1 else 0.0 for s in self.strokes]
        return int(np.argmax(lengths)) if lengths else 0


def _load_font(name: str) -> dict[str, object]:
    from HersheyFonts import HersheyFonts  # the `hershey-fonts` distribution

    font = HersheyFonts()
    font.load_default_font(name)
    return dict(font.all_glyphs)


def _drop_doubled(strokes: list[np.ndarray], tol: float) -> list[np.ndarray]:
    """Drop strokes lying within `tol` of a longer stroke of the same glyph (the extra lines of bold fonts)."""
    length = [float(np.hypot(*np.diff(s, axis=0).T).sum()) for s in strokes]
    order = sorted(range(len(strokes)), key=lambda i: -length[i])
    kept: list[int] = []
    for i in order:
        s = _densify(strokes[i], 0.5)
        if len(s) >= 2 and kept:
            dense = np.concatenate([_densify(strokes[k], 0.5) for k in kept])
            d = np.sqrt(((s[:, None, :] - dense[None, :, :]) ** 2).sum(-1)).min(1)
            if float(np.mean(d <= tol)) > 0.8:
                continue
        kept.append(i)
    return [strokes[i] for i in sorted(kept)]


def _densify(poly: np.ndarray, step: float) -> np.ndarray:
    """Points along a polyline every `step` units (its vertices included)."""
    out = [poly[:1]]
    for a, b in pairwise(poly):
        n = max(1, int(np.ceil(np.hypot(*(b - a)) / step)))
        out.append(a + (b - a) * (np.arange(1, n + 1)[:, None] / n))
    return np.concatenate(out)


@cache
def _font_glyphs(name: str) -> dict[str, Glyph]:
    raw = _load_font(name)
    x_glyph = raw["x"]
    x_height = _BASELINE - float(x_glyph.draw_box[0][1])  # type: ignore[attr-defined]
    glyphs: dict[str, Glyph] = {}
    for char, g in raw.items():
        left = float(g.left_offset)  # type: ignore[attr-defined]
        strokes = [np.asarray(s, dtype=np.float64) for s in g.strokes if len(s) >= 1]  # type: ignore[attr-defined]
        if name in _COMPLEX:
            strokes = _drop_doubled(strokes, tol=1.6)
        scaled = tuple(
            np.stack([(s[:, 0] - left) / x_height, (_BASELINE - s[:, 1]) / x_height], axis=1) for s in strokes
        )
        glyphs[char] = Glyph(strokes=scaled, advance=float(g.char_width) / x_height)  # type: ignore[attr-defined]
    return glyphs


def ascii_text(text: str) -> str:
    """Latin letters without diacritics ("Øre Müller-Łęcka" -> "Ore Muller-Lecka"); other characters dropped."""
    special = {"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "Æ": "Ae", "đ": "d", "Đ": "D"}
    text = "".join(special.get(c, c) for c in text)
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c for c in plain if 32 <= ord(c) < 127)


def glyph(font: FontName, char: str) -> Glyph:
    """The glyph of one printable ASCII character in `font` (x-height units, y up, baseline 0).

    Raises:
        ConfigError: unknown font or a character the font lacks.
    """
    if font not in SCRIPT_FONTS + PRINT_FONTS:
        raise ConfigError(f"unknown Hershey font {font!r}; use one of {', '.join(SCRIPT_FONTS + PRINT_FONTS)}")
    glyphs = _font_glyphs(font)
    if char not in glyphs:
        raise ConfigError(f"font {font!r} has no glyph for {char!r}; pass ASCII text (see ascii_text)")
    return glyphs[char]
