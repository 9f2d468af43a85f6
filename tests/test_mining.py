"""Miners return only triplets meeting their condition; DWS probabilities follow the formula; the curriculum
moves as configured."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from verify.errors import ConfigError
from verify.mining import (
    CurriculumSchedule,
    HardMiner,
    SemiHardMiner,
    TripletCurriculumMiner,
    create_miner,
    distance_weighted_probabilities,
)


def _batch(seed: int = 0, n: int = 12, dim: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    emb = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(n, dim)), dtype=torch.float32), dim=1)
    return emb, torch.arange(n) // 3


def _d2(x: torch.Tensor, i: int, j: int) -> float:
    return float(((x[i] - x[j]) ** 2).sum())


def _naive(emb, labels, cond):
    n = len(labels)
    return {
        (a, p, k)
        for a in range(n)
        for p in range(n)
        for k in range(n)
        if a != p and labels[a] == labels[p] and labels[k] != labels[a] and cond(_d2(emb, a, p), _d2(emb, a, k))
    }


def _as_set(t):
    return set(zip(*(x.tolist() for x in t), strict=True))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_semihard_and_hard_match_naive(seed):
    emb, labels = _batch(seed)
    semi = _as_set(SemiHardMiner(margin=0.3)(emb, labels))
    hard = _as_set(HardMiner()(emb, labels))
    assert semi == _naive(emb, labels, lambda ap, an: ap < an < ap + 0.3)
    assert hard == _naive(emb, labels, lambda ap, an: an < ap)
    assert semi and hard and not semi & hard


def test_distance_weighted_probabilities_follow_formula():
    emb, labels = _batch(3, n=10, dim=8)
    cutoff, nz = 0.5, 1.4
    got = distance_weighted_probabilities(emb, labels, cutoff=cutoff, nonzero_loss_cutoff=nz).double()
    n = emb.shape[1]
    for a in range(len(labels)):
        w = []
        for j in range(len(labels)):
            d = max(math.sqrt(_d2(emb, a, j)), cutoff)
            ok = labels[j] != labels[a] and d < nz
            q = d ** (n - 2) * (1 - d * d / 4) ** ((n - 3) / 2)
            w.append(1.0 / q if ok else 0.0)
        if sum(w) == 0:  # fallback: uniform over negatives
            w = [float(labels[j] != labels[a]) for j in range(len(labels))]
        expected = torch.tensor(w, dtype=torch.float64) / sum(w)
        torch.testing.assert_close(got[a], expected, rtol=1e-4, atol=1e-7)


def test_distance_weighted_miner_samples_negatives():
    emb, labels = _batch(4)
    a, p, n = create_miner("distance_weighted", seed=0)(emb, labels)
    assert len(a) == 12 * 2  # one negative per positive pair
    assert bool((labels[a] == labels[p]).all()) and bool((labels[a] != labels[n]).all())


def test_curriculum_schedules():
    step = CurriculumSchedule(kind="step", start_epoch=3, final_fraction=0.7)
    assert [step.fraction(e) for e in (0, 2, 3, 9)] == [0, 0, 0.7, 0.7]
    lin = CurriculumSchedule(kind="linear", start_epoch=2, end_epoch=6, final_fraction=0.8)
    assert [lin.fraction(e) for e in (0, 2, 3, 4, 6, 10)] == pytest.approx([0, 0, 0.2, 0.4, 0.8, 0.8])
    plateau = TripletCurriculumMiner(CurriculumSchedule(kind="plateau", start_epoch=1, patience=2, final_fraction=1))
    for epoch, val in enumerate([0.30, 0.25, 0.25, 0.251]):
        plateau.set_epoch(epoch)
        assert plateau.mode == "semihard"
        plateau.report_validation(val)
    plateau.set_epoch(4)
    assert plateau.mode == "hard" and plateau.hard_fraction == 1.0
    with pytest.raises(ConfigError):
        CurriculumSchedule(kind="linear", start_epoch=5, end_epoch=5)
    with pytest.raises(ConfigError):
        CurriculumSchedule(kind="cosine")


def test_curriculum_miner_semihard_then_hard():
    emb, labels = _batch(5)
    sched = CurriculumSchedule(kind="step", start_epoch=1, final_fraction=1.0)
    miner = TripletCurriculumMiner(sched, margin=0.3)
    semi = _naive(emb, labels, lambda ap, an: ap < an < ap + 0.3)
    hard = _naive(emb, labels, lambda ap, an: an < ap)
    got = _as_set(miner(emb, labels))
    pairs_with_semi = {(a, p) for a, p, _ in semi}
    assert {t for t in got if t[:2] in pairs_with_semi} <= semi  # semi-hard wherever a pair has one
    assert {t for t in got if t[:2] not in pairs_with_semi} <= hard  # the fallback has a positive loss
    assert miner.last_stats["mode"] == "semihard"
    miner.set_epoch(1)
    got = _as_set(miner(emb, labels))
    pairs_with_hard = {(a, p) for a, p, _ in hard}
    assert miner.mode == "hard"
    assert {t for t in got if t[:2] in pairs_with_hard} <= hard
    assert len({t[:2] for t in got}) == len(got)  # one negative per positive pair


def test_curriculum_mix_fraction():
    emb, labels = _batch(6, n=48, dim=2)  # 2-D: most pairs have both kinds of negatives
    miner = TripletCurriculumMiner(CurriculumSchedule(kind="step", start_epoch=0, final_fraction=0.5), seed=1)
    miner(emb, labels)
    stats = miner.last_stats
    assert stats["mode"] == "mixed"
    assert 0.3 < stats["hard"] / stats["triplets"] < 0.8


def test_curriculum_logs_when_nothing_to_learn(caplog):
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])  # solved batch
    labels = torch.tensor([0, 0, 1, 1])
    miner = TripletCurriculumMiner()
    with caplog.at_level(logging.WARNING, logger="verify.mining"):
        a, _, _ = miner(emb, labels)
    assert len(a) == 0 and "no triplet with a positive loss" in caplog.text
    assert miner.last_stats["active_fraction"] == 0.0


def test_curriculum_state_round_trip():
    emb, labels = _batch(7)
    m1 = TripletCurriculumMiner(CurriculumSchedule(kind="step", start_epoch=0, final_fraction=0.5), seed=3)
    m1(emb, labels)
    m2 = TripletCurriculumMiner(CurriculumSchedule(kind="step", start_epoch=0, final_fraction=0.5), seed=99)
    m2.load_curriculum_state(m1.curriculum_state())
    assert _as_set(m1(emb, labels)) == _as_set(m2(emb, labels))


def test_create_miner_names():
    assert create_miner("none") is None
    assert isinstance(create_miner("curriculum", kind="step", start_epoch=2, margin=0.1), TripletCurriculumMiner)
    with pytest.raises(ConfigError, match="unknown miner"):
        create_miner("hardest")


def _pml(emb, labels, kind, margin=0.3):
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.miners import TripletMarginMiner

    miner = TripletMarginMiner(
        margin=margin, type_of_triplets=kind, distance=LpDistance(normalize_embeddings=False, power=2)
    )
    return _as_set(miner(emb, labels))


@pytest.mark.parametrize("seed", [0, 1])
def test_positive_margin_miner_and_all_triplets_match_naive(seed):
    from verify.mining import PositiveMarginMiner, all_triplets

    emb, labels = _batch(seed)
    assert _as_set(PositiveMarginMiner(margin=0.3)(emb, labels)) == _naive(emb, labels, lambda ap, an: an < ap + 0.3)
    assert _as_set(all_triplets(labels)) == _naive(emb, labels, lambda ap, an: True)


@pytest.mark.parametrize("seed", [2, 3])
def test_curriculum_picks_within_pytorch_metric_learning_sets(seed):
    """Semi-hard mode takes PML's semi-hard triplets (else a positive-loss fallback); hard mode PML's hard ones."""
    emb, labels = _batch(seed, n=24, dim=2)
    semi, hard, loss = _pml(emb, labels, "semihard"), _pml(emb, labels, "hard"), _pml(emb, labels, "all")
    miner = TripletCurriculumMiner(CurriculumSchedule(kind="step", start_epoch=1, final_fraction=1.0), margin=0.3)
    got = _as_set(miner(emb, labels))
    with_semi = {t[:2] for t in semi}
    assert got and {t for t in got if t[:2] in with_semi} <= semi
    assert {t for t in got if t[:2] not in with_semi} <= loss
    assert with_semi <= {t[:2] for t in got}  # every pair with a semi-hard negative gets one
    miner.set_epoch(1)
    got = _as_set(miner(emb, labels))
    with_hard = {t[:2] for t in hard}
    assert {t for t in got if t[:2] in with_hard} <= hard and with_hard <= {t[:2] for t in got}


def test_distance_weighted_negatives_are_valid_pml_triplets():
    emb, labels = _batch(8, n=15, dim=4)
    got = _as_set(create_miner("distance_weighted", seed=0)(emb, labels))
    assert got and got <= _pml(emb, labels, "all", margin=float("inf"))
