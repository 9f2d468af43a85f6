"""What the app's service loads and shows: model directories, the per-process shared `Verifier`s, and how
thumbnails and crops become displayable arrays."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from verify.decision import GateMode
from verify.errors import ConfigError, ModelError
from verify.eval.reliability import model_reliability
from verify.verifier import Verifier

log = logging.getLogger(__name__)

MODALITIES = ("face", "signature")
MAX_IMAGE_BYTES = 20 * 2**20
NO_SIGNATURE_MODEL = "no signature model installed: run `make models` (or start the app with --signature-model DIR)"
NO_FACE_MODEL = "no face model installed: run `make models` (or start the app with --face-model DIR)"


_SHARED_LOCK = threading.Lock()
_SHARED: dict[Path, tuple[Verifier, threading.RLock]] = {}
_TWINS: dict[tuple[Path, GateMode], Verifier] = {}


def shared_verifier(path: Path, gate_mode: GateMode = "reject") -> tuple[Verifier, threading.RLock]:
    """One `Verifier` per model directory per process (services and tests share it), with the lock that
    serialises its use. Another `gate_mode` gets a twin `Verifier` over the same loaded model, under the
    same lock."""
    key = Path(path).resolve()
    with _SHARED_LOCK:
        if key not in _SHARED:
            log.info("loading the model in %s", key)
            _SHARED[key] = (Verifier.from_path(key), threading.RLock())
        base, lock = _SHARED[key]
        if gate_mode == "reject":
            return base, lock
        if (key, gate_mode) not in _TWINS:
            _TWINS[key, gate_mode] = Verifier(base.model, gate_mode=gate_mode)
        return _TWINS[key, gate_mode], lock


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


def reliability(model_dir: Path | None, card: Mapping[str, Any], threshold: float | None) -> dict[str, Any] | None:
    """`verify.eval.reliability.model_reliability` as the dict the views read (frr, far_skilled, far_random,
    writers, synthetic, threshold, applies); None when the model has no measured error rates."""
    rel = model_reliability(model_dir, card, threshold)
    return None if rel is None else asdict(rel)
