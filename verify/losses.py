"""Metric-learning losses by name: thin configurations of pytorch-metric-learning plus what it lacks.

Every loss takes L2-normalised embeddings [B, D] and integer labels [B] (and optionally a miner's index tuple),
as pytorch-metric-learning losses do: ``loss(embeddings, labels, indices_tuple) -> scalar``.

- ``contrastive``: the course definition on squared distances, L = D^2 (positive pair) and
  max(0, alpha - D^2) (negative pair); ``variant="hadsell"`` gives D^2 and max(0, m - D)^2 instead.
- ``triplet``: FaceNet, max(||a-p||^2 - ||a-n||^2 + alpha, 0) on *squared* distances (pml's default is not).
- ``margin``: Wu et al. 2017, learned beta shared or per class (pml ``MarginLoss``).
- ``ntxent``: SimCLR / SupCon style NT-Xent with a temperature (pml ``NTXentLoss``).
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import reducers
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance

from verify.errors import ConfigError
from verify.mining import create_miner

__all__ = ["LOSSES", "HadsellContrastiveLoss", "create_loss", "create_miner"]


def _reducer(name: str) -> reducers.BaseReducer:
    """'mean' averages every term; 'avg_nonzero' averages the terms with a positive loss (pml's default)."""
    if name == "mean":
        return reducers.MeanReducer()
    if name == "avg_nonzero":
        return reducers.AvgNonZeroReducer()
    raise ConfigError(f"unknown loss reducer {name!r}; use 'mean' or 'avg_nonzero'")


class HadsellContrastiveLoss(pml_losses.ContrastiveLoss):
    """Contrastive loss of Hadsell et al. 2006 on Euclidean distance: D^2 for positive pairs and
    max(0, m - D)^2 for negative pairs (pml's ContrastiveLoss has no squared hinge)."""

    def pos_calc(self, pos_pair_dist: torch.Tensor, margin: float) -> torch.Tensor:
        return torch.nn.functional.relu(pos_pair_dist - margin) ** 2

    def neg_calc(self, neg_pair_dist: torch.Tensor, margin: float) -> torch.Tensor:
        return torch.nn.functional.relu(margin - neg_pair_dist) ** 2


def _contrastive(margin: float = 0.5, variant: str = "squared", reducer: str = "mean") -> torch.nn.Module:
    """Contrastive loss; ``margin`` is alpha on D^2 (variant "squared") or m on D (variant "hadsell")."""
    if margin <= 0:
        raise ConfigError(f"contrastive margin must be > 0, got {margin}")
    if variant == "squared":
        return pml_losses.ContrastiveLoss(
            pos_margin=0.0, neg_margin=margin, distance=LpDistance(power=2), reducer=_reducer(reducer)
        )
    if variant == "hadsell":
        return HadsellContrastiveLoss(
            pos_margin=0.0, neg_margin=margin, distance=LpDistance(power=1), reducer=_reducer(reducer)
        )
    raise ConfigError(f"unknown contrastive variant {variant!r}; use 'squared' or 'hadsell'")


def _triplet(margin: float = 0.2, squared: bool = True, reducer: str = "avg_nonzero") -> torch.nn.Module:
    """FaceNet triplet loss; squared Euclidean distances unless ``squared=False``."""
    if margin <= 0:
        raise ConfigError(f"triplet margin must be > 0, got {margin}")
    return pml_losses.TripletMarginLoss(
        margin=margin, distance=LpDistance(power=2 if squared else 1), reducer=_reducer(reducer)
    )


def _margin(
    margin: float = 0.2,
    beta: float = 1.2,
    learn_beta: bool = True,
    num_classes: int | None = None,
    nu: float = 0.0,
) -> torch.nn.Module:
    """Margin loss (Wu et al. 2017) on Euclidean distance; ``num_classes`` gives one beta per class
    (labels must then be 0..num_classes-1), else one shared beta. A learned beta is an nn.Parameter of the
    loss: give ``loss.parameters()`` to the optimizer."""
    if num_classes is not None and num_classes < 1:
        raise ConfigError(f"margin loss num_classes must be >= 1, got {num_classes}")
    return pml_losses.MarginLoss(margin=margin, beta=beta, learn_beta=learn_beta, num_classes=num_classes, nu=nu)


def _ntxent(temperature: float = 0.1) -> torch.nn.Module:
    """NT-Xent on cosine similarity; every same-label pair of the batch is a positive."""
    if temperature <= 0:
        raise ConfigError(f"ntxent temperature must be > 0, got {temperature}")
    return pml_losses.NTXentLoss(temperature=temperature, distance=CosineSimilarity())


LOSSES: dict[str, Any] = {
    "contrastive": _contrastive,
    "triplet": _triplet,
    "margin": _margin,
    "ntxent": _ntxent,
}


def create_loss(name: str, **params: Any) -> torch.nn.Module:
    """A loss by name ("contrastive", "triplet", "margin", "ntxent") with its parameters.

    Raises:
        ConfigError: unknown name or parameter, or an invalid value.
    """
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}")
    try:
        return LOSSES[name](**params)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for loss {name!r}: {exc}") from exc
