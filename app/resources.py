"""What the app's service loads and shows: model directories, the per-process shared `Verifier`s, and how
thumbnails and crops become displayable arrays."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from verify.decision import GateMode
from verify.errors import ConfigError, ModelError
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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def reliability(model_dir: Path | None, card: Mapping[str, Any], threshold: float | None) -> dict[str, Any] | None:
    """How far a signature model's answers can be trusted, as measured on its held-out test writers: read at run
    time from its report (`<model>/report/report.json`, else the card's `metrics.heldout_test`), so a new model
    brings its own figures. None when the model has no measured error rates.

    Returns:
        frr (genuine signatures rejected), far_skilled (skilled forgeries accepted), far_random (other writers'
        signatures accepted), writers (test writers), synthetic (bool), data (one line), threshold (the one the
        rates were measured at), applies (whether that is the threshold in use).
    """
    metrics = card.get("metrics") or {}
    report_name = str(metrics.get("report") or "report/report.md")
    report = None
    if model_dir is not None:
        report = _read_json((Path(model_dir) / report_name).with_suffix(".json")) or _read_json(
            Path(model_dir) / "report" / "report.json"
        )
    source = report or metrics.get("heldout_test") or {}
    errors = (source.get("signature") or {}).get("errors_at_threshold") or source.get("errors_at_threshold") or {}
    if not errors or errors.get("FRR") is None:
        return None
    data = source.get("data") or {}
    provenance = str((card.get("provenance") or {}).get("data", ""))
    measured_at = (source.get("threshold") or {}).get("value")
    return {
        "frr": float(errors["FRR"]),
        "far_skilled": None if errors.get("FAR_skilled") is None else float(errors["FAR_skilled"]),
        "far_random": None if errors.get("FAR_random") is None else float(errors["FAR_random"]),
        "writers": data.get("test_identities"),
        "synthetic": "synthetic" in provenance.lower() or "synth" in str(data.get("root", "")).lower(),
        "threshold": measured_at,
        "applies": measured_at is None or threshold is None or abs(float(measured_at) - float(threshold)) < 1e-6,
    }
