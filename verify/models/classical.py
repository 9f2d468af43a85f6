"""Classical signature baseline: the card's signature preprocessing, then HOG, then an L2-normalised vector.

No training and no weights: the card's "architecture" section holds the whole feature definition
(kind "classical-hog"), and the model's fingerprint is a hash of that definition plus the input size and the
preprocessing, so that galleries refuse vectors made with other settings. Scores are cosine similarities
like every other model's.

The HOG follows scikit-image's `skimage.feature.hog` (central-difference gradients, unsigned orientations
hard-binned per cell, the mean magnitude per bin, L2-Hys block normalisation) computed for a whole batch at
once in numpy; tests check it against scikit-image.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import ConfigError, InvalidImageError, ModelError, ModelMismatchError
from verify.models.base import Crop, Embedder, card_preprocessor, unit_rows
from verify.models.model_card import ModelCard

KIND = "classical-hog"
_EPS = 1e-5


@dataclass(frozen=True)
class HogParams:
    """The feature: a card's "architecture" section sets any of these (plus "kind" and "dim")."""

    orientations: int = 9  # unsigned orientation bins over 0-180 degrees
    cell: int = 12  # cell side in pixels
    block: int = 2  # cells per block side (blocks overlap by one cell)
    power: float = 1.0  # each component ** power before the final L2 norm (0.5: Hellinger-like); 1: plain HOG

    def __post_init__(self) -> None:
        if self.orientations < 2 or self.cell < 2 or self.block < 1 or not 0 < self.power <= 1:
            raise ConfigError(f"invalid HOG parameters: {self}")

    def dim(self, height: int, width: int) -> int:
        """Feature length D for a [height, width] crop."""
        rows, cols = height // self.cell - self.block + 1, width // self.cell - self.block + 1
        if rows < 1 or cols < 1:
            raise ConfigError(
                f"a {height}x{width} input is too small for HOG blocks of {self.block}x{self.block} cells of "
                f"{self.cell} px"
            )
        return rows * cols * self.block * self.block * self.orientations


def hog_params(arch: dict[str, Any]) -> HogParams:
    """The `HogParams` of a card's architecture section; unknown keys are an error."""
    extra = {k: v for k, v in arch.items() if k not in ("kind", "dim")}
    known = {f.name for f in fields(HogParams)}
    unknown = sorted(set(extra) - known)
    if unknown:
        raise ConfigError(f"unknown {KIND} architecture fields {unknown}; known: {sorted(known)}")
    try:
        return HogParams(**extra)
    except TypeError as exc:
        raise ConfigError(f"invalid {KIND} architecture section: {exc}") from exc


def hog_features(images: np.ndarray, params: HogParams) -> np.ndarray:
    """HOG of a batch, as `skimage.feature.hog(img, orientations, (cell, cell), (block, block), "L2-Hys")`.

    Args:
        images: [N, H, W] grey images (any real dtype; uint8 crops are used as 0-255 values).

    Returns:
        float64 [N, D] block-normalised descriptors (not yet L2-normalised as a whole).
    """
    x = np.asarray(images, np.float64)
    if x.ndim != 3:
        raise InvalidImageError(f"HOG needs a batch [N, H, W] of grey images, got shape {x.shape}")
    n, c, b, bins = x.shape[0], params.cell, params.block, params.orientations
    g_row, g_col = np.zeros_like(x), np.zeros_like(x)
    g_row[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    g_col[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    rows, cols = x.shape[1] // c, x.shape[2] // c
    mag = np.hypot(g_col, g_row)[:, : rows * c, : cols * c]
    angle = (np.rad2deg(np.arctan2(g_row, g_col)) % 180)[:, : rows * c, : cols * c]
    index = np.minimum((angle / (180.0 / bins)).astype(np.int64), bins - 1)
    cells = np.arange(rows * c)[:, None] // c * cols + np.arange(cols * c)[None, :] // c  # [rows*c, cols*c]
    flat = (np.arange(n)[:, None, None] * rows * cols + cells[None]) * bins + index
    sums = np.bincount(flat.ravel(), weights=mag.ravel(), minlength=n * rows * cols * bins)
    hist = sums.reshape(n, rows, cols, bins) / (c * c)
    br, bc = rows - b + 1, cols - b + 1
    blocks = np.stack(
        [hist[:, i : i + br, j : j + bc, :] for i in range(b) for j in range(b)], axis=3
    )  # [N, br, bc, b*b, bins], cells in row-major order inside a block, as scikit-image
    blocks = blocks / np.sqrt((blocks**2).sum(axis=(3, 4), keepdims=True) + _EPS**2)
    blocks = np.minimum(blocks, 0.2)
    blocks = blocks / np.sqrt((blocks**2).sum(axis=(3, 4), keepdims=True) + _EPS**2)
    return blocks.reshape(n, -1)


def feature_fingerprint(card: Mapping[str, Any]) -> str:
    """16 hex digits naming the feature: architecture, input size and preprocessing of the card."""
    spec = {k: card.get(k) for k in ("architecture", "input", "preprocessing")}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class HogEmbedder(Embedder):
    """Signature preprocessing (the card's, e.g. "signature") + HOG + L2 normalisation; no weights.

    Args:
        card: a model card whose architecture kind is "classical-hog".
    """

    def __init__(self, card: Mapping[str, Any]) -> None:
        self.card = ModelCard.coerce(card)
        self.params = hog_params(dict(card.get("architecture") or {}))
        inp = card.get("input") or {}
        self.height, self.width = int(inp.get("height", 0)), int(inp.get("width", 0))
        self._preprocess = card_preprocessor(card, "signature")

    def preprocess(self, image: np.ndarray) -> Crop:
        return self._preprocess(image)

    def embed_crops(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Crops uint8 [H, W] (or [H, W, 3], averaged to grey) at the card's size -> float32 [N, D], unit rows."""
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(crops), max(1, batch_size)):
            batch = np.stack([self._grey(c) for c in crops[start : start + batch_size]])
            feats = hog_features(batch, self.params)
            if self.params.power != 1.0:
                feats = feats**self.params.power
            out.append(feats)
        return unit_rows(np.concatenate(out))

    def _grey(self, crop: np.ndarray) -> np.ndarray:
        arr = np.asarray(crop)
        if arr.ndim == 3:
            arr = arr[..., :3].mean(axis=-1)
        if arr.shape != (self.height, self.width):
            raise InvalidImageError(
                f"{KIND} needs crops of {self.height}x{self.width} from its preprocess(), got shape {arr.shape}"
            )
        return arr


def load_classical_hog(card: Mapping[str, Any], directory: Path) -> Embedder:
    """The "classical-hog" loader: check the card (dim, fingerprint) and build the embedder.

    Raises:
        ModelError: a card whose dim does not match its own HOG settings.
        ModelMismatchError: a card whose feature settings were edited after its fingerprint was written
            (galleries made with it would mix vectors of different features).
    """
    hog_params(dict(card.get("architecture") or {}))  # unknown or invalid settings: ConfigError first
    found = feature_fingerprint(card)
    if "fingerprint" in card and str(card["fingerprint"]) != found:
        raise ModelMismatchError(
            f"{directory}: the card's feature settings hash to {found} but its fingerprint says "
            f"{card['fingerprint']}; the card was edited: write it with verify.models.classical.new_hog_card"
        )
    model = HogEmbedder(card)
    expected = model.params.dim(model.height, model.width)
    if int((card.get("architecture") or {}).get("dim", -1)) != expected:
        raise ModelError(
            f"card {card.get('name')!r}: architecture.dim must be {expected} for a {model.height}x{model.width} "
            f"input and these HOG settings, got {(card.get('architecture') or {}).get('dim')}"
        )
    model.card.setdefault("fingerprint", found)
    return model


def new_hog_card(
    name: str,
    height: int = 96,
    width: int = 192,
    params: HogParams | None = None,
    preprocessing: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A complete "classical-hog" card (dim and fingerprint filled in); `extra` adds calibration, provenance..."""
    from verify.models.card import new_card

    params = params or HogParams()
    arch = {"kind": KIND, "dim": params.dim(height, width), **{f.name: getattr(params, f.name) for f in fields(params)}}
    card = new_card(
        name,
        "signature",
        arch,
        {"height": height, "width": width, "channels": 1, "mean": [0.0], "std": [1.0]},
        preprocessing or {"kind": "signature"},
        **extra,
    )
    card["fingerprint"] = feature_fingerprint(card)
    return card
