"""Geometric shapes, logos and stamps: document-like out-of-distribution material (see `training.ood_documents`
for the pages, inks and fonts they share). Each generator takes `(height, width, n, rng, split)`.
"""

from __future__ import annotations

import cv2
import numpy as np

from training.ood_documents import STAMP_WORDS, blank_page, draw_text, fonts_for, ink_level, random_number, random_words


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
        page, ink = blank_page(height, width), ink_level(rng)
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
        page, ink = blank_page(height, width), ink_level(rng)
        form = int(rng.integers(3))
        r = float(rng.uniform(0.3, 0.48)) * min(height, width)
        cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
        if form == 0:
            cv2.circle(page, (int(cx), int(cy)), int(r), ink, int(rng.integers(1, 4)), cv2.LINE_AA)
            cv2.circle(page, (int(cx), int(cy)), int(r * 0.7), ink, int(rng.integers(1, 3)), cv2.LINE_AA)
            word = str(rng.choice(STAMP_WORDS))
            _text_on_circle(page, word, cx, cy, r * 0.85, max(6, int(r * 0.22)), ink, rng)
            page = draw_text(
                page, random_number(rng)[:6], int(cx - r * 0.5), int(cy + r * 0.15), r * 0.3, rng, split, ink
            )
        elif form == 1:
            w, h = r * rng.uniform(1.2, 2.0), r * rng.uniform(0.4, 0.7)
            stamp = blank_page(height, width)
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
                    random_words(rng, 1, 2).upper(),
                    int(cx + r * 1.1) if cx < width / 2 else 2,
                    int(cy + r * 0.2),
                    r * 0.35,
                    rng,
                    split,
                    ink,
                )
        out.append(page)
    return out
