"""`OnnxEmbedder`: a model exported by `verify.export.export_onnx`, run by onnxruntime behind `Embedder`.

The model card travels inside the ONNX file's ``metadata_props`` (key ``siamese_verify_card``) and beside it
(``FILE.onnx.json``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import ModelError
from verify.models.base import Embedder, card_preprocessor, unit_rows
from verify.models.model_card import ModelCard
from verify.preprocess.crop import Crop

CARD_KEY = "siamese_verify_card"


def card_path_for(onnx_path: str | Path) -> Path:
    """The card written beside an exported file: ``FILE.onnx`` -> ``FILE.onnx.json``."""
    return Path(f"{onnx_path}.json")


def _session(path: str | Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def read_onnx_card(path: str | Path) -> ModelCard:
    """The card stored in an exported file's metadata (else in ``FILE.onnx.json``)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError / ValueError variants
        raise ModelError(f"{path}: not a readable ONNX file ({exc})") from exc
    for entry in model.metadata_props:
        if entry.key == CARD_KEY:
            return ModelCard.from_dict(json.loads(entry.value), source=str(path))
    beside = card_path_for(path)
    if beside.is_file():
        return ModelCard.from_dict(json.loads(beside.read_text()), source=str(beside))
    raise ModelError(f"{path}: no siamese-verify card in its metadata and no {beside.name} beside it")


class OnnxEmbedder(Embedder):
    """An exported model run by onnxruntime (CPU) behind the `Embedder` interface.

    Args:
        path: the .onnx file written by `export_onnx`.
        threads: onnxruntime intra-op threads (None: onnxruntime's default, all cores).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        self.card = read_onnx_card(self.path)
        self.session = _session(self.path, threads)
        self.directory = self.path.parent
        self._preprocess = card_preprocessor(self.card, "resize")

    def preprocess(self, image: np.ndarray) -> Crop:
        return self._preprocess(image)

    def embed_crops(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        from verify.models.runtime import crops_to_tensor

        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(crops), batch_size):
            x = crops_to_tensor(crops[start : start + batch_size], self.card).numpy()
            out.append(self.session.run(None, {"input": x})[0])
        return unit_rows(np.concatenate(out))


def load_onnx_model(path: str | Path, threads: int | None = None) -> OnnxEmbedder:
    """An `OnnxEmbedder` for an exported .onnx file."""
    return OnnxEmbedder(path, threads)
