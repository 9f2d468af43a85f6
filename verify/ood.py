"""Class-conditional Gaussian out-of-distribution scorer (Winkens et al. 2020, "Contrastive training for improved
out-of-distribution detection") and two baselines.

Convention: with features f(x) in R^n and one Gaussian per class c (mean mu_c, covariance Sigma_c),

    s(x) = max_c [ -(f(x) - mu_c)^T Sigma_c^-1 (f(x) - mu_c) - log((2 pi)^n det Sigma_c) ]
         = max_c 2 log N(f(x); mu_c, Sigma_c),

i.e. twice the largest class log-density. Larger = more in-distribution; `choose_threshold` keeps inputs with
s(x) >= threshold. Covariances are shrunk (Ledoit-Wolf by default) so that few samples per class still work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file
from scipy.linalg import solve_triangular

from verify.errors import ConfigError, ModelError, ModelMismatchError
from verify.fsutil import atomic_path

COVARIANCES = ("tied", "diag", "full")
SHRINKAGES = ("ledoit_wolf", "oas", "none")
_FORMAT = "gaussian_ood"
_LOG_2PI = float(np.log(2 * np.pi))


def _shrunk_covariance(centred: np.ndarray, shrinkage: str | float) -> np.ndarray:
    """Covariance [D, D] of already-centred rows [N, D] with the chosen shrinkage."""
    from sklearn.covariance import OAS, EmpiricalCovariance, LedoitWolf, ShrunkCovariance  # fitting only: loading a
    # model stays free of scikit-learn's import time (~1.8 s per process: CLI start, each Ray actor)

    if shrinkage == "ledoit_wolf":
        est: Any = LedoitWolf(assume_centered=True)
    elif shrinkage == "oas":
        est = OAS(assume_centered=True)
    elif shrinkage == "none":
        est = EmpiricalCovariance(assume_centered=True)
    else:
        est = ShrunkCovariance(shrinkage=float(shrinkage), assume_centered=True)
    return np.asarray(est.fit(centred).covariance_, dtype=np.float64)


def _cholesky(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of `cov` [D, D], adding a growing ridge if it is not positive definite."""
    scale = max(float(np.mean(np.diag(cov))), 1e-12)
    for ridge in (0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2):
        try:
            return np.linalg.cholesky(cov + ridge * scale * np.eye(len(cov)))
        except np.linalg.LinAlgError:
            continue
    raise ModelError("covariance is not positive definite even with a ridge; features may be constant")


class GaussianOODScorer:
    """Class-conditional Gaussians over embeddings; `score` is twice the best class log-density.

    Args:
        covariance: "tied" (one shared covariance, as in LDA), "diag" (per-class diagonal) or "full" (per class).
            Classes with fewer than 2 samples use the tied covariance (or its diagonal).
        shrinkage: "ledoit_wolf", "oas", "none" or a fixed shrinkage in [0, 1] (sklearn ShrunkCovariance).
        chunk_size: rows scored at once.
    """

    def __init__(self, covariance: str = "tied", shrinkage: str | float = "ledoit_wolf", chunk_size: int = 4096):
        if covariance not in COVARIANCES:
            raise ConfigError(f"covariance {covariance!r} is not one of {', '.join(COVARIANCES)}")
        if isinstance(shrinkage, str) and shrinkage not in SHRINKAGES:
            raise ConfigError(f"shrinkage {shrinkage!r} is not one of {', '.join(SHRINKAGES)} or a number in [0, 1]")
        if not isinstance(shrinkage, str) and not 0.0 <= float(shrinkage) <= 1.0:
            raise ConfigError(f"shrinkage {shrinkage} is outside [0, 1]")
        self.covariance = covariance
        self.shrinkage = shrinkage
        self.chunk_size = int(chunk_size)
        self.classes_: np.ndarray | None = None
        self.means_ = np.zeros((0, 0))
        self.covariances_ = np.zeros((0, 0))  # tied [D, D], diag [C, D], full [C, D, D]
        self.threshold: float | None = None

    def fit(self, features: np.ndarray, labels: np.ndarray) -> GaussianOODScorer:
        """Fit class means and (shrunk) covariances.

        Args:
            features: [N, D] in-distribution embeddings.
            labels: [N] class labels (ints or strings).
        """
        x = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels)
        if x.ndim != 2 or len(x) != len(labels) or len(x) < 2:
            raise ConfigError(f"fit needs features [N, D] with N >= 2 and labels [N]; got {x.shape}, {labels.shape}")
        classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        means = np.zeros((len(classes), x.shape[1]))
        np.add.at(means, inverse, x)
        means /= counts[:, None]
        centred = x - means[inverse]
        tied = _shrunk_covariance(centred, self.shrinkage)
        if self.covariance == "tied":
            covs = tied
        else:
            per_class = [
                _shrunk_covariance(centred[inverse == c], self.shrinkage) if counts[c] >= 2 else tied
                for c in range(len(classes))
            ]
            covs = np.stack([np.diag(c) for c in per_class] if self.covariance == "diag" else per_class)
        self.classes_, self.means_, self.covariances_ = classes, means, covs
        self._prepare()
        return self

    def _prepare(self) -> None:
        """Cholesky factors / inverse variances and the log((2 pi)^n det Sigma_c) terms [C]."""
        dim = self.means_.shape[1]
        if self.covariance == "diag":
            var = np.maximum(self.covariances_, 1e-12 * max(float(self.covariances_.mean()), 1e-12))
            self._inv_var = 1.0 / var
            self._log_norm = dim * _LOG_2PI + np.log(var).sum(axis=1)
            return
        covs = self.covariances_[None] if self.covariance == "tied" else self.covariances_
        self._chol = np.stack([_cholesky(c) for c in covs])
        logdet = 2 * np.log(np.diagonal(self._chol, axis1=1, axis2=2)).sum(axis=1)
        self._log_norm = dim * _LOG_2PI + np.broadcast_to(logdet, (len(self.means_),))
        if self.covariance == "tied":
            self._white_means = solve_triangular(self._chol[0], self.means_.T, lower=True).T  # [C, D]

    def _mahalanobis(self, x: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances of rows x [M, D] to every class mean. Returns [M, C]."""
        if self.covariance == "diag":
            mu_w = self.means_ * self._inv_var
            d = (x * x) @ self._inv_var.T - 2 * x @ mu_w.T + (self.means_ * mu_w).sum(axis=1)
        elif self.covariance == "tied":
            z = solve_triangular(self._chol[0], x.T, lower=True).T
            m = self._white_means
            d = (z * z).sum(axis=1, keepdims=True) - 2 * z @ m.T + (m * m).sum(axis=1)
        else:
            d = np.stack(
                [
                    (solve_triangular(chol, (x - mu).T, lower=True) ** 2).sum(axis=0)
                    for chol, mu in zip(self._chol, self.means_, strict=True)
                ],
                axis=1,
            )
        return np.maximum(d, 0.0)

    def class_scores(self, features: np.ndarray) -> np.ndarray:
        """Twice the log-density under each class, [M, C] (columns in the order of `classes_`)."""
        if self.classes_ is None:
            raise ConfigError("GaussianOODScorer is not fitted; call fit() or load() first")
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.means_.shape[1]:
            raise ModelMismatchError(
                f"features have shape {x.shape}; the OOD scorer was fitted on {self.means_.shape[1]}-d embeddings"
            )
        out = np.empty((len(x), len(self.means_)))
        for start in range(0, len(x), max(self.chunk_size, 1)):
            chunk = x[start : start + self.chunk_size]
            out[start : start + len(chunk)] = -self._mahalanobis(chunk) - self._log_norm
        return out

    def score(self, features: np.ndarray) -> np.ndarray:
        """s(x) for features [M, D]. Returns float64 [M]; larger = more in-distribution."""
        return self.class_scores(features).max(axis=1)

    def choose_threshold(self, in_dist_scores: np.ndarray, keep: float = 0.95) -> float:
        """Threshold keeping a fraction `keep` of held-out in-distribution scores; stored in `self.threshold`."""
        scores = np.asarray(in_dist_scores, dtype=np.float64).ravel()
        if not 0.0 < keep <= 1.0 or not len(scores):
            raise ConfigError(f"choose_threshold needs 0 < keep <= 1 and some scores; got keep={keep}, {len(scores)}")
        self.threshold = float(np.quantile(scores, 1.0 - keep, method="lower"))
        return self.threshold

    def is_in_distribution(self, features: np.ndarray) -> np.ndarray:
        """Boolean [M]: score >= the chosen threshold."""
        if self.threshold is None:
            raise ConfigError("no threshold; call choose_threshold() on held-out in-distribution scores first")
        return self.score(features) >= self.threshold

    def meta(self) -> dict[str, Any]:
        """JSON-able settings and class names (numeric classes live in the tensors)."""
        if self.classes_ is None:
            raise ConfigError("GaussianOODScorer is not fitted; nothing to save")
        numeric = np.issubdtype(self.classes_.dtype, np.number)
        return {
            "covariance": self.covariance,
            "shrinkage": self.shrinkage,
            "threshold": self.threshold,
            "classes": "tensor" if numeric else [str(c) for c in self.classes_],
        }

    def to_tensors(self, prefix: str = "") -> dict[str, np.ndarray]:
        """means [C, D], covariances and (numeric) classes [C], under `prefix`."""
        if self.classes_ is None:
            raise ConfigError("GaussianOODScorer is not fitted; nothing to save")
        tensors = {"means": np.ascontiguousarray(self.means_), "covariances": np.ascontiguousarray(self.covariances_)}
        if np.issubdtype(self.classes_.dtype, np.number):
            tensors["classes"] = np.ascontiguousarray(self.classes_)
        return {prefix + k: v for k, v in tensors.items()}

    @classmethod
    def from_tensors(cls, meta: dict[str, Any], tensors: dict[str, np.ndarray], prefix: str = "") -> GaussianOODScorer:
        """The inverse of `meta` + `to_tensors`."""
        scorer = cls(meta["covariance"], meta["shrinkage"])
        classes = meta["classes"]
        scorer.classes_ = tensors[prefix + "classes"] if classes == "tensor" else np.array(classes)
        scorer.means_, scorer.covariances_ = tensors[prefix + "means"], tensors[prefix + "covariances"]
        scorer.threshold = meta["threshold"]
        scorer._prepare()
        return scorer

    def save(self, path: str | Path) -> None:
        """Write tensors and JSON metadata to a .safetensors file (atomically; no pickle)."""
        info = self.meta()
        meta = {
            "format": _FORMAT,
            "version": "1",
            "covariance": self.covariance,
            "shrinkage": json.dumps(self.shrinkage),
            "threshold": json.dumps(self.threshold),
            "classes": "tensor" if info["classes"] == "tensor" else json.dumps(info["classes"]),
            "score": "max_c 2*log N(x; mu_c, Sigma_c)",
        }
        with atomic_path(Path(path)) as tmp:
            save_file(self.to_tensors(), str(tmp), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> GaussianOODScorer:
        """Read a scorer written by `save`."""
        try:
            with safe_open(str(path), framework="np") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
        except Exception as exc:  # safetensors raises its own SafetensorError on corrupt headers
            raise ModelError(f"{path}: cannot read an OOD scorer: {exc}") from exc
        if meta.get("format") != _FORMAT:
            raise ModelError(f"{path}: not a Gaussian OOD scorer file (format {meta.get('format')!r})")
        classes = meta["classes"]
        info = {
            "covariance": meta["covariance"],
            "shrinkage": json.loads(meta["shrinkage"]),
            "threshold": json.loads(meta["threshold"]),
            "classes": classes if classes == "tensor" else json.loads(classes),
        }
        return cls.from_tensors(info, tensors)


def nearest_neighbour_score(train: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Baseline: minus the Euclidean distance from each row of x [M, D] to its nearest train row [N, D]. [M]"""
    train = np.ascontiguousarray(train, dtype=np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)
    sq, _ = faiss.knn(x, train, 1, metric=faiss.METRIC_L2)
    return -np.sqrt(np.maximum(sq[:, 0].astype(np.float64), 0.0))


def feature_norm_score(x: np.ndarray) -> np.ndarray:
    """Baseline for un-normalised features: the L2 norm of each row of x [M, D] (larger = more familiar). [M]"""
    return np.linalg.norm(np.asarray(x, dtype=np.float64), axis=1)
