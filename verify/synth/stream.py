"""On-the-fly synthetic signatures for training: a torch `IterableDataset` of P x K writer groups.

Each group is one writer: `genuine` repetitions, then `skilled` and `simple` forgeries of them, so a DataLoader
with `batch_size = P * group_size` (and no shuffling) yields P x K batches. Groups are numbered; group g of
epoch e is fixed by (seed, e, g), and DataLoader workers take groups g = worker, worker + workers, ... so
nothing is repeated or skipped whatever the number of workers (batches then interleave groups of the workers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from verify.errors import ConfigError, DatasetError, VerifyError
from verify.synth.generator import KINDS, Kind, NameSignatureGenerator
from verify.synth.scan import ScanConfig

KIND_CODES: dict[Kind, int] = {"genuine": 0, "skilled": 1, "simple": 2}
_ATTEMPTS = 4  # renders tried per sample when the transform rejects or blanks one
_RETRY_STRIDE = 1_000_003  # index offset of a retry (far from the indices groups use)


def _is_blank(out: Any) -> bool:
    """An all-zero transform output (an array or tensor): a preprocessor that lost the ink."""
    try:
        return bool(float(out.max()) == 0.0)
    except (AttributeError, TypeError, ValueError):
        return False


class SyntheticSignatureStream(IterableDataset):  # type: ignore[type-arg]
    """Unbounded (or fixed-pool) synthetic writers, grouped writer by writer.

    Args:
        seed: generator seed (writers and images).
        genuine: genuine repetitions per group (K).
        skilled: skilled forgeries per group.
        simple: simple forgeries per group.
        writers: None: every group is a new writer (ids first_writer, first_writer + 1, ...); an int: groups
            draw writers from the pool first_writer .. first_writer + writers - 1, each time with new repetitions.
        first_writer: first writer id (keep train and validation pools apart with disjoint ranges).
        groups: groups per epoch (None: endless).
        transform: applied to each uint8 RGB [H, W, 3] image (e.g. a model's preprocessor -> a [C, H, W]
            tensor); needed to batch tight crops of different sizes. A sample it rejects (raises a
            `VerifyError`) or returns all zeros for is drawn again with another index (up to 4 tries).
        scan: framing and scan randomisation (`ScanConfig`).
        all_caps_share: print-hand writers who sign in capitals (`NameSignatureGenerator`; 0 = v2 as before).

    Yields:
        (image, writer id, kind code) with kind code 0 genuine, 1 skilled, 2 simple (`KIND_CODES`); the writer
        id is the writer a sample claims to be, so forgeries carry their victim's id.
    """

    def __init__(
        self,
        seed: int = 0,
        genuine: int = 4,
        skilled: int = 2,
        simple: int = 1,
        writers: int | None = None,
        first_writer: int = 0,
        groups: int | None = None,
        transform: Callable[[np.ndarray], Any] | None = None,
        scan: ScanConfig | None = None,
        all_caps_share: float = 0.0,
    ) -> None:
        super().__init__()
        if genuine < 1 or skilled < 0 or simple < 0 or (writers is not None and writers < 1) or first_writer < 0:
            raise ConfigError(
                f"need genuine >= 1, skilled >= 0, simple >= 0, writers >= 1 or None, first_writer >= 0; got "
                f"genuine={genuine}, skilled={skilled}, simple={simple}, writers={writers}, first_writer={first_writer}"
            )
        self.generator = NameSignatureGenerator(seed=seed, scan=scan, all_caps_share=all_caps_share)
        self.seed, self.counts = seed, {"genuine": genuine, "skilled": skilled, "simple": simple}
        self.writers, self.first_writer, self.groups = writers, first_writer, groups
        self.transform = transform
        self.epoch = 0

    @property
    def group_size(self) -> int:
        """Samples per writer group."""
        return sum(self.counts.values())

    def __len__(self) -> int:
        """Samples per epoch (only when `groups` is set; an endless stream has no length)."""
        if self.groups is None:
            raise TypeError("an endless SyntheticSignatureStream (groups=None) has no length")
        return self.groups * self.group_size

    def set_epoch(self, epoch: int) -> None:
        """New writers (unbounded) or new draws from the pool and new repetitions (fixed pool) per epoch."""
        self.epoch = epoch

    def group(self, g: int) -> tuple[int, int]:
        """(writer id, first repetition index) of group g in this epoch."""
        if self.writers is None:
            span = self.groups if self.groups is not None else 1 << 40
            return self.first_writer + self.epoch * span + g, 0
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 77, self.epoch, g]))
        return self.first_writer + int(rng.integers(self.writers)), (self.epoch * (1 << 20) + g) * 8

    def _sample(self, writer: int, kind: Kind, index: int) -> Any:
        """One rendered (and transformed) sample; a sample the transform rejects or blanks is drawn again."""
        if self.transform is None:
            return self.generator.render(writer, kind, index)
        for attempt in range(_ATTEMPTS):
            image = self.generator.render(writer, kind, index + attempt * _RETRY_STRIDE)
            try:
                out = self.transform(image)
            except VerifyError:  # e.g. a preprocessor that finds no ink
                continue
            if attempt + 1 == _ATTEMPTS or not _is_blank(out):
                return out
        raise DatasetError(f"synthetic writer {writer}: the transform rejected {_ATTEMPTS} {kind} samples in a row")

    def samples(self, g: int) -> Iterator[tuple[Any, int, int]]:
        """The samples of group g, in order genuine, skilled, simple."""
        writer, start = self.group(g)
        for kind in KINDS:
            for i in range(self.counts[kind]):
                yield self._sample(writer, kind, start + i), writer, KIND_CODES[kind]

    def __iter__(self) -> Iterator[tuple[Any, int, int]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:  # one thread per DataLoader worker: the workers already use every core
            torch.set_num_threads(1)
            cv2.setNumThreads(1)
        g = worker
        while self.groups is None or g < self.groups:
            yield from self.samples(g)
            g += workers
