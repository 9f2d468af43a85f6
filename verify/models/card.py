"""Model files: `model.safetensors` (weights, with the card in its header) + `model.json` (the card).

The card (`verify.models.model_card.ModelCard`) holds everything needed to rebuild and use the model with no
other argument: architecture, input size and normalisation, preprocessing, training config, data fingerprint,
metrics, calibrated threshold. Loading checks the weights against the card (hash, then names and shapes) and
refuses a mismatch. No pickle anywhere.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from verify.errors import ConfigError, ModelError
from verify.fsutil import atomic_path, atomic_write_bytes  # atomic_write_bytes: callers import it from here too
from verify.jsonutil import json_default
from verify.models.model_card import CARD_FORMAT, CARD_VERSION, ModelCard, card_to_dict

CARD_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
_DTYPES = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}


def new_card(
    name: str,
    modality: str,
    architecture: dict[str, Any],
    input: dict[str, Any],
    preprocessing: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """A card with the required sections; `extra` adds training, data, metrics, calibration, ..."""
    for key in ("height", "width", "channels"):
        if key not in input:
            raise ModelError(f"card input section needs {key!r}")
    card = {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "name": name,
        "modality": modality,
        "architecture": dict(architecture),
        "input": {"mean": [0.5] * int(input["channels"]), "std": [0.5] * int(input["channels"]), **input},
        "preprocessing": dict(preprocessing),
    }
    card.update(extra)
    ModelCard.from_dict(card, source=f"card {name!r}")  # refuses a bad modality or input size now
    return card


def weights_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """16 hex digits naming the weights themselves (names, dtypes, shapes, values), not the file around them:
    re-calibrating a model or editing its card keeps its fingerprint, so galleries built with it stay valid."""
    digest = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_card(directory: Path, card: Mapping[str, Any]) -> Path:
    """Write `card` (a `ModelCard` or a plain dict) as `model.json` in `directory`, atomically."""
    path = Path(directory) / CARD_FILE
    atomic_write_bytes(path, (json.dumps(card_to_dict(card), indent=2, default=json_default) + "\n").encode())
    return path


def write_calibrated_card(model: Any, section: dict[str, Any], out: Path) -> Path:
    """Write OUT/model.json: the model's card with card["calibration"] = section, plus its weights beside it.

    The weights file is hard-linked (copied across file systems) so that OUT loads with `verify.load_model`;
    the input model is never written to.
    """
    out = Path(out)
    src_dir = Path(getattr(model, "directory", "") or "")
    if src_dir and src_dir.resolve() == out.resolve():
        raise ConfigError(f"{out} is the model's own folder; choose another folder (the input stays untouched)")
    card = copy.deepcopy(model.card)
    card["calibration"] = section
    weights = (card.get("weights") or {}).get("file")
    if weights and src_dir and (src_dir / weights).is_file() and not (out / weights).exists():
        try:
            os.link(src_dir / weights, out / weights)
        except OSError:
            shutil.copy2(src_dir / weights, out / weights)
    return write_card(out, card)


def _header_card(card: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in card.items() if k not in ("weights", "fingerprint")}


def save_model(directory: Path | str, net: nn.Module, card: dict[str, Any], dtype: str = "float32") -> Path:
    """Write `model.safetensors` and `model.json` into `directory` atomically; fills the card's
    "weights" and "fingerprint" fields (in place) and returns the directory."""
    if dtype not in _DTYPES:
        raise ModelError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().to("cpu", _DTYPES[dtype]) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in net.state_dict().items()
    }
    meta = {"card": json.dumps(_header_card(card), default=json_default)}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata=meta)
    card["weights"] = {"file": WEIGHTS_FILE, "sha256": file_sha256(directory / WEIGHTS_FILE), "dtype": dtype}
    card["fingerprint"] = weights_fingerprint(state)
    write_card(directory, card)
    return directory


def model_dir(path: Path | str) -> Path:
    """The model directory for a directory, a model.json or a model.safetensors path."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model (expected a directory with {CARD_FILE} and {WEIGHTS_FILE})")
    return path if path.is_dir() else path.parent


def read_card(path: Path | str) -> ModelCard:
    """Read a card from a model directory, its model.json, or the header of its model.safetensors.

    Raises:
        ModelError: no card, not a card, a newer version, or a field that fails validation.
    """
    directory = model_dir(path)
    card_path = directory / CARD_FILE
    if card_path.is_file():
        try:
            card = json.loads(card_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{card_path}: not a valid JSON model card ({exc})") from exc
    elif (directory / WEIGHTS_FILE).is_file():
        card = _card_from_header(directory / WEIGHTS_FILE)
    else:
        raise ModelError(f"{directory}: no {CARD_FILE} or {WEIGHTS_FILE} found")
    return ModelCard.from_dict(card, source=str(card_path))


def _card_from_header(weights: Path) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{weights}: unreadable weights file ({exc})") from exc
    if "card" not in meta:
        raise ModelError(f"{weights}: carries no model card and there is no {CARD_FILE} beside it")
    card = json.loads(meta["card"])
    card["weights"] = {"file": weights.name, "sha256": file_sha256(weights)}
    card["fingerprint"] = weights_fingerprint(load_file(str(weights)))
    return card


def load_state(path: Path | str, card: Mapping[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """The weights of a model directory as float32 tensors, after checking them against the card's hash."""
    directory = model_dir(path)
    card = card if card is not None else read_card(directory)
    weights = directory / str((card.get("weights") or {}).get("file", WEIGHTS_FILE))
    if not weights.is_file():
        raise ModelError(f"{weights}: weights file missing")
    expected = (card.get("weights") or {}).get("sha256")
    if expected and file_sha256(weights) != expected:
        raise ModelError(
            f"{weights}: weights do not match the card in {directory / CARD_FILE} (sha256 differs); "
            "the files come from different models: copy both files of one model together"
        )
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{weights}: unreadable weights file ({exc})") from exc
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


# Model kinds with no torch network of their own, and what to do instead.
NO_NETWORK = {
    "classical-hog": "it is a fixed feature; train a learned model instead",
    "fused": "use its learned component (a subfolder: the card's architecture.components), then `verify fuse` again",
}


def load_network(path: Path | str) -> tuple[nn.Module, ModelCard]:
    """Rebuild the exact torch network of a model directory from its card, with its weights loaded."""
    from verify.models.registry import get_architecture

    card = read_card(path)
    arch = card.get("architecture") or {}
    kind = str(arch.get("kind", "timm"))
    if kind in NO_NETWORK:
        raise ModelError(
            f"{model_dir(path)}: a {kind} model has no network to fine-tune or distil ({NO_NETWORK[kind]})"
        )
    net = get_architecture(kind)(arch)
    state = load_state(path, card)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise ModelError(
            f"{model_dir(path)}: the weights do not fit the architecture in the card "
            f"({arch.get('kind')}/{arch.get('backbone', '')}, dim {arch.get('dim')}): {first}"
        ) from exc
    net.eval()
    return net, card
