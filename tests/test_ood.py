"""GaussianOODScorer against a naive per-class scipy reference; thresholds; far points; save/load; baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.covariance import LedoitWolf

from verify.errors import ConfigError, ModelError, ModelMismatchError
from verify.ood import GaussianOODScorer, feature_norm_score, nearest_neighbour_score

D = 6


def blobs(rng: np.random.Generator, n_per: tuple[int, ...] = (40, 25, 30, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Classes with different means and anisotropic spreads; the last class may have a single sample."""
    xs, ys = [], []
    for c, n in enumerate(n_per):
        mixing = rng.standard_normal((D, D)) * 0.3 + np.eye(D) * (0.5 + 0.3 * c)
        xs.append(rng.standard_normal((n, D)) @ mixing + 3.0 * rng.standard_normal(D))
        ys.append(np.full(n, c))
    return np.concatenate(xs), np.concatenate(ys)


def naive_covariances(x: np.ndarray, y: np.ndarray, kind: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Class means and each class's covariance, computed independently with sklearn's LedoitWolf."""
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(0) for c in classes])
    centred = x - means[np.searchsorted(classes, y)]
    tied = LedoitWolf(assume_centered=True).fit(centred).covariance_
    covs = []
    for c in classes:
        cov = (
            tied
            if kind == "tied" or (y == c).sum() < 2
            else LedoitWolf(assume_centered=True).fit(centred[y == c]).covariance_
        )
        covs.append(np.diag(np.diag(cov)) if kind == "diag" else cov)
    return means, covs


@pytest.mark.parametrize("kind", ["tied", "diag", "full"])
def test_matches_naive_scipy_log_density(kind: str):
    rng = np.random.default_rng(0)
    x, y = blobs(rng)
    queries = np.concatenate([x[:10], rng.standard_normal((20, D)) * 4])
    scorer = GaussianOODScorer(kind, chunk_size=7).fit(x, y)
    means, covs = naive_covariances(x, y, kind)
    per_class = np.stack([2 * multivariate_normal(m, c).logpdf(queries) for m, c in zip(means, covs, strict=True)], 1)
    np.testing.assert_allclose(scorer.class_scores(queries), per_class, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(scorer.score(queries), per_class.max(1), rtol=1e-8, atol=1e-8)
    # the formula written out, for one class: -(x-mu)^T S^-1 (x-mu) - log((2 pi)^n det S)
    diff = queries - means[1]
    formula = -np.einsum("md,de,me->m", diff, np.linalg.inv(covs[1]), diff) - np.log(np.linalg.det(2 * np.pi * covs[1]))
    np.testing.assert_allclose(scorer.class_scores(queries)[:, 1], formula, rtol=1e-8)


def test_threshold_keeps_95_percent_and_far_points_score_lower():
    rng = np.random.default_rng(1)
    x, y = blobs(rng, (300, 300, 300))
    order = rng.permutation(len(x))
    train, calib, test = np.array_split(order, 3)
    scorer = GaussianOODScorer().fit(x[train], y[train])
    threshold = scorer.choose_threshold(scorer.score(x[calib]), keep=0.95)
    assert scorer.threshold == threshold
    assert np.mean(scorer.score(x[calib]) >= threshold) == pytest.approx(0.95, abs=0.005)
    assert np.mean(scorer.is_in_distribution(x[test])) == pytest.approx(0.95, abs=0.04)
    far = x[test][:50] + 40.0
    assert scorer.score(far).max() < scorer.score(x[test]).min()
    assert not scorer.is_in_distribution(far).any()


@pytest.mark.parametrize("labels", ["int", "str"])
@pytest.mark.parametrize("kind", ["tied", "diag", "full"])
def test_save_load_round_trip_is_exact(tmp_path: Path, kind: str, labels: str):
    rng = np.random.default_rng(2)
    x, y = blobs(rng)
    y = y if labels == "int" else np.array([f"writer-{v}" for v in y])
    scorer = GaussianOODScorer(kind, shrinkage="oas").fit(x, y)
    scorer.choose_threshold(scorer.score(x), keep=0.9)
    scorer.save(tmp_path / "ood.safetensors")
    again = GaussianOODScorer.load(tmp_path / "ood.safetensors")
    assert (again.covariance, again.shrinkage, again.threshold) == (kind, "oas", scorer.threshold)
    assert list(again.classes_) == list(scorer.classes_)
    queries = rng.standard_normal((15, D)) * 3
    assert np.array_equal(again.score(queries), scorer.score(queries))
    assert b"pickle" not in (tmp_path / "ood.safetensors").read_bytes()[:2000]


def test_few_samples_per_class_high_dim():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 64))
    y = np.repeat(np.arange(10), 2)
    for kind in ("tied", "diag", "full"):
        assert np.all(np.isfinite(GaussianOODScorer(kind).fit(x, y).score(x)))


def test_errors():
    with pytest.raises(ConfigError):
        GaussianOODScorer("spherical")
    with pytest.raises(ConfigError):
        GaussianOODScorer(shrinkage=1.5)
    with pytest.raises(ConfigError, match="not fitted"):
        GaussianOODScorer().score(np.zeros((1, 3)))
    scorer = GaussianOODScorer().fit(*blobs(np.random.default_rng(4)))
    with pytest.raises(ModelMismatchError):
        scorer.score(np.zeros((2, D + 1)))
    with pytest.raises(ConfigError, match="threshold"):
        scorer.is_in_distribution(np.zeros((1, D)))


def test_load_rejects_other_files(tmp_path: Path):
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError):
        GaussianOODScorer.load(tmp_path / "junk.safetensors")


def test_baselines_match_naive():
    rng = np.random.default_rng(5)
    train, x = rng.standard_normal((50, 8)), rng.standard_normal((12, 8))
    naive = -np.array([np.linalg.norm(train - q, axis=1).min() for q in x])
    np.testing.assert_allclose(nearest_neighbour_score(train, x), naive, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(feature_norm_score(x), np.sqrt((x**2).sum(1)))
