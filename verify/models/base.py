"""The interface every loaded model offers: preprocessing, batched embedding, its card and fingerprint.

Scores everywhere in the project are cosine similarities of L2-normalised embeddings (larger = more alike),
so that a FAISS inner-product index, the thresholds in model cards and the CLI all speak the same unit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from verify.models.model_card import ModelCard
from verify.models.registry import get_preprocessor
from verify.preprocess.crop import Crop


def unit_rows(x: np.ndarray) -> np.ndarray:
    """[N, D] -> float32 [N, D] with each row scaled to unit L2 norm (an all-zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def card_preprocessor(card: Mapping[str, Any], default_kind: str) -> Callable[[np.ndarray], Crop]:
    """The preprocessor a card's "preprocessing" section names (`default_kind` when it names none), returning
    a `Crop` whatever the registered preprocessor returns."""
    pre = card.get("preprocessing") or {"kind": default_kind}
    run = get_preprocessor(str(pre.get("kind", default_kind)))(card)

    def preprocess(image: np.ndarray) -> Crop:
        out = run(image)
        return out if isinstance(out, Crop) else Crop(np.asarray(out))

    return preprocess


class Embedder(ABC):
    """A loaded model: card + preprocessing + network. Built by `verify.load_model`."""

    card: ModelCard
    directory: Path | None = None  # the model directory it was loaded from (extra files: OOD scorer, ...)

    @property
    def modality(self) -> str:
        """'face' or 'signature'."""
        return str(self.card["modality"])

    @property
    def dim(self) -> int:
        return int(self.card["architecture"]["dim"])

    @property
    def fingerprint(self) -> str:
        """A short hash naming the exact weights; galleries store it to refuse other models."""
        return str(self.card["fingerprint"])

    @property
    def threshold(self) -> float | None:
        """The calibrated similarity threshold of the card, if any."""
        cal = self.card.get("calibration") or {}
        value = cal.get("threshold")
        return None if value is None else float(value)

    @abstractmethod
    def preprocess(self, image: np.ndarray) -> Crop:
        """Turn a decoded image (uint8 [H, W] or [H, W, 3] RGB) into a crop; may raise NoFaceError."""

    @abstractmethod
    def embed_crops(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Embed preprocessed crops. Returns float32 [N, D], rows L2-normalised."""

    def embed(self, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Preprocess then embed decoded images. Returns float32 [N, D]."""
        crops = [self.preprocess(im).image for im in images]
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_crops(crops, batch_size=batch_size)
