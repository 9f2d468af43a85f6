"""`load_model(path)`: a model directory -> a ready `Embedder`, with nothing guessed and nothing unverified.

Every file a card names is checked before use: the weights against `weights.sha256` (required: a card without it
is refused), the OOD scorer against `ood.sha256`. The fingerprint that galleries compare is recomputed from the
loaded tensors, never taken from the card, and weights holding NaN or infinity are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from verify.errors import ModelError
from verify.models.base import Embedder
from verify.models.card import CARD_FILE, file_sha256, load_network, model_dir, read_card, weights_fingerprint
from verify.models.registry import get_loader

_DTYPES = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}


def load_model(path: Path | str, device: str | None = None) -> Embedder:
    """Load a model directory (or its model.json / model.safetensors, or an exported .onnx file) as an `Embedder`.

    Raises:
        ModelError: missing files, an invalid card, a card without a weights hash, weights or an OOD scorer that
            do not match the card, weights with NaN or infinite values.
    """
    if str(path).endswith(".onnx"):
        from verify.models.onnx import load_onnx_model

        return load_onnx_model(path)
    card = read_card(path)
    directory = model_dir(path)
    check_ood_file(card, directory)
    loader = get_loader(str((card.get("architecture") or {}).get("kind", "timm")))
    if loader is not None:
        model = loader(card, directory)
    else:
        from verify.models.runtime import TorchEmbedder

        require_weights_hash(card, directory)
        net, card = load_network(path)
        card["fingerprint"] = checked_fingerprint(net, card, directory)
        model = TorchEmbedder(card, net, device=device)  # type: ignore[arg-type]  # ModelCard is a Mapping
    model.directory = directory
    return model


def require_weights_hash(card: Any, directory: Path) -> None:
    """Refuse a model.json without `weights.sha256`: its weights could not be told from tampered ones."""
    if not (directory / CARD_FILE).is_file():
        return  # the card comes from the weights file's own header; the fingerprint is computed from the tensors
    sha = (card.get("weights") or {}).get("sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise ModelError(
            f"{directory / CARD_FILE}: the card has no weights.sha256, so its weights cannot be verified; use the"
            " model as it was saved (save_model writes the hash) or restore its model.json"
        )


def checked_fingerprint(net: nn.Module, card: Any, directory: Path) -> str:
    """The fingerprint of the loaded tensors (in the dtype they were saved in); refuses NaN/inf weights and a
    card whose recorded fingerprint names other weights. Older cards name the weights file instead (the first 16
    hex digits of its sha256, checked by `load_network`): such a fingerprint is kept, so their galleries open."""
    dtype = _DTYPES.get(str((card.get("weights") or {}).get("dtype", "float32")), torch.float32)
    state = {}
    for name, t in net.state_dict().items():
        if t.is_floating_point():
            if not bool(torch.isfinite(t).all()):
                raise ModelError(
                    f"{directory}: weight tensor {name!r} holds NaN or infinite values; the model is damaged"
                )
            t = t.to(dtype)
        state[name] = t
    found = weights_fingerprint(state)
    recorded = card.get("fingerprint")
    file_sha = str((card.get("weights") or {}).get("sha256", ""))
    if recorded is not None and file_sha and str(recorded) == file_sha[:16]:
        return str(recorded)
    if recorded is not None and str(recorded) != found:
        raise ModelError(
            f"{directory}: the card's fingerprint {recorded} does not name these weights ({found}); the card and the"
            " weights come from different models"
        )
    return found


def check_ood_file(card: Any, directory: Path) -> None:
    """Check the OOD scorer the card names against its `ood.sha256` (required when the card names a file)."""
    section = card.get("ood") or {}
    if not section.get("file"):
        return
    path = directory / str(section["file"])
    if not path.is_file():
        raise ModelError(f"{path}: the OOD scorer named in the model card is missing")
    sha = section.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise ModelError(
            f"{directory / CARD_FILE}: the card names an OOD scorer but no ood.sha256, so it cannot be verified;"
            " refit it with `verify ood fit` (which records the hash)"
        )
    if file_sha256(path) != sha:
        raise ModelError(f"{path}: does not match ood.sha256 in the card; the OOD scorer was changed or damaged")
