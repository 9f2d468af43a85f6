"""What the app's service loads and shows: model directories, the per-process shared `Verifier`s, and how
thumbnails and crops become displayable arrays."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import cv2
import numpy as np

from verify.errors import ConfigError, ModelError
from verify.verifier import Verifier

log = logging.getLogger(__name__)

MODALITIES = ("face", "signature")
MAX_IMAGE_BYTES = 20 * 2**20
NO_SIGNATURE_MODEL = "no signature model installed: run `make models` (or start the app with --signature-model DIR)"
NO_FACE_MODEL = "no face model installed: run `make models` (or start the app with --face-model DIR)"


_SHARED_LOCK = threading.Lock()
_SHARED: dict[Path, tuple[Verifier, threading.RLock]] = {}


def shared_verifier(path: Path) -> tuple[Verifier, threading.RLock]:
    """One `Verifier` per model directory per process (services and tests share it), with the lock that
    serialises its use."""
    key = Path(path).resolve()
    with _SHARED_LOCK:
        if key not in _SHARED:
            log.info("loading the model in %s", key)
            _SHARED[key] = (Verifier.from_path(key), threading.RLock())
        return _SHARED[key]


def model_path(given: str | Path | None, modality: str) -> tuple[Path | None, str]:
    """(path, "") for a usable model directory, else (None, why not)."""
    from verify.models.defaults import default_model_path

    if given:
        path = Path(given)
        if not (path / "model.json").is_file():
            raise ConfigError(f"{path}: not a model directory (no model.json)")
        return path, ""
    try:
        return default_model_path(modality), ""
    except ModelError:
        return None, NO_SIGNATURE_MODEL if modality == "signature" else NO_FACE_MODEL


def decode_png(data: bytes | None) -> np.ndarray | None:
    """RGB uint8 [H, W, 3] from PNG bytes (thumbnails), or None."""
    if not data:
        return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def display_crop(crop: np.ndarray | None, modality: str) -> np.ndarray | None:
    """The compared crop as a user sees it: faces as RGB, signatures as dark ink on white."""
    if crop is None:
        return None
    if modality == "signature":
        from verify.preprocess.signature import to_display

        return to_display(crop)
    return np.asarray(crop)
