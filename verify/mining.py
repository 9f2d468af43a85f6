"""Triplet miners and the FaceNet semi-hard -> hard curriculum.

Miners follow pytorch-metric-learning: ``miner(embeddings [B, D], labels [B]) -> (a, p, n)``, three index
tensors [T] into the batch, to pass as ``indices_tuple`` to a loss. Distances are Euclidean on L2-normalised
embeddings, squared by default as in FaceNet (``squared=False`` for plain distances).

- `SemiHardMiner`, `HardMiner`, `PositiveMarginMiner`: pytorch-metric-learning's `TripletMarginMiner`
  (``type_of_triplets`` "semihard": d(a,p) < d(a,n) <= d(a,p) + alpha; "hard": d(a,n) <= d(a,p); "all":
  d(a,n) <= d(a,p) + alpha) on these distances, plus the batch statistics training logs.
- `DistanceWeightedMiner` (Wu et al. 2017): one negative per positive pair, drawn with probability
  proportional to 1 / q(d), q(d) ∝ d^(n-2) (1 - d^2/4)^((n-3)/2) the density of distances on the unit sphere.
- `TripletCurriculumMiner`: one negative per positive pair, semi-hard at first, hard with a probability that
  a `CurriculumSchedule` raises (step, linear, or on validation plateau).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.miners import BaseMiner, TripletMarginMiner
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from verify.errors import ConfigError

log = logging.getLogger(__name__)
Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def pairwise_distances(embeddings: torch.Tensor, squared: bool = True) -> torch.Tensor:
    """Euclidean distances [B, B] between the rows of [B, D] (squared when asked), exact zeros on the diagonal."""
    d2 = torch.cdist(embeddings.float(), embeddings.float()).pow(2)
    d2.fill_diagonal_(0.0)
    return d2 if squared else d2.clamp_min(0).sqrt()


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
    _, neg = _masks(labels)
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
        pos, _ = _masks(labels)
        a, p = torch.where(pos)
        has_neg = probs[a].sum(dim=1) > 0
        a, p = a[has_neg], p[has_neg]
        if len(a) == 0:
            empty = torch.zeros(0, dtype=torch.long, device=labels.device)
            return empty, empty, empty
        n = torch.multinomial(probs[a].cpu(), 1, generator=self.generator).squeeze(1).to(labels.device)
        self.last_stats = {"triplets": len(a)}
        return a, p, n


_SCHEDULES = ("step", "linear", "plateau")


@dataclass(frozen=True)
class CurriculumSchedule:
    """When the curriculum miner moves from semi-hard to hard negatives.

    The hard fraction (probability that a positive pair gets its hardest negative rather than its hardest
    semi-hard one) is 0 before `start_epoch`, then:
    - "step": `final_fraction` from `start_epoch` on;
    - "linear": rises linearly to `final_fraction` at `end_epoch`;
    - "plateau": jumps to `final_fraction` once validation has not improved by `min_delta` for `patience`
      epochs (at or after `start_epoch`).
    """

    kind: str = "linear"  # "step" | "linear" | "plateau"
    start_epoch: int = 2  # first epoch (0-based) that may use hard negatives
    end_epoch: int = 10  # "linear": epoch at which the hard fraction reaches final_fraction
    final_fraction: float = 0.5  # the mix at the end: 0 = semi-hard only, 1 = hard only
    patience: int = 2  # "plateau": epochs without improvement that count as a plateau
    min_delta: float = 1e-3  # "plateau": smallest decrease of the validation metric that counts

    def __post_init__(self) -> None:
        if self.kind not in _SCHEDULES:
            raise ConfigError(f"curriculum kind must be one of {_SCHEDULES}, got {self.kind!r}")
        if not 0.0 <= self.final_fraction <= 1.0:
            raise ConfigError(f"curriculum final_fraction must be in [0, 1], got {self.final_fraction}")
        if self.start_epoch < 0 or (self.kind == "linear" and self.end_epoch <= self.start_epoch):
            raise ConfigError(
                f"curriculum needs 0 <= start_epoch < end_epoch, got {self.start_epoch}, {self.end_epoch}"
            )
        if self.patience < 1:
            raise ConfigError(f"curriculum patience must be >= 1, got {self.patience}")

    def fraction(self, epoch: int, plateaued: bool = False) -> float:
        """The hard fraction at `epoch` (0-based); `plateaued` says a plateau was seen (kind "plateau")."""
        if epoch < self.start_epoch:
            return 0.0
        if self.kind == "step":
            return self.final_fraction
        if self.kind == "plateau":
            return self.final_fraction if plateaued else 0.0
        ramp = (epoch - self.start_epoch) / (self.end_epoch - self.start_epoch)
        return self.final_fraction * min(1.0, ramp)


class TripletCurriculumMiner(BaseMiner):
    """FaceNet curriculum: one negative per positive pair (a, p), semi-hard first, then hard.

    For each positive pair, with probability `hard_fraction` the hardest negative d(a,n) < d(a,p) is taken,
    otherwise the hardest semi-hard one, d(a,p) < d(a,n) < d(a,p) + margin. A pair without the wanted kind
    takes the other kind; a pair with neither falls back to its hardest negative when that still has a
    positive loss (counted as "fallback"). A batch with no triplet of positive loss at all is logged.
    Call `set_epoch` each epoch and `report_validation` after each validation (for "plateau").
    """

    def __init__(
        self,
        schedule: CurriculumSchedule | None = None,
        margin: float = 0.2,
        squared: bool = True,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.schedule = schedule or CurriculumSchedule()
        self.margin, self.squared = float(margin), squared
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.plateaued, self.best, self.bad_epochs = 0, False, float("inf"), 0
        self.last_stats: dict[str, Any] = {}

    @property
    def hard_fraction(self) -> float:
        """Current probability of a hard negative per positive pair."""
        return self.schedule.fraction(self.epoch, self.plateaued)

    @property
    def mode(self) -> str:
        """The current mode: "semihard", "mixed" or "hard"."""
        f = self.hard_fraction
        return "semihard" if f <= 0 else "hard" if f >= 1 else "mixed"

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def report_validation(self, value: float) -> None:
        """Record a validation metric (lower is better, e.g. EER) for the "plateau" schedule."""
        if value < self.best - self.schedule.min_delta:
            self.best, self.bad_epochs = float(value), 0
        else:
            self.bad_epochs += 1
        if self.epoch >= self.schedule.start_epoch and self.bad_epochs >= self.schedule.patience:
            if not self.plateaued:
                log.info("curriculum: validation plateau at epoch %d, moving to hard negatives", self.epoch)
            self.plateaued = True

    def curriculum_state(self) -> dict[str, Any]:
        """JSON-able state for resuming (schedule position and the sampling generator)."""
        return {
            "epoch": self.epoch,
            "plateaued": self.plateaued,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "generator": self.generator.get_state().tolist(),
            "schedule": asdict(self.schedule),
        }

    def load_curriculum_state(self, state: dict[str, Any]) -> None:
        self.epoch, self.plateaued = int(state["epoch"]), bool(state["plateaued"])
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))

    def mine(self, embeddings, labels, ref_emb, ref_labels) -> Triplets:  # type: ignore[override]
        dist = pairwise_distances(embeddings, self.squared)
        pos, neg = _masks(labels)
        a, p = torch.where(pos)
        d_ap = dist[a, p][:, None]
        d_an = dist[a].masked_fill(~neg[a], float("inf"))  # [M, B]
        semi_d = d_an.masked_fill(~((d_an > d_ap) & (d_an < d_ap + self.margin)), float("inf"))
        semi_n, hard_n = semi_d.argmin(dim=1), d_an.argmin(dim=1)
        closest = d_an.gather(1, hard_n[:, None])
        has_semi = torch.isfinite(semi_d.gather(1, semi_n[:, None])).squeeze(1)
        has_hard = (closest < d_ap).squeeze(1)
        has_loss = (closest < d_ap + self.margin).squeeze(1)
        want_hard = torch.rand(len(a), generator=self.generator).to(labels.device) < self.hard_fraction
        use_hard = (want_hard & has_hard) | (~has_semi & has_loss)
        n = torch.where(use_hard, hard_n, semi_n)
        keep = has_semi | has_loss
        fallback = ~has_semi & has_loss & ~(want_hard & has_hard)
        self._record(len(a), keep, use_hard, fallback, has_semi, dist, labels)
        return a[keep], p[keep], n[keep]

    def _record(self, pairs, keep, use_hard, fallback, has_semi, dist, labels) -> None:
        ta, tp, tn = all_triplets(labels)
        active = float((dist[ta, tn] < dist[ta, tp] + self.margin).float().mean()) if len(ta) else 0.0
        self.last_stats = {
            "mode": self.mode,
            "hard_fraction": self.hard_fraction,
            "pairs": pairs,
            "triplets": int(keep.sum()),
            "hard": int((use_hard & keep).sum()),
            "fallback": int(fallback.sum()),
            "active_fraction": active,
        }
        if pairs and not bool(keep.any()):
            log.warning("curriculum miner: no triplet with a positive loss in this batch; it adds no loss")
        elif pairs and not bool(has_semi.any()) and self.hard_fraction < 1:
            log.info("curriculum miner: no semi-hard triplet in this batch; fell back to hard negatives")


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
