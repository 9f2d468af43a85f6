"""The bundled default models under `assets/models/`, one per modality, and the one meaning of `auto`.

`resolve_model(model, modality, ...)` is how the CLI, the app and batch jobs pick a model. ``modality="auto"``
decides, in this order, from the first evidence at hand:

1. a named model (``model``): it is used as given, whatever its modality;
2. an evaluation protocol: signature datasets (cedar, gpds, mcyt, bhsig, manifest) -> signature, else face;
3. the models available: when only one modality has one, that modality;
4. an input image: a face detector finds a face -> face, else signature;
5. no evidence: ``default`` (signature for the CLI and batch jobs, the batch workload; the app's gallery views
   pass face).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from verify.data.protocols import is_signature_protocol
from verify.errors import ConfigError, ModelError
from verify.modality import MODALITIES, MODALITY_CHOICES, Modality

# Preference order per modality: the first directory that exists is the default.
_DEFAULTS = {
    "face": ("face-resnet", "face-dlib-native"),
    # fused learned + HOG first: the best of the bundled models on the independent evaluation set (BENCHMARKS.md)
    "signature": ("signature-teacher-hog", "signature-student-hog", "signature-student", "signature-teacher"),
}


def assets_dir() -> Path:
    """The assets folder: $VERIFY_ASSETS, else the repository's `assets/`."""
    env = os.environ.get("VERIFY_ASSETS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "assets"


def default_model_path(modality: str) -> Path:
    """The bundled model directory for 'face' or 'signature'."""
    if modality not in _DEFAULTS:
        raise ModelError(f"no default model for modality {modality!r}; name one with --model")
    for name in _DEFAULTS[modality]:
        path = assets_dir() / "models" / name
        if (path / "model.json").is_file():
            return path
    raise ModelError(
        f"no bundled {modality} model under {assets_dir() / 'models'} "
        f"(looked for {', '.join(_DEFAULTS[modality])}); run `make models` or pass --model"
    )


def bundled_model_of(fingerprint: str) -> tuple[str, str] | None:
    """(name, modality) of the bundled model with these weights, or None (a user's own model, or none)."""
    import json

    for card_path in sorted((assets_dir() / "models").glob("*/model.json")):
        try:
            card = json.loads(card_path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(card, dict) and card.get("fingerprint") == fingerprint:
            return card_path.parent.name, str(card.get("modality", ""))
    return None


def bundled_modalities() -> tuple[Modality, ...]:
    """The modalities that have a bundled model."""
    return tuple(
        m for m in MODALITIES if any((assets_dir() / "models" / n / "model.json").is_file() for n in _DEFAULTS[m])
    )


def resolve_modality(
    modality: str | None,
    *,
    image: Any = None,
    protocol: str | None = None,
    available: Iterable[str] | None = None,
    default: Modality = "signature",
) -> Modality:
    """'face' or 'signature': `modality` as given, or what "auto" (or None) means (see the module docstring).

    Args:
        image: an input (path, bytes or array) to guess from when nothing earlier decides.
        protocol: the evaluation protocol, when there is one.
        available: the modalities that have a model (default: those with a bundled model).
        default: the answer when there is no evidence at all.
    """
    name = (modality or "auto").lower()
    if name not in MODALITY_CHOICES:
        raise ConfigError(f"modality must be face, signature or auto, not {modality!r}")
    if name != "auto":
        return "face" if name == "face" else "signature"
    if protocol is not None:
        return "signature" if is_signature_protocol(protocol) else "face"
    present = [m for m in MODALITIES if m in set(bundled_modalities() if available is None else available)]
    if len(present) == 1:
        return present[0]
    if image is not None:
        from verify.modality import guess_modality

        return guess_modality(image)
    return default


def resolve_model(
    model: str | os.PathLike[str] | None,
    modality: str | None = "auto",
    *,
    image: Any = None,
    protocol: str | None = None,
    default: Modality = "signature",
) -> Path:
    """The model directory to use: `model` when given, else the bundled model of the resolved modality."""
    if model:
        return Path(model)
    return default_model_path(resolve_modality(modality, image=image, protocol=protocol, default=default))


def resolve_model_path(model: str | os.PathLike[str] | None, modality: str) -> Path:
    """`resolve_model` without evidence (kept for callers of the earlier name)."""
    return resolve_model(model, modality)
