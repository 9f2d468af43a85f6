"""Training augmentation per modality, on preprocessed uint8 crops (so the crop size never changes).

- faces: horizontal flip, colour jitter (brightness, contrast, saturation), small random crop re-scaled back;
- signatures: no flip (handwriting is not mirror-symmetric), small affine (rotation, scale, shift, shear) filling
  with the crop's own background, and stroke-width jitter by morphological erosion/dilation (thicker or thinner
  ink whether the preprocessor gives dark ink on paper or bright ink on black).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from verify.errors import ConfigError

Augment = Callable[[np.ndarray], np.ndarray]


def _flip(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image[:, ::-1].copy() if rng.random() < 0.5 else image


def _colour_jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    x = image.astype(np.float32)
    x = x * (1.0 + rng.uniform(-0.3, 0.3) * strength)  # brightness
    mean = x.mean()
    x = (x - mean) * (1.0 + rng.uniform(-0.3, 0.3) * strength) + mean  # contrast
    if x.ndim == 3:
        gray = x.mean(axis=2, keepdims=True)
        x = (x - gray) * (1.0 + rng.uniform(-0.3, 0.3) * strength) + gray  # saturation
    return np.clip(x, 0, 255).astype(np.uint8)


def _random_crop(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    h, w = image.shape[:2]
    scale = 1.0 - rng.uniform(0.0, 0.12 * strength)
    ch, cw = max(8, round(h * scale)), max(8, round(w * scale))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    return cv2.resize(image[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)


def _affine(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    h, w = image.shape[:2]
    angle = rng.uniform(-5.0, 5.0) * strength
    scale = 1.0 + rng.uniform(-0.08, 0.08) * strength
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    m[0, 1] += rng.uniform(-0.1, 0.1) * strength  # shear
    m[:, 2] += rng.uniform(-0.05, 0.05, size=2) * strength * np.array([w, h])
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=_background(image))


def _background(image: np.ndarray) -> tuple[float, ...]:
    """The median of the crop's outer pixels, per channel: the paper (or the black of an inverted crop)."""
    edge = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).reshape(
        -1, 1 if image.ndim == 2 else image.shape[2]
    )
    return tuple(float(v) for v in np.median(edge, axis=0))


def _stroke_width(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Erosion or dilation by a 2x2 kernel: one thickens the ink and the other thins it, whatever its polarity."""
    choice = rng.integers(0, 3)
    if choice == 0:
        return image
    kernel = np.ones((2, 2), np.uint8)
    return cv2.erode(image, kernel) if choice == 1 else cv2.dilate(image, kernel)


def create_augment(modality: str, rng: np.random.Generator, strength: float = 1.0) -> Augment:
    """An augmentation ``crop uint8 [H, W] or [H, W, 3] -> same shape`` drawing from `rng`.

    Args:
        modality: "face" or "signature".
        rng: the generator (seeded by the trainer, per rank) that makes runs reproducible.
        strength: scales every random range; 0 returns the crop unchanged.
    """
    if strength < 0:
        raise ConfigError(f"augmentation strength must be >= 0, got {strength}")
    if modality == "face":

        def face(image: np.ndarray) -> np.ndarray:
            image = _flip(image, rng)
            image = _random_crop(image, rng, strength) if strength > 0 else image
            return _colour_jitter(image, rng, strength)

        return face
    if modality == "signature":

        def signature(image: np.ndarray) -> np.ndarray:
            if strength == 0:
                return image
            return _stroke_width(_affine(image, rng, strength), rng)

        return signature
    raise ConfigError(f"no augmentation for modality {modality!r}; use face or signature")
