"""P x K batch sampler for metric learning: each batch holds P identities with K samples each.

pytorch-metric-learning's `MPerClassSampler` yields a flat index stream (a `sampler=`, not `batch_sampler=`),
has no per-identity "skip or repeat" choice and no rank split, so this small sampler is written here.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from verify.errors import ConfigError


class PKBatchSampler(Sampler[list[int]]):
    """Yields lists of P x K dataset indices (identity-major: K indices of identity 1, then identity 2, ...).

    Usable as ``DataLoader(dataset, batch_sampler=PKBatchSampler(labels, p, k))``. Identities in a batch are
    distinct; an identity's K samples are distinct when it has at least K, else drawn with replacement
    (``small="replace"``) or the identity is never used (``small="skip"``). For DDP give each rank its `rank`
    and `world_size` and the same `seed`: the ranks draw one shared sequence of batches and take every
    `world_size`-th one, so they never receive the same batch. Call `set_epoch` each epoch to reshuffle.

    Args:
        labels: the identity of every dataset item, [N].
        p: identities per batch.
        k: samples per identity.
        batches: batches per epoch for this rank (default: N // (P * K) // world_size, at least 1).
        small: "replace" or "skip" for identities with fewer than K samples.
        seed, rank, world_size: see above.
    """

    def __init__(
        self,
        labels: Sequence[Hashable],
        p: int,
        k: int,
        *,
        batches: int | None = None,
        small: str = "replace",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if p < 1 or k < 1:
            raise ConfigError(f"P and K must be >= 1, got P={p}, K={k}")
        if small not in ("replace", "skip"):
            raise ConfigError(f"small must be 'replace' or 'skip', got {small!r}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in [0, world_size={world_size})")
        groups: dict[Hashable, list[int]] = {}
        for i, label in enumerate(labels):
            groups.setdefault(label, []).append(i)
        self.groups = [np.array(v) for v in groups.values() if small == "replace" or len(v) >= k]
        if len(self.groups) < p:
            raise ConfigError(
                f"P={p} identities per batch, but only {len(self.groups)} identities "
                f"{'have' if small == 'skip' else 'exist'}{f' at least K={k} samples' if small == 'skip' else ''}"
            )
        self.p, self.k, self.seed, self.rank, self.world_size = p, k, seed, rank, world_size
        default = len(labels) // (p * k) // world_size
        self.batches = max(1, default) if batches is None else int(batches)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use a different (deterministic) shuffle for each epoch, as DistributedSampler does."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for b in range(self.batches * self.world_size):
            chosen = rng.choice(len(self.groups), size=self.p, replace=False)
            batch = []
            for g in chosen:
                members = self.groups[g]
                batch.extend(rng.choice(members, size=self.k, replace=len(members) < self.k).tolist())
            if b % self.world_size == self.rank:
                yield batch
