"""Document-like out-of-distribution material: what lands in a signature box that is not a signature.

Ruled boxes, tables and forms; geometric shapes; logos and stamps; printed text and printed or handwritten
digits. Each generator takes `(height, width, n, rng, split)`; `split` ("fit" or "eval") picks disjoint font sets
(OpenCV Hershey print fonts and the Debian DejaVu/Liberation TrueType fonts where installed), so the images used
to judge the gate are made with fonts the gate never saw. Pages are dark ink on light paper, uint8 RGB.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

_HERSHEY = [  # print fonts only: the script faces look like handwriting and belong to signatures
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
]
_TTF_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation")
WORDS = [
    "invoice",
    "total",
    "amount",
    "date",
    "account",
    "payment",
    "bank",
    "transfer",
    "reference",
    "number",
    "signed",
    "copy",
    "page",
    "customer",
    "address",
    "street",
    "city",
    "country",
    "phone",
    "email",
    "order",
    "receipt",
    "balance",
    "due",
    "paid",
    "approved",
    "received",
    "office",
    "department",
    "name",
    "title",
    "company",
    "limited",
    "contract",
    "agreement",
    "section",
    "clause",
    "witness",
]
STAMP_WORDS = ("PAID", "APPROVED", "RECEIVED", "COPY", "CONFIDENTIAL", "VOID", "ORIGINAL", "FILED", "CHECKED")


@lru_cache(maxsize=1)
def _ttf_fonts() -> tuple[str, ...]:
    found = []
    for folder in _TTF_DIRS:
        found += [str(p) for p in sorted(Path(folder).glob("*.ttf")) if "Math" not in p.name]
    return tuple(found)


def fonts_for(split: str) -> tuple[list[int], list[str]]:
    """The Hershey and TrueType fonts of a split: every other font goes to "fit", the rest to "eval"."""
    part = 0 if split == "fit" else 1
    return _HERSHEY[part::2], list(_ttf_fonts()[part::2])


def _page(height: int, width: int) -> np.ndarray:
    return np.full((height, width), 255, np.uint8)


def _ink(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 90))


def draw_text(
    page: np.ndarray, text: str, x: int, y: int, size: float, rng: np.random.Generator, split: str, ink: int = 0
) -> np.ndarray:
    """Write `text` with its baseline near (x, y), `size` = cap height in pixels, in a random font of `split`."""
    hershey, ttf = fonts_for(split)
    if ttf and rng.random() < 0.6:
        font = ImageFont.truetype(ttf[int(rng.integers(len(ttf)))], max(6, int(size * 1.4)))
        img = Image.fromarray(page)
        ImageDraw.Draw(img).text((x, y), text, fill=ink, font=font, anchor="ls")
        return np.asarray(img).copy()
    face = hershey[int(rng.integers(len(hershey)))]
    scale = size / 22.0 if face not in (cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_COMPLEX_SMALL) else size / 14.0
    thick = max(1, round(size / 14 * rng.uniform(0.6, 1.6)))
    cv2.putText(page, text, (x, y), face, scale, ink, thick, cv2.LINE_AA if rng.random() < 0.7 else cv2.LINE_8)
    return page


def _words(rng: np.random.Generator, lo: int = 1, hi: int = 5) -> str:
    text = " ".join(str(w) for w in rng.choice(WORDS, size=int(rng.integers(lo, hi + 1))))
    return text.capitalize() if rng.random() < 0.5 else (text.upper() if rng.random() < 0.3 else text)


def _number(rng: np.random.Generator) -> str:
    form = int(rng.integers(5))
    if form == 0:
        return f"{int(rng.integers(1, 29)):02d}/{int(rng.integers(1, 13)):02d}/{int(rng.integers(1950, 2040))}"
    if form == 1:
        return f"{rng.uniform(1, 99999):,.2f}"
    if form == 2:
        return " ".join(str(int(rng.integers(1000, 9999))) for _ in range(int(rng.integers(1, 5))))
    if form == 3:
        return str(int(rng.integers(0, 10)))
    return str(int(rng.integers(10, 10**7)))


def printed_text(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    """Printed words, lines and numbers (1-5 lines), left-aligned or centred."""
    out = []
    for _ in range(n):
        page = _page(height, width)
        lines = int(rng.integers(1, 6))
        size = float(rng.uniform(0.3, 0.8)) * height / (lines + 1)
        ink = _ink(rng)
        for j in range(lines):
            text = _number(rng) if rng.random() < 0.2 else _words(rng)
            y = int((j + 1) * height / (lines + 1) + size / 2)
            page = draw_text(page, text, int(rng.integers(2, max(3, width // 6))), y, size, rng, split, ink)
        out.append(page)
    return out


def printed_digits(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    """Printed numbers: amounts, dates, account numbers, single digits."""
    out = []
    for _ in range(n):
        page = _page(height, width)
        size = float(rng.uniform(0.2, 0.6)) * height
        x = int(rng.integers(2, max(3, width // 4)))
        out.append(draw_text(page, _number(rng), x, int(height / 2 + size / 2), size, rng, split, _ink(rng)))
    return out


def ruled(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    """Ruled boxes, tables and forms: grids, empty signature boxes, comb fields, labelled lines, lined paper."""
    out = []
    for _ in range(n):
        page, ink = _page(height, width), _ink(rng) + int(rng.integers(0, 80))
        thick = int(rng.integers(1, 4))
        form = int(rng.integers(5))
        if form == 0:  # table
            rows, cols = int(rng.integers(2, 7)), int(rng.integers(2, 6))
            ys = np.linspace(int(rng.integers(2, 15)), height - int(rng.integers(3, 15)), rows + 1).astype(int)
            xs = np.sort(rng.choice(np.arange(4, width - 4), size=cols + 1, replace=False))
            for y in ys:
                cv2.line(page, (int(xs[0]), int(y)), (int(xs[-1]), int(y)), ink, thick)
            for x in xs:
                cv2.line(page, (int(x), int(ys[0])), (int(x), int(ys[-1])), ink, thick)
            if rng.random() < 0.5:
                for r in range(rows):
                    c = int(rng.integers(cols))
                    size = 0.5 * (ys[r + 1] - ys[r])
                    text = _number(rng) if rng.random() < 0.5 else _words(rng, 1, 1)
                    page = draw_text(page, text, int(xs[c]) + 3, int(ys[r + 1] - size / 2), size, rng, split, ink)
        elif form == 1:  # an empty box, sometimes with a caption
            x0, y0 = int(rng.integers(2, width // 4)), int(rng.integers(2, height // 4))
            x1, y1 = int(rng.integers(3 * width // 4, width - 2)), int(rng.integers(3 * height // 4, height - 2))
            cv2.rectangle(page, (x0, y0), (x1, y1), ink, thick)
            if rng.random() < 0.5:
                page = draw_text(page, _words(rng, 1, 2), x0 + 4, y0 + height // 8, height / 12, rng, split, ink)
        elif form == 2:  # comb field: a row of character cells
            cells, y0 = int(rng.integers(5, 16)), int(rng.integers(height // 4, height // 2))
            cell = (width - 8) // cells
            for i in range(cells + 1):
                cv2.line(page, (4 + i * cell, y0), (4 + i * cell, y0 + cell), ink, thick)
            cv2.line(page, (4, y0 + cell), (4 + cells * cell, y0 + cell), ink, thick)
            if rng.random() < 0.5:
                cv2.line(page, (4, y0), (4 + cells * cell, y0), ink, thick)
        elif form == 3:  # labelled lines of a form
            lines = int(rng.integers(1, 5))
            for j in range(lines):
                y = int((j + 1) * height / (lines + 1))
                label = str(rng.choice(["Name:", "Date:", "Signature:", "Place:", "Sign here", "X"]))
                page = draw_text(page, label, 4, y - 3, height / (3 * lines + 3), rng, split, ink)
                x0 = int(rng.integers(width // 4, width // 2))
                dotted = rng.random() < 0.3
                for x in range(x0, width - 4, 6 if dotted else width):
                    cv2.line(page, (x, y), (min(x + (3 if dotted else width), width - 4), y), ink, thick)
        else:  # lined paper, sometimes with a margin
            gap = int(rng.integers(8, max(9, height // 3)))
            for y in range(int(rng.integers(2, gap + 2)), height, gap):
                cv2.line(page, (0, y), (width - 1, y), ink + int(rng.integers(0, 60)), 1)
            if rng.random() < 0.5:
                x = int(rng.integers(10, width // 4))
                cv2.line(page, (x, 0), (x, height - 1), ink, thick)
        out.append(page)
    return out


def _polygon(rng: np.random.Generator, cx: float, cy: float, r: float) -> np.ndarray:
    kind = int(rng.integers(4))
    if kind == 0:  # regular polygon
        k, phase = int(rng.integers(3, 9)), rng.uniform(0, 2 * np.pi)
        angles = phase + np.arange(k) * 2 * np.pi / k
        radii = np.full(k, r)
    elif kind == 1:  # star
        k, phase = int(rng.integers(5, 9)), rng.uniform(0, 2 * np.pi)
        angles = phase + np.arange(2 * k) * np.pi / k
        radii = np.where(np.arange(2 * k) % 2 == 0, r, r * rng.uniform(0.35, 0.6))
    elif kind == 2:  # arrow
        pts = np.array([[-1, -0.2], [0.3, -0.2], [0.3, -0.5], [1, 0], [0.3, 0.5], [0.3, 0.2], [-1, 0.2]]) * r
        rot = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(rot), np.sin(rot)
        return (pts @ np.array([[c, s], [-s, c]]) + [cx, cy]).astype(np.int32)
    else:  # random convex-ish blob
        k = int(rng.integers(4, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        radii = r * rng.uniform(0.6, 1.0, k)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1).astype(np.int32)


def _shape(page: np.ndarray, rng: np.random.Generator, cx: float, cy: float, r: float, ink: int, fill: bool) -> None:
    thick = -1 if fill else int(rng.integers(1, 5))
    kind = int(rng.integers(4))
    if kind == 0:
        axes = (int(r), int(r * rng.uniform(0.5, 1.0)) if rng.random() < 0.5 else int(r))
        cv2.ellipse(page, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, ink, thick, cv2.LINE_AA)
    elif kind == 1:
        w, h = r * rng.uniform(0.5, 1.0), r * rng.uniform(0.3, 1.0)
        cv2.rectangle(page, (int(cx - w), int(cy - h)), (int(cx + w), int(cy + h)), ink, thick)
    else:
        pts = _polygon(rng, cx, cy, r)
        if fill:
            cv2.fillPoly(page, [pts], ink, cv2.LINE_AA)
        else:
            cv2.polylines(page, [pts], True, ink, thick, cv2.LINE_AA)


def shapes(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    """1-4 geometric shapes (ellipses, rectangles, polygons, stars, arrows), outlined or filled."""
    out = []
    for _ in range(n):
        page, ink = _page(height, width), _ink(rng)
        for _ in range(int(rng.integers(1, 5))):
            r = float(rng.uniform(0.15, 0.45)) * min(height, width)
            cx, cy = rng.uniform(r, max(r + 1, width - r)), rng.uniform(r, max(r + 1, height - r))
            _shape(page, rng, cx, cy, r, ink, fill=rng.random() < 0.35)
        out.append(page)
    return out


def _text_on_circle(
    page: np.ndarray, text: str, cx: float, cy: float, r: float, size: int, ink: int, rng: np.random.Generator
) -> None:
    """Letters along the top of a circle, each rotated to the tangent (a round stamp's legend)."""
    hershey, _ = fonts_for("fit")
    face = hershey[int(rng.integers(len(hershey)))]
    span = min(np.pi * 1.6, len(text) * size * 1.1 / r)
    for i, ch in enumerate(text):
        theta = -np.pi / 2 - span / 2 + span * (i + 0.5) / max(len(text), 1)
        tile = np.full((2 * size, 2 * size), 255, np.uint8)
        cv2.putText(tile, ch, (size // 2, int(size * 1.5)), face, size / 22, ink, max(1, size // 10), cv2.LINE_AA)
        rot = cv2.getRotationMatrix2D((size, size), -np.degrees(theta + np.pi / 2), 1.0)
        tile = np.asarray(cv2.warpAffine(tile, rot, tile.shape[::-1], borderValue=255), np.uint8)
        x, y = int(cx + r * np.cos(theta)) - size, int(cy + r * np.sin(theta)) - size
        if x >= 0 and y >= 0 and x + 2 * size <= page.shape[1] and y + 2 * size <= page.shape[0]:
            region = page[y : y + 2 * size, x : x + 2 * size]
            np.minimum(region, tile, out=region)


def logos(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    """Round stamps (rings with a legend), rectangular stamps, and filled logos with initials."""
    out = []
    for _ in range(n):
        page, ink = _page(height, width), _ink(rng)
        form = int(rng.integers(3))
        r = float(rng.uniform(0.3, 0.48)) * min(height, width)
        cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
        if form == 0:
            cv2.circle(page, (int(cx), int(cy)), int(r), ink, int(rng.integers(1, 4)), cv2.LINE_AA)
            cv2.circle(page, (int(cx), int(cy)), int(r * 0.7), ink, int(rng.integers(1, 3)), cv2.LINE_AA)
            word = str(rng.choice(STAMP_WORDS))
            _text_on_circle(page, word, cx, cy, r * 0.85, max(6, int(r * 0.22)), ink, rng)
            page = draw_text(page, _number(rng)[:6], int(cx - r * 0.5), int(cy + r * 0.15), r * 0.3, rng, split, ink)
        elif form == 1:
            w, h = r * rng.uniform(1.2, 2.0), r * rng.uniform(0.4, 0.7)
            stamp = _page(height, width)
            cv2.rectangle(stamp, (int(cx - w), int(cy - h)), (int(cx + w), int(cy + h)), ink, int(rng.integers(1, 4)))
            if rng.random() < 0.5:
                d = int(rng.integers(3, 7))
                cv2.rectangle(stamp, (int(cx - w) + d, int(cy - h) + d), (int(cx + w) - d, int(cy + h) - d), ink, 1)
            stamp = draw_text(
                stamp, str(rng.choice(STAMP_WORDS)), int(cx - w * 0.85), int(cy + h * 0.35), h * 0.9, rng, split, ink
            )
            rot = cv2.getRotationMatrix2D((cx, cy), float(rng.uniform(-25, 25)), 1.0)
            page = cv2.warpAffine(stamp, rot, (width, height), borderValue=255)
        else:
            _shape(page, rng, cx, cy, r, ink, fill=True)
            letters = "".join(chr(int(c)) for c in rng.integers(65, 91, size=int(rng.integers(1, 4))))
            page = draw_text(page, letters, int(cx - r * 0.5), int(cy + r * 0.25), r * 0.6, rng, split, 255)
            if rng.random() < 0.6:
                page = draw_text(
                    page,
                    _words(rng, 1, 2).upper(),
                    int(cx + r * 1.1) if cx < width / 2 else 2,
                    int(cy + r * 0.2),
                    r * 0.35,
                    rng,
                    split,
                    ink,
                )
        out.append(page)
    return out
