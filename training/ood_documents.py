"""Document-like out-of-distribution material: what lands in a signature box that is not a signature.

Ruled boxes, tables and forms; printed text and printed digits; the pages, inks, words and fonts they share with
the geometric shapes, logos and stamps of `training.ood_shapes`. Each generator takes
`(height, width, n, rng, split)`; `split` ("fit" or "eval") picks disjoint font sets (OpenCV Hershey print fonts
and the Debian DejaVu/Liberation TrueType fonts where installed), so the images used to judge the gate are made
with fonts the gate never saw. Pages are dark ink on light paper, uint8 RGB.
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


def blank_page(height: int, width: int) -> np.ndarray:
    return np.full((height, width), 255, np.uint8)


def ink_level(rng: np.random.Generator) -> int:
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


def random_words(rng: np.random.Generator, lo: int = 1, hi: int = 5) -> str:
    text = " ".join(str(w) for w in rng.choice(WORDS, size=int(rng.integers(lo, hi + 1))))
    return text.capitalize() if rng.random() < 0.5 else (text.upper() if rng.random() < 0.3 else text)


def random_number(rng: np.random.Generator) -> str:
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
        page = blank_page(height, width)
        lines = int(rng.integers(1, 6))
        size = float(rng.uniform(0.3, 0.8)) * height / (lines + 1)
        ink = ink_level(rng)
        for j in range(lines):
            text = random_number(rng) if rng.random() < 0.2 else random_words(rng)
            y = int((j + 1) * height / (lines + 1) + size / 2)
            page = draw_text(page, text, int(rng.integers(2, max(3, width // 6))), y, size, rng, split, ink)
        out.append(page)
    return out


def printed_digits(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    """Printed numbers: amounts, dates, account numbers, single digits."""
    out = []
    for _ in range(n):
        page = blank_page(height, width)
        size = float(rng.uniform(0.2, 0.6)) * height
        x = int(rng.integers(2, max(3, width // 4)))
        out.append(draw_text(page, random_number(rng), x, int(height / 2 + size / 2), size, rng, split, ink_level(rng)))
    return out


def ruled(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    """Ruled boxes, tables and forms: grids, empty signature boxes, comb fields, labelled lines, lined paper."""
    out = []
    for _ in range(n):
        page, ink = blank_page(height, width), ink_level(rng) + int(rng.integers(0, 80))
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
                    text = random_number(rng) if rng.random() < 0.5 else random_words(rng, 1, 1)
                    page = draw_text(page, text, int(xs[c]) + 3, int(ys[r + 1] - size / 2), size, rng, split, ink)
        elif form == 1:  # an empty box, sometimes with a caption
            x0, y0 = int(rng.integers(2, width // 4)), int(rng.integers(2, height // 4))
            x1, y1 = int(rng.integers(3 * width // 4, width - 2)), int(rng.integers(3 * height // 4, height - 2))
            cv2.rectangle(page, (x0, y0), (x1, y1), ink, thick)
            if rng.random() < 0.5:
                page = draw_text(page, random_words(rng, 1, 2), x0 + 4, y0 + height // 8, height / 12, rng, split, ink)
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
