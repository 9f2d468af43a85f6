"""Out-of-distribution material for fitting and judging the OOD gate: inputs that are not signatures.

Everything here is made or bundled offline: face photos (assets/demo/faces and scikit-image's LFW crops),
handwritten digits (scikit-learn's bundled `load_digits`, upscaled, alone or in strings) and printed digits,
natural images (scikit-image's bundled samples), blank and noisy pages, printed text, ruled boxes/tables/forms,
geometric shapes, logos and stamps (training/ood_documents.py, training/ood_shapes.py). Every kind has two
disjoint splits: "fit" (what the gate learns from) and "eval" (what it is judged on): other seeds, other source
images, other fonts.
Pages get a light scan treatment (paper tone, ink colour, noise, blur) so the gate cannot key on clean pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from training import ood_documents as docs
from training import ood_shapes
from verify.models.defaults import assets_dir

Material = dict[str, list[np.ndarray]]
SPLITS = ("fit", "eval")


def _fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.stack([gray] * 3, axis=-1)


def _part(items: list, split: str) -> list:
    """Even positions for "fit", odd for "eval"."""
    return items[0::2] if split == "fit" else items[1::2]


def face_photos(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    """The demo portraits and scikit-image's LFW face crops (disjoint halves per split)."""
    from skimage import data

    base = []
    for path in _part(sorted((assets_dir() / "demo" / "faces").glob("*.jpg")), split):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is not None:
            base.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    lfw = data.lfw_subset()[:100]  # the first 100 are faces
    base += [_rgb((f * 255).astype(np.uint8)) for f in _part(list(lfw), split)]
    return [_fit(base[int(i)], height, width) for i in rng.integers(0, len(base), n)]


def digits(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    """Handwritten digits (scikit-learn's, disjoint halves per split), alone or as a number; and printed numbers."""
    from sklearn.datasets import load_digits

    images = np.asarray(_part(list(load_digits().images), split))  # [N, 8, 8] in 0..16, ink bright
    out = []
    for k in range(n):
        if k % 3 == 2:
            out.append(docs.printed_digits(height, width, 1, rng, split)[0])
            continue
        count = 1 if rng.random() < 0.4 else int(rng.integers(2, 7))
        size = int(min(height * rng.uniform(0.4, 0.9), (width - 4) / count))
        canvas = np.full((height, width), 255, np.uint8)
        x = int(rng.integers(0, max(1, width - count * size)))
        y = (height - size) // 2
        for i in rng.choice(len(images), size=count):
            ink = (images[i] / 16.0 * 255).astype(np.uint8)
            canvas[y : y + size, x : x + size] = 255 - cv2.resize(ink, (size, size), interpolation=cv2.INTER_CUBIC)
            x += size
        out.append(canvas)
    return out


def natural_images(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    from skimage import data

    names = [
        "astronaut",
        "coffee",
        "chelsea",
        "camera",
        "rocket",
        "immunohistochemistry",
        "hubble_deep_field",
        "cat",
        "moon",
        "page",
        "horse",
        "brick",
        "grass",
        "gravel",
        "retina",
        "text",
        "clock",
        "coins",
    ]
    base = []
    for name in _part(names, split):
        if hasattr(data, name):
            img = np.asarray(getattr(data, name)())
            img = img.astype(np.uint8) if img.dtype != bool else (img * 255).astype(np.uint8)
            base.append(img[..., :3] if img.ndim == 3 else _rgb(img))
    out = []
    for _ in range(n):
        img = base[int(rng.integers(len(base)))]
        h, w = img.shape[:2]
        ch, cw = int(h * rng.uniform(0.4, 1.0)), int(w * rng.uniform(0.4, 1.0))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        out.append(_fit(np.ascontiguousarray(img[y : y + ch, x : x + cw]), height, width))
    return out


def blank_pages(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    out = []
    for _ in range(n):
        level = rng.uniform(200, 255)
        page = np.clip(rng.normal(level, rng.uniform(0, 6), (height, width)), 0, 255).astype(np.uint8)
        out.append(page)
    return out


def noise_pages(height: int, width: int, n: int, rng: np.random.Generator, split: str = "fit") -> list[np.ndarray]:
    out = []
    for _ in range(n):
        cell = int(rng.integers(1, 9))
        noise = rng.uniform(0, 255, (height // cell + 1, width // cell + 1)).astype(np.uint8)
        out.append(cv2.resize(noise, (width, height), interpolation=cv2.INTER_NEAREST))
    return out


def scan(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A gray [H, W] page (dark ink on white) or an RGB image -> uint8 RGB with paper tone, ink colour, noise, blur."""
    if page.ndim == 3:
        return page
    ink = 1.0 - page.astype(np.float32) / 255.0
    paper = rng.uniform(205, 255, 3) if rng.random() < 0.7 else np.full(3, rng.uniform(225, 255))
    colour = [np.full(3, rng.uniform(0, 60)), np.array([20, 30, 140]), np.array([170, 30, 30])]
    ink_rgb = colour[int(rng.choice(3, p=[0.6, 0.25, 0.15]))]
    img = paper * (1 - ink[..., None]) + ink_rgb * ink[..., None]
    if rng.random() < 0.5:
        img += rng.normal(0, rng.uniform(1, 6), img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), 0)
    if rng.random() < 0.15:  # a binarised scan
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        img = _rgb(cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1])
    return img


Maker = Callable[[int, int, int, np.random.Generator, str], list[np.ndarray]]
KINDS: dict[str, Maker] = {
    "faces": face_photos,
    "digits": digits,
    "natural": natural_images,
    "blank": blank_pages,
    "noise": noise_pages,
    "printed_text": docs.printed_text,
    "ruled": docs.ruled,
    "shapes": ood_shapes.shapes,
    "logos": ood_shapes.logos,
}
DOCUMENT_KINDS = ("digits", "printed_text", "ruled", "shapes", "logos")  # rendered on pages of varied size


def ood_material(
    height: int = 150, width: int = 220, n: int = 40, seed: int = 0, split: str = "fit", kinds: tuple[str, ...] = ()
) -> Material:
    """OOD images by kind, uint8 RGB: `n` per kind (all of KINDS unless `kinds` names some).

    Document kinds are drawn on pages of 0.5-2x `height` x `width` (preprocessing crops to the ink anyway).
    `split` "fit" and "eval" give disjoint material (other seed, other source images and fonts).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    out: Material = {}
    for index, kind in enumerate(kinds or tuple(KINDS)):
        rng = np.random.default_rng([seed, SPLITS.index(split), index])
        make = KINDS[kind]
        if kind in DOCUMENT_KINDS:
            images = []
            for _ in range(n):
                h, w = int(height * rng.uniform(0.5, 2.0)), int(width * rng.uniform(0.5, 2.0))
                images.append(scan(make(h, max(w, h // 2), 1, rng, split)[0], rng))
        else:
            images = [scan(im, rng) if im.ndim == 2 else im for im in make(height, width, n, rng, split)]
        out[kind] = images
    return {k: v for k, v in out.items() if v}


def save_material(material: Material, out_dir: Path) -> None:
    """Write the images as PNGs under out_dir/<kind>/ (for inspection)."""
    for kind, images in material.items():
        (out_dir / kind).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            cv2.imwrite(str(out_dir / kind / f"{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
