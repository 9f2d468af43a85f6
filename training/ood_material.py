"""Out-of-distribution material for fitting and judging the OOD gate: inputs that are not signatures.

Everything here is made or bundled offline: face photos (assets/demo/faces), handwritten digits
(scikit-learn's bundled `load_digits`, upscaled), natural images (scikit-image's bundled samples), blank and
noisy pages, and printed text rendered with OpenCV's Hershey fonts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from verify.models.defaults import assets_dir

Material = dict[str, list[np.ndarray]]


def _fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def face_photos(height: int, width: int, n: int) -> list[np.ndarray]:
    folder = assets_dir() / "demo" / "faces"
    out = []
    for path in sorted(folder.glob("*.jpg")):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is not None:
            out.append(_fit(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), height, width))
    return (out * (n // max(len(out), 1) + 1))[:n] if out else []


def digits(height: int, width: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    from sklearn.datasets import load_digits

    images = load_digits().images  # [1797, 8, 8] in 0..16, ink bright
    pick = rng.choice(len(images), size=n, replace=False)
    out = []
    for i in pick:
        ink = (images[i] / 16.0 * 255).astype(np.uint8)
        page = 255 - cv2.resize(ink, (height, height), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((height, width), 255, np.uint8)
        x0 = (width - height) // 2
        canvas[:, x0 : x0 + height] = page
        out.append(np.stack([canvas] * 3, axis=-1))
    return out


def natural_images(height: int, width: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    from skimage import data

    names = ["astronaut", "coffee", "chelsea", "camera", "rocket", "immunohistochemistry", "hubble_deep_field"]
    base = []
    for name in names:
        img = np.asarray(getattr(data, name)())
        base.append(img if img.ndim == 3 else np.stack([img] * 3, axis=-1))
    out = []
    for _ in range(n):
        img = base[int(rng.integers(len(base)))]
        h, w = img.shape[:2]
        ch, cw = int(h * rng.uniform(0.4, 1.0)), int(w * rng.uniform(0.4, 1.0))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        out.append(_fit(np.ascontiguousarray(img[y : y + ch, x : x + cw, :3]), height, width))
    return out


def blank_pages(height: int, width: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        level = rng.uniform(200, 255)
        page = np.clip(rng.normal(level, rng.uniform(0, 6), (height, width)), 0, 255).astype(np.uint8)
        out.append(np.stack([page] * 3, axis=-1))
    return out


def noise_pages(height: int, width: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        noise = rng.uniform(0, 255, (height // 4 + 1, width // 4 + 1)).astype(np.uint8)
        page = cv2.resize(noise, (width, height), interpolation=cv2.INTER_NEAREST)
        out.append(np.stack([page] * 3, axis=-1))
    return out


_WORDS = [
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
]


def printed_text(height: int, width: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    fonts = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX]
    out = []
    for _ in range(n):
        page = np.full((height, width), 255, np.uint8)
        lines = int(rng.integers(1, 4))
        for j in range(lines):
            text = " ".join(rng.choice(_WORDS, size=int(rng.integers(1, 4))))
            scale = float(rng.uniform(0.35, 0.7)) * width / 220
            y = int((j + 1) * height / (lines + 1))
            font = fonts[int(rng.integers(len(fonts)))]
            cv2.putText(page, text, (int(rng.integers(2, 12)), y), font, scale, 0, 1, cv2.LINE_AA)
        out.append(np.stack([page] * 3, axis=-1))
    return out


KINDS: dict[str, Callable[..., list[np.ndarray]]] = {
    "digits": digits,
    "natural": natural_images,
    "blank": blank_pages,
    "noise": noise_pages,
    "printed_text": printed_text,
}


def ood_material(height: int = 150, width: int = 220, n: int = 40, seed: int = 0) -> Material:
    """OOD images by kind, uint8 RGB [height, width, 3]: faces, digits, natural, blank, noise, printed_text."""
    rng = np.random.default_rng(seed)
    out: Material = {"faces": face_photos(height, width, n)}
    for kind, make in KINDS.items():
        out[kind] = make(height, width, n, rng)
    return {k: v for k, v in out.items() if v}


def save_material(material: Material, out_dir: Path) -> None:
    """Write the images as PNGs under out_dir/<kind>/ (for inspection)."""
    for kind, images in material.items():
        (out_dir / kind).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            cv2.imwrite(str(out_dir / kind / f"{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
