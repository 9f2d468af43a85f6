"""Each loss against a naive loop over pairs / triplets on small random embeddings."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from verify.errors import ConfigError
from verify.losses import create_loss


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    emb = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(8, 4)), dtype=torch.float64), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3])
    return emb, labels


def _d(x: torch.Tensor, i: int, j: int) -> float:
    return float(torch.linalg.norm(x[i] - x[j]))


def _pairs(labels: torch.Tensor):
    n = len(labels)
    pos = [(i, j) for i, j in itertools.permutations(range(n), 2) if labels[i] == labels[j]]
    neg = [(i, j) for i, j in itertools.permutations(range(n), 2) if labels[i] != labels[j]]
    return pos, neg


def _triplets(labels: torch.Tensor):
    pos, _ = _pairs(labels)
    return [(a, p, n) for a, p in pos for n in range(len(labels)) if labels[n] != labels[a]]


def _reduce(values: list[float], reducer: str) -> float:
    if reducer == "avg_nonzero":
        values = [v for v in values if v > 0]
    return sum(values) / len(values) if values else 0.0


@pytest.mark.parametrize("reducer", ["mean", "avg_nonzero"])
def test_contrastive_squared_matches_course_definition(batch, reducer):
    emb, labels = batch
    alpha = 1.5
    pos, neg = _pairs(labels)
    naive = _reduce([_d(emb, i, j) ** 2 for i, j in pos], reducer) + _reduce(
        [max(0.0, alpha - _d(emb, i, j) ** 2) for i, j in neg], reducer
    )
    got = create_loss("contrastive", margin=alpha, reducer=reducer)(emb, labels)
    assert float(got) == pytest.approx(naive, rel=1e-6)


def test_contrastive_hadsell_squared_hinge(batch):
    emb, labels = batch
    m = 1.2
    pos, neg = _pairs(labels)
    naive = _reduce([_d(emb, i, j) ** 2 for i, j in pos], "mean") + _reduce(
        [max(0.0, m - _d(emb, i, j)) ** 2 for i, j in neg], "mean"
    )
    got = create_loss("contrastive", margin=m, variant="hadsell")(emb, labels)
    assert float(got) == pytest.approx(naive, rel=1e-6)


@pytest.mark.parametrize("reducer", ["mean", "avg_nonzero"])
def test_triplet_uses_squared_distances(batch, reducer):
    emb, labels = batch
    alpha = 0.2
    per = [max(_d(emb, a, p) ** 2 - _d(emb, a, n) ** 2 + alpha, 0.0) for a, p, n in _triplets(labels)]
    got = create_loss("triplet", margin=alpha, reducer=reducer)(emb, labels)
    assert float(got) == pytest.approx(_reduce(per, reducer), rel=1e-6)
    plain = [max(_d(emb, a, p) - _d(emb, a, n) + alpha, 0.0) for a, p, n in _triplets(labels)]
    assert float(got) != pytest.approx(_reduce(plain, reducer), rel=1e-3)  # pml's default is not squared


def test_triplet_respects_mined_indices(batch):
    emb, labels = batch
    a, p, n = torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([7, 0])
    per = [max(_d(emb, i, j) ** 2 - _d(emb, i, k) ** 2 + 0.2, 0.0) for i, j, k in zip(a, p, n, strict=True)]
    got = create_loss("triplet", reducer="mean")(emb, labels, (a, p, n))
    assert float(got) == pytest.approx(sum(per) / 2, rel=1e-6)


@pytest.mark.parametrize("per_class", [False, True])
def test_margin_loss_with_beta(batch, per_class):
    emb, labels = batch
    alpha = 0.2
    loss = create_loss("margin", margin=alpha, beta=1.0, num_classes=4 if per_class else None)
    with torch.no_grad():
        loss.beta.copy_(torch.tensor([0.9, 1.0, 1.1, 1.2]) if per_class else torch.tensor([1.05]))
    beta = loss.beta.detach().tolist()
    terms = []
    for a, p, n in _triplets(labels):
        b = beta[int(labels[a])] if per_class else beta[0]
        terms += [max(_d(emb, a, p) - b + alpha, 0.0), max(b - _d(emb, a, n) + alpha, 0.0)]
    naive = sum(terms) / sum(t > 0 for t in terms)
    assert float(loss(emb, labels).detach()) == pytest.approx(naive, rel=1e-6)
    assert isinstance(loss.beta, torch.nn.Parameter)  # learned


def test_ntxent(batch):
    emb, labels = batch
    tau = 0.3
    pos, neg = _pairs(labels)
    terms = []
    for a, p in pos:
        s_ap = math.exp(float(emb[a] @ emb[p]) / tau)
        s_neg = sum(math.exp(float(emb[a] @ emb[n]) / tau) for i, n in neg if i == a)
        terms.append(-math.log(s_ap / (s_ap + s_neg)))
    got = create_loss("ntxent", temperature=tau)(emb, labels)
    assert float(got) == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_losses_backpropagate(batch):
    emb, labels = batch
    for name in ["contrastive", "triplet", "margin", "ntxent"]:
        x = emb.clone().float().requires_grad_(True)
        create_loss(name)(x, labels).backward()
        assert x.grad is not None and float(x.grad.abs().sum()) > 0, name


def test_bad_loss_config():
    with pytest.raises(ConfigError, match="unknown loss"):
        create_loss("arcface")
    with pytest.raises(ConfigError, match="bad parameters"):
        create_loss("triplet", marign=0.1)
    with pytest.raises(ConfigError, match="margin must be > 0"):
        create_loss("contrastive", margin=0)
