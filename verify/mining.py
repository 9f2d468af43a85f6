"""Triplet miners and the FaceNet semi-hard -> hard curriculum.

Miners follow pytorch-metric-learning: ``miner(embeddings [B, D], labels [B]) -> (a, p, n)``, three index
tensors [T] into the batch, to pass as ``indices_tuple`` to a loss. Distances are Euclidean on L2-normalised
embeddings, squared by default as in FaceNet (``squared=False`` for plain distances).

- `SemiHardMiner`, `HardMiner`, `PositiveMarginMiner`: pytorch-metric-learning's `TripletMarginMiner`
  (``type_of_triplets`` "semihard": d(a,p) < d(a,n) <= d(a,p) + alpha; "hard": d(a,n) <= d(a,p); "all":
  d(a,n) <= d(a,p) + alpha) on these distances, plus the batch statistics training logs.
- `DistanceWeightedMiner` (Wu et al. 2017): one negative per positive pair, drawn with probability
  proportional to 1 / q(d), q(d) ∝ d^(n-2) (1 - d^2/4)^((n-3)/2) the density of distances on the unit sphere.
- `TripletCurriculumMiner` (in `verify.curriculum`): one negative per positive pair, semi-hard at first, hard
  with a probability that a `CurriculumSchedule` raises (step, linear, or on validation plateau).
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_metric_learning.miners import BaseMiner, TripletMarginMiner

from verify.curriculum import CurriculumSchedule, TripletCurriculumMiner
from verify.errors import ConfigError
from verify.triplets import (
    Triplets,
    active_triplet_fraction,
    all_triplets,
    euclidean_distance,
    pair_masks,
    pairwise_distances,
)


class _MarginMiner(TripletMarginMiner):
    """pytorch-metric-learning's `TripletMarginMiner` of one `type_of_triplets`, on `euclidean_distance`;
    `last_stats` describes the last batch (triplets kept, share of all triplets with a positive loss)."""

    type_of_triplets = "all"

    def __init__(self, margin: float = 0.2, squared: bool = True, **kwargs: Any) -> None:
        super().__init__(
            margin=float(margin), type_of_triplets=self.type_of_triplets, distance=euclidean_distance(squared), **kwargs
        )
        self.squared = squared
        self.last_stats: dict[str, Any] = {}

    def mine(self, embeddings, labels, ref_emb, ref_labels) -> Triplets:  # type: ignore[override]
        a, p, n = super().mine(embeddings, labels, ref_emb, ref_labels)
        active = active_triplet_fraction(embeddings, labels, self.margin, self.squared)
        self.last_stats = {"triplets": len(a), "active_fraction": active}
        return a, p, n


class SemiHardMiner(_MarginMiner):
    """Triplets with d(a,p) < d(a,n) <= d(a,p) + margin (FaceNet's semi-hard negatives)."""

    type_of_triplets = "semihard"


class HardMiner(_MarginMiner):
    """Triplets with d(a,n) <= d(a,p) (the negative is at least as close as the positive)."""

    type_of_triplets = "hard"


class PositiveMarginMiner(_MarginMiner):
    """Every triplet with a positive loss, d(a,n) <= d(a,p) + margin."""

    type_of_triplets = "all"


def distance_weighted_probabilities(
    embeddings: torch.Tensor, labels: torch.Tensor, cutoff: float = 0.5, nonzero_loss_cutoff: float = 1.4
) -> torch.Tensor:
    """Sampling probabilities [B, B] of each negative per anchor row (rows sum to 1, or 0 with no negative).

    Weight of a negative at Euclidean distance d: 1 / q(d) with
    log q(d) = (n - 2) log d + (n - 3) / 2 log(1 - d^2 / 4), d clipped below at `cutoff`, computed in log space
    and shifted by the row maximum; negatives at d >= `nonzero_loss_cutoff` get weight 0 (no loss to learn).
    An anchor whose negatives are all that far falls back to uniform over its negatives.
    """
    n = float(embeddings.shape[1])
    dist = pairwise_distances(embeddings, squared=False).clamp_min(cutoff)
    inner = (1.0 - 0.25 * dist.pow(2)).clamp_min(1e-8)
    log_w = -((n - 2.0) * dist.log() + 0.5 * (n - 3.0) * inner.log())
    _, neg = pair_masks(labels)
    usable = neg & (dist < nonzero_loss_cutoff)
    log_w = log_w.masked_fill(~usable, float("-inf"))
    row_max = log_w.max(dim=1, keepdim=True).values
    w = torch.exp(log_w - torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max)))
    empty = ~usable.any(dim=1)
    w[empty] = neg[empty].float()
    return w / w.sum(dim=1, keepdim=True).clamp_min(1e-30)


class DistanceWeightedMiner(BaseMiner):
    """One negative per positive pair (a, p), drawn by `distance_weighted_probabilities` of anchor a."""

    def __init__(self, cutoff: float = 0.5, nonzero_loss_cutoff: float = 1.4, seed: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.cutoff, self.nonzero_loss_cutoff = float(cutoff), float(nonzero_loss_cutoff)
        self.generator = torch.Generator().manual_seed(seed)
        self.last_stats: dict[str, Any] = {}

    def mine(self, embeddings, labels, ref_emb, ref_labels) -> Triplets:  # type: ignore[override]
        probs = distance_weighted_probabilities(embeddings, labels, self.cutoff, self.nonzero_loss_cutoff)
        pos, _ = pair_masks(labels)
        a, p = torch.where(pos)
        has_neg = probs[a].sum(dim=1) > 0
        a, p = a[has_neg], p[has_neg]
        if len(a) == 0:
            empty = torch.zeros(0, dtype=torch.long, device=labels.device)
            return empty, empty, empty
        n = torch.multinomial(probs[a].cpu(), 1, generator=self.generator).squeeze(1).to(labels.device)
        self.last_stats = {"triplets": len(a)}
        return a, p, n


def create_miner(name: str | None, **params: Any) -> BaseMiner | None:
    """A miner by name: "none" (the loss forms all pairs/triplets), "semihard", "hard", "positive_margin",
    "distance_weighted", "curriculum" (params of `CurriculumSchedule` plus margin, squared, seed)."""
    if name in (None, "none"):
        return None
    simple = {"semihard": SemiHardMiner, "hard": HardMiner, "positive_margin": PositiveMarginMiner}
    try:
        if name in simple:
            return simple[name](**params)
        if name == "distance_weighted":
            return DistanceWeightedMiner(**params)
        if name == "curriculum":
            keys = set(CurriculumSchedule.__dataclass_fields__)
            schedule = CurriculumSchedule(**{k: v for k, v in params.items() if k in keys})
            return TripletCurriculumMiner(schedule, **{k: v for k, v in params.items() if k not in keys})
    except TypeError as exc:
        raise ConfigError(f"bad parameters for miner {name!r}: {exc}") from exc
    raise ConfigError(
        f"unknown miner {name!r}; known: none, semihard, hard, positive_margin, distance_weighted, curriculum"
    )


__all__ = [
    "CurriculumSchedule",
    "DistanceWeightedMiner",
    "HardMiner",
    "PositiveMarginMiner",
    "SemiHardMiner",
    "TripletCurriculumMiner",
    "active_triplet_fraction",
    "all_triplets",
    "create_miner",
    "distance_weighted_probabilities",
    "euclidean_distance",
    "pairwise_distances",
]
