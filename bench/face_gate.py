"""Face / not-a-face gate for face models that have no contrastive OOD model (studied in bench_face.py; not
on the product path, which gates faces by detection in `verify.preprocess.face`).

Two signals, usable alone or together:
- detection: dlib's HOG detector (`detection_score` is its best window score, with weak windows allowed, so
  it is a continuous score and not only found / not found);
- density: how close an embedding lies to embeddings of real face chips, fitted without labels
  (`KnnFaceDensity`: mean cosine similarity to the k nearest reference faces; `GaussianFaceDensity`:
  minus the Mahalanobis distance under a Ledoit-Wolf Gaussian). Each picks its own threshold as a low
  quantile of leave-one-out scores of the reference faces (a target true-accept rate, no non-faces needed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import NearestNeighbors

from verify.errors import ConfigError, NoFaceError, OutOfDistributionError
from verify.models.base import Embedder
from verify.preprocess.face_detect import as_rgb, detect_faces

NO_WINDOW_SCORE = -3.0  # detection score given when not even a weak window fires


def detection_score(image: np.ndarray, min_side: int = 120, pad: float = 0.25, floor: float = -1.5) -> float:
    """Best HOG window score of an image (higher = more face-like; > 0 is dlib's "face found").

    Small images are upscaled to `min_side` and padded by `pad` of their size (tight crops leave the
    detector no margin). Returns `NO_WINDOW_SCORE` when no window scores above `floor`.
    """
    rgb = as_rgb(image)
    scale = max(1.0, min_side / min(rgb.shape[:2]))
    if scale > 1.0:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    m = round(pad * max(rgb.shape[:2]))
    rgb = cv2.copyMakeBorder(rgb, m, m, m, m, cv2.BORDER_REPLICATE)
    boxes = detect_faces(rgb, "hog", upsample=0, max_side=None, adjust_threshold=floor)
    return max((b.score for b in boxes), default=NO_WINDOW_SCORE)


def _threshold_for(scores: np.ndarray, target_tpr: float) -> float:
    if not 0.0 < target_tpr <= 1.0:
        raise ConfigError(f"target_tpr must be in (0, 1], got {target_tpr}")
    return float(np.quantile(scores, 1.0 - target_tpr))


class KnnFaceDensity:
    """Mean cosine similarity to the k nearest reference face embeddings (higher = more face-like).

    Args:
        k: neighbours averaged.
    """

    def __init__(self, k: int = 5) -> None:
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        self.k = k
        self.threshold: float | None = None
        self._nn: NearestNeighbors | None = None

    def fit(self, embeddings: np.ndarray, target_tpr: float = 0.95) -> KnnFaceDensity:
        """Fit on reference face embeddings [N, D] (N > k), L2-normalised; sets `threshold`."""
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or len(emb) <= self.k:
            raise ConfigError(f"KnnFaceDensity needs more than k={self.k} embeddings [N, D], got {emb.shape}")
        self._nn = NearestNeighbors(n_neighbors=self.k + 1, metric="cosine", algorithm="brute").fit(emb)
        dist, _ = self._nn.kneighbors(emb, n_neighbors=self.k + 1)
        self.threshold = _threshold_for(1.0 - dist[:, 1:].mean(axis=1), target_tpr)  # leave-one-out
        return self

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """Embeddings [M, D] -> scores [M]."""
        if self._nn is None:
            raise ConfigError("KnnFaceDensity is not fitted; call fit(reference_face_embeddings)")
        dist, _ = self._nn.kneighbors(np.asarray(embeddings, np.float32), n_neighbors=self.k)
        return (1.0 - dist.mean(axis=1)).astype(np.float32)


class GaussianFaceDensity:
    """Minus the Mahalanobis distance under one Ledoit-Wolf Gaussian of face embeddings (higher = more face)."""

    def __init__(self) -> None:
        self.threshold: float | None = None
        self._cov: LedoitWolf | None = None

    def fit(self, embeddings: np.ndarray, target_tpr: float = 0.95) -> GaussianFaceDensity:
        """Fit on reference face embeddings [N, D]; sets `threshold` from the fitted faces' scores."""
        emb = np.asarray(embeddings, dtype=np.float64)
        if emb.ndim != 2 or len(emb) < 3:
            raise ConfigError(f"GaussianFaceDensity needs at least 3 embeddings [N, D], got {emb.shape}")
        self._cov = LedoitWolf().fit(emb)
        self.threshold = _threshold_for(self.score(emb), target_tpr)
        return self

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """Embeddings [M, D] -> scores [M] (minus the Mahalanobis distance)."""
        if self._cov is None:
            raise ConfigError("GaussianFaceDensity is not fitted; call fit(reference_face_embeddings)")
        return (-np.sqrt(self._cov.mahalanobis(np.asarray(embeddings, np.float64)))).astype(np.float32)


@dataclass
class FaceGateResult:
    """What the gate saw in one image."""

    is_face: bool
    faces_found: int
    density: float | None = None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "is_face": self.is_face,
            "faces_found": self.faces_found,
            "density": self.density,
            "reasons": list(self.reasons),
        }


class FaceGate:
    """Accept an image only if a face is detected and (when a density is given) its embedding is face-like.

    Args:
        embedder: a face `Embedder` (its preprocess detects and aligns; raises NoFaceError on no face).
        density: a fitted `KnnFaceDensity` / `GaussianFaceDensity` on this embedder's face embeddings.
        threshold: density threshold; default: the density's own (from its target true-accept rate).
    """

    def __init__(self, embedder: Embedder, density: Any = None, threshold: float | None = None) -> None:
        self.embedder = embedder
        self.density = density
        self.threshold = threshold if threshold is not None else getattr(density, "threshold", None)

    def check(self, image: np.ndarray) -> FaceGateResult:
        """Run detection (+ density) on a decoded image [H, W, 3]; never raises for a non-face."""
        try:
            crop = self.embedder.preprocess(image)
        except NoFaceError as exc:
            return FaceGateResult(False, 0, None, [str(exc)])
        found = int(crop.info.get("faces_found", 1))
        if self.density is None:
            return FaceGateResult(True, found)
        value = float(self.density.score(self.embedder.embed_crops([crop.image]))[0])
        if self.threshold is not None and value < self.threshold:
            reason = f"the detected face does not look like a face to the model (density {value:.3f} < "
            return FaceGateResult(False, found, value, [reason + f"{self.threshold:.3f})"])
        return FaceGateResult(True, found, value)

    def require(self, image: np.ndarray) -> FaceGateResult:
        """Like `check`, but raise NoFaceError / OutOfDistributionError when the image is refused."""
        result = self.check(image)
        if not result.is_face:
            cls = NoFaceError if result.faces_found == 0 else OutOfDistributionError
            raise cls("; ".join(result.reasons))
        return result
