"""The bundled default models under `assets/models/`, one per modality."""

from __future__ import annotations

import os
from pathlib import Path

from verify.errors import ModelError

# Preference order per modality: the first directory that exists is the default.
_DEFAULTS = {
    "face": ("face-resnet", "face-dlib-native"),
    "signature": ("signature-student", "signature-teacher"),
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


def resolve_model_path(model: str | os.PathLike[str] | None, modality: str) -> Path:
    """`model` when given, else the default of `modality` ('auto' means signature, the batch workload)."""
    if model:
        return Path(model)
    return default_model_path("signature" if modality in ("auto", None) else modality)
