"""Running a torch network as an `Embedder`: crops -> normalised tensors -> batched embeddings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn

from verify.models.base import Embedder, card_preprocessor, unit_rows
from verify.models.model_card import ModelCard
from verify.preprocess.crop import Crop

if TYPE_CHECKING:
    from verify.models.network import EmbeddingNetwork


def _to_channels(crop: np.ndarray, channels: int) -> np.ndarray:
    """[H, W] or [H, W, C] -> [H, W, channels] (gray <-> RGB by mean or repetition)."""
    if crop.ndim == 2:
        crop = crop[..., None]
    if crop.shape[-1] == channels:
        return crop
    if channels == 1:
        return crop[..., :3].mean(axis=-1, keepdims=True)
    return np.repeat(crop[..., :1], channels, axis=-1)


def crops_to_tensor(crops: Sequence[np.ndarray], card: Mapping[str, Any]) -> torch.Tensor:
    """uint8 crops ([H, W] or [H, W, 3]) -> float [B, C, H, W], scaled to [0, 1] then (x - mean) / std."""
    inp = card["input"]
    channels = int(inp["channels"])
    arr = np.stack([_to_channels(np.asarray(c), channels) for c in crops])
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(0, 3, 1, 2) / 255.0
    mean = torch.tensor(inp.get("mean", [0.0] * channels), dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(inp.get("std", [1.0] * channels), dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean) / std


class TorchEmbedder(Embedder):
    """A torch network + the preprocessing its card names.

    Args:
        card: the model card.
        net: maps [B, C, H, W] to L2-normalised [B, D].
        device: "cpu", "cuda", ...; default: CUDA when available.
    """

    def __init__(self, card: Mapping[str, Any], net: nn.Module, device: str | None = None) -> None:
        self.card = ModelCard.coerce(card)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net = net.to(self.device).eval()
        self._preprocess = card_preprocessor(card, "resize")

    def preprocess(self, image: np.ndarray) -> Crop:
        return self._preprocess(image)

    @torch.inference_mode()
    def embed_crops(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(crops), batch_size):
            x = crops_to_tensor(crops[start : start + batch_size], self.card).to(self.device)
            out.append(self.net(x).float().cpu().numpy())
        return unit_rows(np.concatenate(out))

    @torch.inference_mode()
    def embed_crops_with_features(
        self, crops: Sequence[np.ndarray], batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings [N, D] and the backbone features they come from [N, F] (for the OOD gate), in one pass."""
        embs, feats = [], []
        for start in range(0, len(crops), batch_size):
            x = crops_to_tensor(crops[start : start + batch_size], self.card).to(self.device)
            net = cast("EmbeddingNetwork", self.net)
            f = net.features(x)
            embs.append(torch.nn.functional.normalize(net.project(f), dim=1).float().cpu().numpy())
            feats.append(f.float().cpu().numpy())
        return np.concatenate(embs), np.concatenate(feats)
