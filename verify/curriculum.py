"""The FaceNet semi-hard -> hard curriculum: `CurriculumSchedule` and `TripletCurriculumMiner`."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import torch
from pytorch_metric_learning.miners import BaseMiner

from verify.errors import ConfigError
from verify.triplets import Triplets, all_triplets, pair_masks, pairwise_distances

log = logging.getLogger("verify.mining")


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
        pos, neg = pair_masks(labels)
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
