"""Score fusion as a model: a learned embedder and a classical descriptor seen as one embedder.

A fused model directory holds its component models in sub-directories and a card whose architecture kind is
"fused" and lists them with weights w_i (summing to 1). Its embedding is the concatenation of
``sqrt(w_i) * e_i`` of the components' unit embeddings ``e_i``, itself of unit length, so that the cosine of two
fused embeddings is the weighted mean of the components' cosines:

    cos(f(a), f(b)) = sum_i w_i cos(e_i(a), e_i(b))

and a fused model works wherever a model does (match, batch, eval, a FAISS inner-product gallery). All
components must share one input size and one preprocessing, so one crop feeds them all; the OOD gate reads the
backbone features of the first component that has them.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import ModelError, ModelMismatchError
from verify.models.base import Crop, Embedder, unit_rows
from verify.models.model_card import ModelCard

KIND = "fused"


def _shared(card: Mapping[str, Any]) -> str:
    """What components must agree on so that one crop feeds them all: modality, crop size, preprocessing."""
    inp = card.get("input") or {}
    spec = [card.get("modality"), inp.get("height"), inp.get("width"), card.get("preprocessing")]
    return json.dumps(spec, sort_keys=True)


def fused_fingerprint(components: Sequence[tuple[str, float]]) -> str:
    """16 hex digits naming the components' fingerprints and weights."""
    spec = [[fp, round(float(w), 6)] for fp, w in components]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def fuse_embeddings(embs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Component embeddings (unit rows [N, D_i]) -> float32 [N, sum D_i], the rows `sqrt(w_i) * e_i` concatenated
    (unit again): the inner product of two fused rows is the weighted mean of the components' cosines."""
    return unit_rows(np.concatenate([math.sqrt(w) * e for w, e in zip(weights, embs, strict=True)], axis=1))


def check_components(parts: Sequence[Embedder], weights: Sequence[float]) -> None:
    """Refuse components that cannot be fused: fewer than two, weights not summing to 1, or components that do
    not share modality, crop size and preprocessing (one crop must feed them all).

    Raises:
        ModelError: naming what differs.
    """
    if len(parts) < 2 or len(parts) != len(weights):
        raise ModelError(f"a fused model needs >= 2 components with one weight each, got {len(parts)}")
    if any(w < 0 for w in weights) or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
        raise ModelError(f"fused weights must be >= 0 and sum to 1, got {list(weights)}")
    if len({_shared(p.card) for p in parts}) != 1:
        raise ModelError("fused components must share modality, input height/width and preprocessing; they differ")


class FusedEmbedder(Embedder):
    """Weighted concatenation of component embedders that share one preprocessing.

    Args:
        card: the fused model's card.
        parts: the loaded component models, in the card's order.
        weights: one weight per component, >= 0, summing to 1.
    """

    def __init__(self, card: Mapping[str, Any], parts: Sequence[Embedder], weights: Sequence[float]) -> None:
        check_components(parts, weights)
        self.card = ModelCard.coerce(card)
        self.parts = list(parts)
        self.weights = [float(w) for w in weights]

    def preprocess(self, image: np.ndarray) -> Crop:
        return self.parts[0].preprocess(image)

    def embed_crops(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Crops -> float32 [N, sum D_i], unit rows."""
        return self._join([p.embed_crops(crops, batch_size=batch_size) for p in self.parts])

    def embed_crops_with_features(
        self, crops: Sequence[np.ndarray], batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fused embeddings [N, D] and the backbone features [N, F] of the first component that has them."""
        embs: list[np.ndarray] = []
        feats: np.ndarray | None = None
        for part in self.parts:
            if feats is None and hasattr(part, "embed_crops_with_features"):
                emb, feats = part.embed_crops_with_features(crops, batch_size=batch_size)
                embs.append(emb)
            else:
                embs.append(part.embed_crops(crops, batch_size=batch_size))
        if feats is None:
            raise ModelError(f"fused model {self.card.get('name')!r}: no component has backbone features")
        return self._join(embs), feats

    def _join(self, embs: Sequence[np.ndarray]) -> np.ndarray:
        return fuse_embeddings(embs, self.weights)


def load_fused(card: dict[str, Any], directory: Path) -> Embedder:
    """The "fused" loader: load every component from its sub-directory and check the card against them.

    Raises:
        ModelError: a missing component, components that do not share input and preprocessing, bad weights.
        ModelMismatchError: a card whose fingerprint does not name these components and weights.
    """
    from verify.models.loading import load_model

    arch = dict(card.get("architecture") or {})
    specs = list(arch.get("components") or [])
    parts: list[Embedder] = []
    for spec in specs:
        sub = (directory / str(spec.get("path", ""))).resolve()
        if directory.resolve() not in sub.parents:
            raise ModelError(f"fused model {card.get('name')!r}: component path {spec.get('path')!r} leaves the model")
        parts.append(load_model(sub))
    weights = [float(s.get("weight", 0.0)) for s in specs]
    model = FusedEmbedder(card, parts, weights)
    found = fused_fingerprint([(p.fingerprint, w) for p, w in zip(parts, weights, strict=True)])
    if str(card.get("fingerprint", found)) != found:
        raise ModelMismatchError(
            f"fused model {card.get('name')!r}: its components hash to {found} but its card says "
            f"{card.get('fingerprint')}; a component was replaced after the card was written"
        )
    dim = sum(p.dim for p in parts)
    if int(arch.get("dim", -1)) != dim:
        raise ModelError(f"fused model {card.get('name')!r}: architecture.dim must be {dim}, got {arch.get('dim')}")
    card["fingerprint"] = found
    return model


def create_fused_model(
    dest: Path | str,
    components: Sequence[tuple[str, Path | str, float]],
    name: str,
    **extra: Any,
) -> Path:
    """Copy component model directories into `dest/<sub>` and write the fused card beside them.

    Args:
        dest: the new model directory (replaced if it exists).
        components: (sub-directory name, source model directory, weight) per component.
        name: the fused model's name.
        extra: more card sections (provenance, ...).
    """
    from verify.models.card import new_card, write_card
    from verify.models.loading import load_model

    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for sub, src, _ in components:
        shutil.copytree(Path(src), dest / sub, ignore=shutil.ignore_patterns("report", "*.tmp"))
    parts = [load_model(dest / sub) for sub, _, _ in components]
    weights = [float(w) for _, _, w in components]
    check_components(parts, weights)
    first = parts[0].card
    arch = {
        "kind": KIND,
        "dim": sum(p.dim for p in parts),
        "components": [
            {"path": sub, "weight": w, "name": p.card.get("name"), "fingerprint": p.fingerprint}
            for (sub, _, w), p in zip(components, parts, strict=True)
        ],
    }
    card = new_card(name, str(first["modality"]), arch, dict(first["input"]), dict(first["preprocessing"]), **extra)
    card["fingerprint"] = fused_fingerprint([(p.fingerprint, w) for p, w in zip(parts, weights, strict=True)])
    write_card(dest, card)
    return dest
