"""Operating points chosen on held-out calibration data, and score -> p(match) calibrators stored as JSON.

The threshold that goes into a model card is chosen on a calibration split (identities disjoint from the
test split) and reported with how it was chosen, so that a number in a card can always be traced back.
Calibrators are plain parameters (Platt coefficients or isotonic knots), never pickled objects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from verify.errors import ConfigError
from verify.eval import metrics


def fingerprint_split(items: Iterable[Any]) -> str:
    """sha256 (first 16 hex) of the sorted string forms of ``items`` (identities, pair ids, paths)."""
    text = "\n".join(sorted(str(x) for x in items))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _fingerprint_scores(g: np.ndarray, i: np.ndarray) -> str:
    h = hashlib.sha256(np.sort(g).astype("<f8").tobytes() + b"|" + np.sort(i).astype("<f8").tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold and how it behaved on the data it was chosen on."""

    threshold: float  # accept a pair when similarity >= threshold
    target: str  # "eer" or "far=0.01": what the threshold was chosen for
    target_far: float | None  # the FAR target, None for "eer"
    far: float  # achieved false accept rate on the calibration split
    frr: float  # achieved false reject rate on the calibration split
    n_genuine: int  # genuine pairs in the calibration split
    n_impostor: int  # impostor pairs in the calibration split
    split_fingerprint: str  # names the calibration split (see `fingerprint_split`)
    source: str  # free text: where the scores came from
    note: str | None = None  # e.g. "not enough impostor pairs" to measure the FAR target

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_threshold(
    genuine: ArrayLike,
    impostor: ArrayLike,
    target_far: float | str = 1e-2,
    *,
    split_fingerprint: str | None = None,
    source: str = "calibration split",
) -> OperatingPoint:
    """Choose a threshold on calibration scores: the EER point, or the lowest threshold with FAR <= target.

    Args:
        genuine: calibration genuine scores [G].
        impostor: calibration impostor scores [I].
        target_far: a FAR in (0, 1), or "eer".
        split_fingerprint: names the calibration split; default: a hash of the scores themselves.
        source: what the scores are (dataset, protocol, split), stored with the threshold.

    Returns:
        The operating point, with the FAR/FRR it achieves on these scores.
    """
    g = np.asarray(genuine, np.float64).ravel()
    i = np.asarray(impostor, np.float64).ravel()
    note = None
    if target_far == "eer":
        _, threshold = metrics.eer(g, i)
        target, far_target = "eer", None
    elif isinstance(target_far, (int, float)) and 0 < float(target_far) < 1:
        far_target = float(target_far)
        _, threshold, _ = metrics._threshold_at_far(*metrics._scores(g, i), far_target)
        target = f"far={far_target:g}"
        if not metrics.has_enough_impostors(i.size, far_target):
            note = f"{metrics.NOT_ENOUGH_IMPOSTORS}: {i.size} < {1 / far_target:.0f} to measure FAR {far_target:g}"
    else:
        raise ConfigError(f"target_far must be a rate in (0, 1) or 'eer', got {target_far!r}")
    return OperatingPoint(
        threshold=float(threshold),
        target=target,
        target_far=far_target,
        far=float(np.mean(i >= threshold)),
        frr=float(np.mean(g < threshold)),
        n_genuine=int(g.size),
        n_impostor=int(i.size),
        split_fingerprint=split_fingerprint or _fingerprint_scores(g, i),
        source=source,
        note=note,
    )


class ScoreCalibrator:
    """Maps similarity scores to p(match): Platt (logistic on the score) or isotonic regression.

    The probability reflects the genuine/impostor ratio of the calibration pairs (its prior); that ratio is
    stored as ``prior`` so users can re-weight for their own base rate.
    """

    def __init__(self, method: str = "platt") -> None:
        if method not in ("platt", "isotonic"):
            raise ConfigError(f"calibrator method must be 'platt' or 'isotonic', got {method!r}")
        self.method = method
        self.params: dict[str, Any] = {}

    def fit(self, genuine: ArrayLike, impostor: ArrayLike) -> ScoreCalibrator:
        """Fit on calibration genuine [G] and impostor [I] scores. Returns self."""
        from sklearn.isotonic import IsotonicRegression  # here, not at import: applying a calibrator needs none
        from sklearn.linear_model import LogisticRegression

        g, i = metrics._scores(genuine, impostor)
        x = np.concatenate([g, i])
        y = np.concatenate([np.ones(g.size), np.zeros(i.size)])
        if self.method == "platt":
            lr = LogisticRegression(C=1e6, max_iter=1000).fit(x[:, None], y)
            self.params = {"coef": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0])}
        else:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(x, y)
            self.params = {
                "x": [float(v) for v in iso.X_thresholds_],
                "y": [float(v) for v in iso.y_thresholds_],
            }
        self.params["prior"] = float(g.size / x.size)
        return self

    def predict_proba(self, scores: ArrayLike) -> np.ndarray:
        """p(match) of each score [N] -> [N] float64 in [0, 1]."""
        if not self.params:
            raise ConfigError("ScoreCalibrator is not fitted; call fit() or from_dict() first")
        s = np.asarray(scores, np.float64)
        if self.method == "platt":
            z = self.params["coef"] * s + self.params["intercept"]
            return np.exp(-np.logaddexp(0.0, -z))  # 1 / (1 + exp(-z)) without overflow
        return np.interp(s, self.params["x"], self.params["y"])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: {"method", "coef", "intercept", "prior"} or {"method", "x", "y", "prior"}."""
        return {"method": self.method, **self.params}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoreCalibrator:
        """Rebuild from `to_dict` output (e.g. card["calibration"]["calibrator"])."""
        method = data.get("method")
        keys = ("coef", "intercept") if method == "platt" else ("x", "y")
        if method not in ("platt", "isotonic") or any(k not in data for k in keys):
            raise ConfigError(f"not a calibrator: expected method platt|isotonic with {keys}, got {dict(data)}")
        cal = cls(str(method))
        cal.params = {k: v for k, v in data.items() if k != "method"}
        return cal


def calibration_section(op: OperatingPoint, calibrator: ScoreCalibrator | None = None) -> dict[str, Any]:
    """The card["calibration"] section: the operating point and, if given, the calibrator."""
    section: dict[str, Any] = {
        "threshold": op.threshold,
        "source": op.source,
        "target": op.target,
        "target_far": op.target_far,
        "far": op.far,
        "frr": op.frr,
        "n_genuine": op.n_genuine,
        "n_impostor": op.n_impostor,
        "split_fingerprint": op.split_fingerprint,
    }
    if op.note:
        section["note"] = op.note
    if calibrator is not None:
        section["calibrator"] = calibrator.to_dict()
    return section


def per_identity_thresholds(
    scores_by_identity: Mapping[str, tuple[ArrayLike, ArrayLike]],
    min_samples: int = 5,
    target_far: float | str = 1e-2,
) -> dict[str, float]:
    """Thresholds per identity, for identities with enough data; others should use the global threshold.

    Args:
        scores_by_identity: identity -> (genuine scores of that identity [G], impostor scores against it [I]).
        min_samples: least number of genuine scores needed; impostors need ``min_samples`` too and, for a
            FAR target, at least ~1/target_far.
        target_far: as in `choose_threshold`.

    Returns:
        identity -> threshold, only for the identities that qualify.
    """
    out = {}
    for identity, (genuine, impostor) in scores_by_identity.items():
        g, i = np.ravel(genuine), np.ravel(impostor)
        enough = g.size >= min_samples and i.size >= min_samples
        if target_far != "eer":
            enough = enough and metrics.has_enough_impostors(i.size, float(target_far))
        if enough:
            out[identity] = choose_threshold(g, i, target_far).threshold
    return out
