"""`load_model(path)`: a model directory -> a ready `Embedder`, with nothing guessed."""

from __future__ import annotations

from pathlib import Path

from verify.models.base import Embedder
from verify.models.card import load_network, model_dir, read_card
from verify.models.registry import get_loader


def load_model(path: Path | str, device: str | None = None) -> Embedder:
    """Load a model directory (or its model.json / model.safetensors, or an exported .onnx file) as an `Embedder`.

    Raises:
        ModelError: missing files, an invalid card, or weights that do not match the card.
    """
    if str(path).endswith(".onnx"):
        from verify.models.onnx import load_onnx_model

        return load_onnx_model(path)
    card = read_card(path)
    loader = get_loader(str((card.get("architecture") or {}).get("kind", "timm")))
    if loader is not None:
        model = loader(card, model_dir(path))
    else:
        from verify.models.runtime import TorchEmbedder

        net, card = load_network(path)
        model = TorchEmbedder(card, net, device=device)
    model.directory = model_dir(path)
    return model
