"""The OOD gates a model card can name, behind one interface: `check(features, crops, what) -> (scores, reasons)`.

- `GaussianGate`: the class-conditional Gaussian score s(x) = max_c 2 log N(f(x); mu_c, Sigma_c) of
  `verify.ood.GaussianOODScorer` against the card's threshold (cards written before outlier exposure).
- `OutlierExposureGate` (Hendrycks et al. 2019, "Deep anomaly detection with outlier exposure"): the same
  in-distribution Gaussian score, plus one Gaussian per kind of known non-signature input (printed text, tables,
  stamps, ...) on the same features (a likelihood ratio), plus cheap ink statistics of the crop
  (`verify.ood_ink`), combined by a small softmax classifier (one hidden ReLU layer, or a multinomial logistic
  regression) over {signature, kind_1, ..., kind_K}, or by the mean of several such classifiers (seeds). The
  score is p(signature | x); the threshold keeps a chosen share of held-out signatures; a rejected input is
  named by its most likely kind ("looks like printed text") when that kind holds most of the non-signature
  probability (`NAME_KIND_SHARE`), else only said not to be a signature: on inputs unlike every kind it was
  fitted on (a real face photo through the signature gate), the classifier's favourite kind is often wrong.

Everything is stored in one safetensors file (tensors + JSON metadata; no pickle).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from verify.errors import ConfigError, ModelError, ModelMismatchError
from verify.fsutil import atomic_path
from verify.ood import GaussianOODScorer
from verify.ood_ink import ALL_FEATURES, INK_FEATURES, ink_statistics_batch

FORMAT = "outlier_exposure_gate"
_CLIP = 8.0
# A refused input is said to look like its most likely kind only when that kind holds at least this share of
# p(not a signature); below it the message names no kind (a wrong name misleads more than none).
NAME_KIND_SHARE = 0.8
KIND_WORDS = {
    "faces": "a face photo",
    "digits": "digits or a number",
    "natural": "a photo",
    "blank": "a blank page",
    "noise": "noise",
    "printed_text": "printed text",
    "ruled": "ruled lines, a box or a table",
    "shapes": "geometric shapes",
    "logos": "a logo or stamp",
}


@dataclass(frozen=True)
class GateRefusal:
    """Why a gate refused one input: the message a person reads and, when the gate names one, the kind of
    non-signature it takes the input for (a `KIND_WORDS` key such as "printed_text")."""

    message: str
    looks_like: str | None = None


def kind_words(kind: str) -> str:
    """An outlier kind in a person's words ("printed_text" -> "printed text", "natural" -> "a photo")."""
    return KIND_WORDS.get(kind, kind.replace("_", " "))


def gate_refusal(what: str, likeness: float, threshold: float, kind: str | None) -> GateRefusal:
    """The refusal of an input with signature likeness `likeness` below `threshold`: "not a signature: it
    looks like printed text (signature likeness 3%; ...)", or without a kind "not a signature (...)"."""
    figures = f"(signature likeness {likeness:.0%}; signatures are accepted from {threshold:.0%})"
    if kind is None:
        return GateRefusal(f"{what} {figures}")
    return GateRefusal(f"{what}: it looks like {kind_words(kind)} {figures}", looks_like=kind)


class OODGate(Protocol):
    """What the Verifier asks of a gate: scores [N] and, per input, None (accepted) or why it was refused."""

    @property
    def threshold(self) -> float | None: ...

    def check(
        self, features: np.ndarray, crops: Sequence[np.ndarray] | None, what: str
    ) -> tuple[np.ndarray, list[GateRefusal | None]]: ...


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class GaussianGate:
    """A `GaussianOODScorer` and its threshold, with the messages the Verifier has always given."""

    def __init__(self, scorer: GaussianOODScorer, threshold: float) -> None:
        self.scorer, self.threshold = scorer, float(threshold)

    def check(
        self, features: np.ndarray, crops: Sequence[np.ndarray] | None, what: str
    ) -> tuple[np.ndarray, list[GateRefusal | None]]:
        scores = np.asarray(self.scorer.score(np.asarray(features)), dtype=np.float64).ravel()
        t = self.threshold
        return scores, [GateRefusal(f"{what} (OOD score {s:.1f} < {t:.1f})") if s < t else None for s in scores]


class OutlierExposureGate:
    """In-distribution Gaussians + per-kind outlier Gaussians + ink statistics -> a small softmax classifier.

    Args:
        inlier: Gaussians of the in-distribution classes (writers) on the (projected) features.
        outlier: Gaussians of the outlier kinds (classes = kind names) on the same features.
        layers: (weight [in, out], bias [out]) of the classifier over the design matrix (`design`), ReLU between
            layers, softmax over the last one's K + 1 outputs (output 0 = signature). One layer = logistic
            regression.
        members: more classifiers of the same shape (other seeds); p(.) is the mean of all their softmaxes.
        centre, scale: [P] standardisation of the design matrix.
        projection: optional (mean [D], components [D, k]) applied to features before both Gaussians.
        threshold: the least p(signature) accepted.
        ink_features: the ink statistics (`verify.ood_ink.ALL_FEATURES` names) in the design matrix; gates fitted
            before the shape statistics existed name `INK_FEATURES` and keep reading just those.
    """

    def __init__(
        self,
        inlier: GaussianOODScorer,
        outlier: GaussianOODScorer,
        layers: list[tuple[np.ndarray, np.ndarray]],
        centre: np.ndarray,
        scale: np.ndarray,
        projection: tuple[np.ndarray, np.ndarray] | None = None,
        threshold: float | None = None,
        ink_features: Sequence[str] = ALL_FEATURES,
        members: Sequence[list[tuple[np.ndarray, np.ndarray]]] = (),
    ) -> None:
        self.inlier, self.outlier = inlier, outlier
        self.ink_features = tuple(ink_features)
        self.members = [
            [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in stack] for stack in (layers, *members)
        ]
        self.centre, self.scale = np.asarray(centre, np.float64), np.asarray(scale, np.float64)
        self.projection = projection
        self.threshold = threshold
        self.kinds = [str(k) for k in (outlier.classes_ if outlier.classes_ is not None else [])]

    @property
    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The first classifier's layers (the only ones of a one-classifier gate)."""
        return self.members[0]

    # --- scoring ------------------------------------------------------------------------------------------
    def project(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if self.projection is None:
            return x
        mean, comps = self.projection
        if x.shape[1] != len(mean):
            raise ModelMismatchError(f"features have shape {x.shape}; the OOD gate was fitted on {len(mean)}-d ones")
        return (x - mean) @ comps

    @staticmethod
    def raw_design(inlier: np.ndarray, outlier: np.ndarray, ink: np.ndarray, dim: int) -> np.ndarray:
        """Unstandardised design matrix [N, P] from the in-distribution score [N], the outlier kinds' class scores
        [N, K] (both 2 log-densities, divided by the feature dimension) and the ink statistics [N, F]."""
        s_in, s_out = inlier[:, None] / dim, outlier / dim
        return np.hstack([s_in, s_out, s_in - s_out.max(axis=1, keepdims=True), ink])

    def design(self, features: np.ndarray, ink: np.ndarray) -> np.ndarray:
        """Standardised design matrix [N, P] from features [N, D] and the crops' ink statistics [N, F]
        (`ink_statistics_batch(crops, self.ink_features)`)."""
        x = self.project(features)
        if len(ink) != len(x):
            raise ConfigError(f"the OOD gate needs one crop per feature row; got {len(ink)} and {len(x)}")
        raw = self.raw_design(self.inlier.score(x), self.outlier.class_scores(x), np.asarray(ink), x.shape[1])
        return np.clip((raw - self.centre) / self.scale, -_CLIP, _CLIP)

    def probabilities(self, features: np.ndarray, crops: Sequence[np.ndarray]) -> np.ndarray:
        """[N, K + 1]: p(signature), p(kind_1), ... for each input."""
        return self.probabilities_from_ink(features, ink_statistics_batch(crops, self.ink_features))

    def probabilities_from_ink(self, features: np.ndarray, ink: np.ndarray) -> np.ndarray:
        """`probabilities` with the crops' ink statistics already computed (columns `self.ink_features`)."""
        design = self.design(features, ink)
        return np.mean([_softmax(design, stack) for stack in self.members], axis=0)

    def score(self, features: np.ndarray, crops: Sequence[np.ndarray]) -> np.ndarray:
        """p(signature | x) [N]; larger = more in-distribution."""
        return self.probabilities(features, crops)[:, 0]

    def check(
        self, features: np.ndarray, crops: Sequence[np.ndarray] | None, what: str
    ) -> tuple[np.ndarray, list[GateRefusal | None]]:
        """Scores [N] and, per input, None (accepted) or why it was refused (the kind it looks like most, when
        that kind holds `NAME_KIND_SHARE` of the non-signature probability)."""
        if crops is None:
            raise ConfigError("this OOD gate reads the preprocessed crops as well as the features; pass them")
        if self.threshold is None:
            raise ConfigError("the OOD gate has no threshold")
        p = self.probabilities(features, crops)
        reasons: list[GateRefusal | None] = []
        for row in p:
            if row[0] >= self.threshold:
                reasons.append(None)
                continue
            best = int(np.argmax(row[1:]))
            named = row[1 + best] >= NAME_KIND_SHARE * max(1.0 - row[0], 1e-12)
            reasons.append(gate_refusal(what, float(row[0]), self.threshold, self.kinds[best] if named else None))
        return p[:, 0], reasons

    # --- storage ------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        tensors = {
            **self.inlier.to_tensors("inlier."),
            **self.outlier.to_tensors("outlier."),
            **{
                f"{_member_prefix(m)}layer{i}.{part}": array
                for m, stack in enumerate(self.members)
                for i, (w, b) in enumerate(stack)
                for part, array in (("weight", w), ("bias", b))
            },
            "centre": self.centre,
            "scale": self.scale,
        }
        if self.projection is not None:
            tensors["projection.mean"], tensors["projection.components"] = self.projection
        meta = {
            "format": FORMAT,
            "version": "1",
            "threshold": json.dumps(self.threshold),
            "inlier": json.dumps(self.inlier.meta()),
            "outlier": json.dumps(self.outlier.meta()),
            "ink_features": json.dumps(list(self.ink_features)),
            "score": "p(signature | x), softmax classifier (mean over members) over [2 log N_in / D, "
            "2 log N_kind / D, their difference, ink statistics]",
        }
        with atomic_path(Path(path)) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp), metadata=meta)

    @classmethod
    def from_file(cls, meta: dict[str, str], tensors: dict[str, np.ndarray]) -> OutlierExposureGate:
        names = json.loads(meta.get("ink_features", "[]"))
        if not names or names not in (list(INK_FEATURES), list(ALL_FEATURES)):
            raise ModelError("the OOD gate was fitted on other ink statistics than this version computes; refit it")
        projection = None
        if "projection.mean" in tensors:
            projection = (tensors["projection.mean"], tensors["projection.components"])
        return cls(
            GaussianOODScorer.from_tensors(json.loads(meta["inlier"]), tensors, "inlier."),
            GaussianOODScorer.from_tensors(json.loads(meta["outlier"]), tensors, "outlier."),
            _stack(tensors, ""),
            tensors["centre"],
            tensors["scale"],
            projection,
            json.loads(meta["threshold"]),
            names,
            [_stack(tensors, _member_prefix(m)) for m in range(1, _count(tensors, "member{}.layer0.weight", 1))],
        )


def _softmax(design: np.ndarray, stack: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """[N, K + 1] softmax of one classifier (ReLU between its layers) over the design matrix."""
    logits = design
    for i, (weight, bias) in enumerate(stack):
        logits = logits @ weight + bias
        if i < len(stack) - 1:
            logits = np.maximum(logits, 0.0)
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _member_prefix(m: int) -> str:
    """Tensor name prefix of classifier m: none for the first (files with one classifier look as they always did)."""
    return "" if m == 0 else f"member{m}."


def _count(tensors: dict[str, np.ndarray], pattern: str, start: int = 0) -> int:
    """The first n >= start for which pattern.format(n) is not a tensor name."""
    n = start
    while pattern.format(n) in tensors:
        n += 1
    return n


def _stack(tensors: dict[str, np.ndarray], prefix: str) -> list[tuple[np.ndarray, np.ndarray]]:
    n = _count(tensors, prefix + "layer{}.weight")
    if n == 0:
        raise ModelError("the OOD gate file has no classifier layers")
    return [(tensors[f"{prefix}layer{i}.weight"], tensors[f"{prefix}layer{i}.bias"]) for i in range(n)]


def load_gate(path: str | Path, section: dict[str, Any]) -> GaussianGate | OutlierExposureGate:
    """The gate a card's "ood" section names (`path` = its file), checked against the section's sha256 if any."""
    path = Path(path)
    expected = section.get("sha256")
    if expected and file_sha256(path) != expected:
        raise ModelError(
            f"{path.name}: the OOD gate file does not match the sha256 in the model card; it was changed or "
            "damaged; refit it with `verify ood fit`"
        )
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except Exception as exc:  # safetensors raises its own SafetensorError on corrupt headers
        raise ModelError(f"{path.name}: cannot read the OOD gate: {exc}") from exc
    if meta.get("format") == FORMAT:
        gate = OutlierExposureGate.from_file(meta, tensors)
        threshold = section.get("threshold", gate.threshold)
        gate.threshold = None if threshold is None else float(threshold)
        return gate
    return GaussianGate(GaussianOODScorer.load(path), float(section["threshold"]))
