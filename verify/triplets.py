"""Triplet plumbing shared by the miners: Euclidean distances on L2-normalised embeddings, masks, all triplets."""

from __future__ import annotations

import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def pairwise_distances(embeddings: torch.Tensor, squared: bool = True) -> torch.Tensor:
    """Euclidean distances [B, B] between the rows of [B, D] (squared when asked), exact zeros on the diagonal."""
    d2 = torch.cdist(embeddings.float(), embeddings.float()).pow(2)
    d2.fill_diagonal_(0.0)
    return d2 if squared else d2.clamp_min(0).sqrt()


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive [B, B] same label but not self, negative [B, B] different label)."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def all_triplets(labels: torch.Tensor) -> Triplets:
    """Every valid (a, p, n) of the batch, each [T] (pytorch-metric-learning's `get_all_triplets_indices`)."""
    a, p, n = lmu.get_all_triplets_indices(labels)
    return a, p, n


def euclidean_distance(squared: bool = True) -> LpDistance:
    """The miners' distance as a pytorch-metric-learning object: Euclidean, squared by default, on the
    embeddings as given (already L2-normalised)."""
    return LpDistance(normalize_embeddings=False, p=2, power=2 if squared else 1)


def active_triplet_fraction(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2, squared: bool = True
) -> float:
    """Fraction of the batch's valid triplets with a positive triplet loss, d(a,n) < d(a,p) + margin."""
    with torch.no_grad():
        dist = pairwise_distances(embeddings.detach(), squared)
        a, p, n = all_triplets(labels)
        if len(a) == 0:
            return 0.0
        return float((dist[a, n] < dist[a, p] + margin).float().mean())
