"""Metrics against scikit-learn and naive loops over thresholds, plus hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from verify.eval import metrics


@pytest.fixture
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    genuine = rng.normal(0.6, 0.15, 300)
    impostor = rng.normal(0.2, 0.15, 2000)
    return genuine, impostor


def _naive_far_frr(g: np.ndarray, i: np.ndarray, t: float) -> tuple[float, float]:
    return float(np.mean(i >= t)), float(np.mean(g < t))


def test_roc_det_auc_equal_sklearn(scores):
    g, i = scores
    labels = np.r_[np.ones(g.size), np.zeros(i.size)]
    fpr, tpr, thr = roc_curve(labels, np.r_[g, i], drop_intermediate=False)
    far, tar, thresholds = metrics.roc(g, i)
    np.testing.assert_array_equal(far, fpr)
    np.testing.assert_array_equal(tar, tpr)
    np.testing.assert_array_equal(thresholds, thr)
    _, frr, _ = metrics.det(g, i)
    np.testing.assert_allclose(frr, 1 - tpr)
    assert metrics.auc(g, i) == pytest.approx(roc_auc_score(labels, np.r_[g, i]))


def test_eer_matches_naive_threshold_sweep(scores):
    g, i = scores
    rate, threshold = metrics.eer(g, i)
    grid = np.unique(np.r_[g, i])
    gaps = [abs(np.subtract(*_naive_far_frr(g, i, t))) for t in grid]
    best = grid[int(np.argmin(gaps))]
    far, frr = _naive_far_frr(g, i, best)
    assert rate == pytest.approx((far + frr) / 2, abs=2 / g.size)
    far_t, frr_t = _naive_far_frr(g, i, threshold)
    assert far_t == pytest.approx(rate, abs=2 / g.size)
    assert frr_t == pytest.approx(rate, abs=2 / g.size)


def test_eer_extremes():
    rate, threshold = metrics.eer([0.9, 0.8, 0.7], [0.1, 0.2, 0.3])
    assert rate == 0.0
    assert 0.3 < threshold <= 0.7
    rng = np.random.default_rng(1)
    rate, _ = metrics.eer(rng.normal(size=4000), rng.normal(size=4000))
    assert rate == pytest.approx(0.5, abs=0.03)
    rate, _ = metrics.eer([0.1, 0.2], [0.8, 0.9])  # inverted scores
    assert rate == 1.0


def test_tar_at_far_matches_naive(scores):
    g, i = scores
    for far in (0.1, 0.01):
        tar, threshold = metrics.tar_at_far(g, i, far)
        candidates = [t for t in np.unique(np.r_[g, i]) if np.mean(i >= t) <= far]
        lowest = min(candidates)
        assert threshold == pytest.approx(lowest)
        assert tar == pytest.approx(np.mean(g >= lowest))
        frr, thr2 = metrics.frr_at_far(g, i, far)
        assert frr == pytest.approx(1 - tar) and thr2 == threshold


def test_tar_at_far_refuses_without_enough_impostors(scores):
    g, i = scores
    assert metrics.tar_at_far(g, i[:500], 1e-3) == (None, None)
    assert metrics.frr_at_far(g, i[:500], 1e-3) == (None, None)
    tar, threshold = metrics.tar_at_far(g, i[:500], 1e-3, strict=False)
    assert tar is not None and np.mean(i[:500] >= threshold) <= 1e-3
    assert not metrics.has_enough_impostors(999, 1e-3) and metrics.has_enough_impostors(1000, 1e-3)


def test_tar_at_far_top_score_is_impostor():
    tar, threshold = metrics.tar_at_far([0.5, 0.6], [0.9] + [0.0] * 99, 0.001, strict=False)
    assert tar == 0.0 and threshold > 0.9


def test_accuracy_at():
    assert metrics.accuracy_at([0.9, 0.4], [0.1, 0.6], 0.5) == 0.5
    assert metrics.accuracy_at([0.5], [0.49], 0.5) == 1.0  # accept score >= threshold


def test_best_accuracy_threshold_matches_naive(scores):
    g, i = scores
    s, y = np.r_[g, i], np.r_[np.ones(g.size), np.zeros(i.size)]
    t, acc = metrics.best_accuracy_threshold(s, y)
    naive = max(np.mean((s >= c) == y) for c in np.r_[np.unique(s), np.inf])
    assert acc == pytest.approx(naive)
    assert np.mean((s >= t) == y) == pytest.approx(acc)


def test_kfold_never_uses_test_fold_threshold():
    # Folds 1..4 are separated at any threshold in (0.2, 0.8]; fold 0 needs one in (0.3, 0.45].
    # Tuning on all data would pick 0.375 and score 100%; held out, fold 0 gets 0.5 and scores 50%.
    scores = np.array([0.45, 0.3] + [0.8, 0.2] * 4)
    labels = np.array([1, 0] + [1, 0] * 4)
    folds = np.repeat(np.arange(5), 2)
    mean, std, thresholds = metrics.kfold_accuracy(scores, labels, folds)
    assert thresholds[0] == pytest.approx(0.5)
    assert thresholds[1] == pytest.approx(0.375)
    assert mean == pytest.approx((0.5 + 4) / 5)
    assert std > 0
    # int folds = contiguous blocks, the LFW pairs.txt order
    assert metrics.kfold_accuracy(scores, labels, 5)[0] == pytest.approx(mean)


def test_kfold_separable_is_perfect(scores):
    g, i = scores
    s = np.r_[g + 10, i]
    y = np.r_[np.ones(g.size), np.zeros(i.size)]
    order = np.random.default_rng(0).permutation(s.size)
    mean, std, thresholds = metrics.kfold_accuracy(s[order], y[order], 10)
    assert mean == 1.0 and std == 0.0 and len(thresholds) == 10


def test_signature_errors_hand_case():
    out = metrics.signature_errors([0.9, 0.8, 0.3, 0.7], [0.6, 0.4], [0.1, 0.55, 0.2, 0.0], 0.5)
    assert out == {"FRR": 0.25, "FAR_skilled": 0.5, "FAR_random": 0.25}
    assert metrics.signature_errors([0.9], [], [0.1], 0.5)["FAR_skilled"] is None


def test_signature_eer_global_vs_per_writer():
    # Each writer is perfectly separated at its own threshold, but no single threshold separates both.
    genuine = {"A": [0.9, 0.8], "B": [0.5, 0.4]}
    forged = {"A": [0.6, 0.7], "B": [0.2, 0.1], "C": [0.3]}
    out = metrics.signature_eer(genuine, forged)
    assert out["eer_per_writer"] == 0.0
    assert out["auc_per_writer"] == 1.0
    assert out["eer_global"] == pytest.approx(0.5)
    assert out["threshold_global"] == pytest.approx(0.6)
    assert out["n_writers"] == 2 and set(out["per_writer"]) == {"A", "B"}
    assert 0.7 < out["per_writer"]["A"]["threshold"] <= 0.8


def test_open_set_identification_hand_case():
    sim = np.array([[0.9, 0.1], [0.4, 0.3], [0.2, 0.8], [0.7, 0.1], [0.3, 0.2]])
    top = metrics.top1_from_similarities(sim, ["a", "b"], ["a", "a", "a", "x", "y"])
    np.testing.assert_array_equal(top["mated_correct"], [True, True, False])
    np.testing.assert_allclose(top["nonmated_scores"], [0.7, 0.3])
    out = metrics.open_set_identification(top["mated_scores"], top["mated_correct"], top["nonmated_scores"], 0.5)
    assert out["FPIR"] == 0.5  # 0.7 returned a candidate, 0.3 did not
    assert out["FNIR"] == pytest.approx(2 / 3)  # 0.4 below threshold, 0.8 is the wrong identity
    assert out["rank1"] == pytest.approx(2 / 3)


def test_fnir_at_fpir_matches_naive():
    rng = np.random.default_rng(3)
    ms, ns = rng.normal(0.7, 0.1, 200), rng.normal(0.3, 0.1, 400)
    mc = rng.random(200) < 0.9
    out = metrics.fnir_at_fpir(ms, mc, ns, (0.1, 0.01, 0.001))
    assert out[0.001]["fnir"] is None  # 400 non-mated searches cannot measure FPIR 1e-3
    for target in (0.1, 0.01):
        t = out[target]["threshold"]
        assert np.mean(ns >= t) <= target
        lower = max(s for s in ns if s < t)  # any lower threshold would exceed the target
        assert np.mean(ns >= lower) > target
        assert out[target]["fnir"] == pytest.approx(1 - np.mean(mc & (ms >= t)))


def test_bootstrap_ci_contains_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    gen = {f"id{k}": rng.normal(0.6, 0.2, 5) for k in range(30)}
    imp = {f"id{k}": rng.normal(0.2, 0.2, 20) for k in range(30)}
    point, _ = metrics.eer(np.concatenate(list(gen.values())), np.concatenate(list(imp.values())))
    low, high = metrics.bootstrap_ci(gen, imp, metrics.eer, n=200)
    assert low < point < high
    assert (low, high) == metrics.bootstrap_ci(gen, imp, metrics.eer, n=200)
    assert (low, high) != metrics.bootstrap_ci(gen, imp, metrics.eer, n=200, seed=1)
    always_none = metrics.bootstrap_ci(gen, imp, lambda g, i: metrics.tar_at_far(g, i, 1e-4), n=20)
    assert always_none == (None, None)


def test_bootstrap_resamples_identities_not_pairs():
    # Two identities, each with constant scores: resampling identities can only give the EERs of
    # {A}, {B} or {A, B}; resampling pairs would give many other values.
    gen = {"A": np.full(50, 0.9), "B": np.full(50, 0.5)}
    imp = {"A": np.full(50, 0.6), "B": np.full(50, 0.1)}
    seen = set()
    for seed in range(5):
        low, high = metrics.bootstrap_ci(gen, imp, metrics.eer, n=50, seed=seed, alpha=0.5)
        seen |= {round(low, 9), round(high, 9)}
    assert seen <= {0.0, round(metrics.eer(np.r_[gen["A"], gen["B"]], np.r_[imp["A"], imp["B"]])[0], 9)}


def test_threshold_above_top_impostor_holds_in_float32():
    # float32 scores just above 1.0 (rounding of unit vectors); a float64 step above them would vanish
    top = np.float32(1.0000001)
    genuine, impostor = np.array([top] * 3, np.float32), np.array([top] + [0.5] * 199, np.float32)
    tar, threshold = metrics.tar_at_far(genuine, impostor, 0.001, strict=False)
    assert tar == 0.0 and np.mean(impostor >= threshold) == 0.0  # compared in float32 by numpy
    out = metrics.fnir_at_fpir(genuine, [True] * 3, impostor, (0.005,))
    assert np.mean(impostor >= out[0.005]["threshold"]) <= 0.005


def test_roc_summary_equals_single_metrics(scores):
    g, i = scores
    summary = metrics.roc_summary(g, i, (0.1, 0.01, 1e-4))
    assert (summary["eer"], summary["eer_threshold"]) == metrics.eer(g, i)
    assert summary["auc"] == pytest.approx(metrics.auc(g, i), abs=1e-12)
    assert summary["tar@far=0.1"] == metrics.tar_at_far(g, i, 0.1)[0]
    assert summary["tar@far=0.01"] == metrics.tar_at_far(g, i, 0.01)[0]
    assert summary["tar@far=0.0001"] is None  # 2000 impostors cannot measure 1e-4
    tied = metrics.roc_summary([0.5, 0.5, 0.7], [0.5, 0.2])  # ties count half in the AUC
    assert tied["auc"] == pytest.approx(roc_auc_score([1, 1, 1, 0, 0], [0.5, 0.5, 0.7, 0.5, 0.2]))


def test_bootstrap_cis_shares_replicates_with_bootstrap_ci():
    rng = np.random.default_rng(2)
    gen = {f"id{k}": rng.normal(0.6, 0.2, 4) for k in range(20)}
    imp = {f"id{k}": rng.normal(0.2, 0.2, 30) for k in range(20)}
    many = metrics.bootstrap_cis(gen, imp, lambda g, i: metrics.roc_summary(g, i, (0.01,)), n=100, seed=5)
    assert many["eer"] == metrics.bootstrap_ci(gen, imp, metrics.eer, n=100, seed=5)
    assert many["auc"][0] == pytest.approx(metrics.bootstrap_ci(gen, imp, metrics.auc, n=100, seed=5)[0])
    assert metrics.bootstrap_cis({}, {}, lambda g, i: {"x": 1.0}) == {}
