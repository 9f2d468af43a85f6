"""On-the-fly synthetic writers for a training run (`--set synth_writers=N`).

Each epoch, N writers the generator has never drawn before (`verify.synth.stream.SyntheticSignatureStream`,
generator v2, seeded by the run's seed and the epoch) are rendered, preprocessed like the data's crops and added
to that epoch's training identities: K genuine signatures each, and K forgeries (two thirds skilled, a third
simple) as the writer's forgery class. The data folder's own split (and so validation) is unchanged, and an
epoch's writers are the same whenever it is (re)run, so `--resume` repeats nothing and skips nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from training.config import TrainConfig
from training.data import CropSet, create_preprocessor
from training.runs import FORGERY_SUFFIX, RunData, forgery_index
from verify.data import Sample
from verify.synth.stream import SyntheticSignatureStream

FIRST_WRITER = 10**7  # stream writer numbers start here, far from any written synthetic set's


def stream_counts(k: int, forgeries: bool) -> tuple[int, int, int]:
    """(genuine, skilled, simple) renders per stream writer for K samples per identity."""
    if not forgeries:
        return k, 0, 0
    skilled = max(1, round(2 * k / 3))
    return k, skilled, k - skilled


def stream_section(config: TrainConfig) -> dict[str, Any] | None:
    """The card's record of the on-the-fly writers (None without them)."""
    if config.synth_writers == 0:
        return None
    genuine, skilled, simple = stream_counts(config.k, config.train_forgeries)
    return {
        "generator": "v2",
        "seed": config.seed,
        "writers_per_epoch": config.synth_writers,
        "first_writer": FIRST_WRITER,
        "per_writer": {"genuine": genuine, "skilled": skilled, "simple": simple},
        "all_caps_share": config.synth_all_caps_share,
    }


def stream_crop_set(config: TrainConfig, card: dict[str, Any], epoch: int, progress: bool = False) -> CropSet:
    """This epoch's stream writers as a crop set; identities "synth:<writer>" and "synth:<writer>#skilled"."""
    genuine, skilled, simple = stream_counts(config.k, config.train_forgeries)
    pre = create_preprocessor(card)

    def transform(rgb: np.ndarray) -> np.ndarray:
        out = pre(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        return np.asarray(getattr(out, "image", out))

    stream = SyntheticSignatureStream(
        seed=config.seed, genuine=genuine, skilled=skilled, simple=simple, first_writer=FIRST_WRITER,
        groups=config.synth_writers, transform=transform, all_caps_share=config.synth_all_caps_share,
    )  # fmt: skip
    stream.set_epoch(epoch)
    samples, crops = [], []
    bar = tqdm(stream, total=len(stream), desc=f"synth writers (epoch {epoch + 1})", disable=not progress, leave=False)
    for i, (crop, writer, kind) in enumerate(bar):
        identity = f"synth:{writer}" + ("" if kind == 0 else FORGERY_SUFFIX)
        samples.append(Sample(Path(f"synth-v2/seed-{config.seed}/{writer}/{i}.png"), identity))
        crops.append(crop)
    return CropSet(samples, crops, np.zeros(len(samples), np.int64))


def with_stream_writers(data: RunData, stream: CropSet) -> RunData:
    """`data` with `stream`'s writers added to its training identities (new labels after the data's own)."""
    offset = int(data.train.labels.max()) + 1 if len(data.train) else 0
    names = list(dict.fromkeys(s.identity for s in stream.samples))
    label = {name: offset + i for i, name in enumerate(names)}
    labels = np.array([label[s.identity] for s in stream.samples], np.int64)
    start = len(data.train)
    own = forgery_index(stream, names)  # stream labels and rows, before the offsets
    forgery_of = {**data.forgery_of, **{offset + k: start + rows for k, rows in own.items()}}
    train = dataclasses.replace(
        data.train,
        samples=[*data.train.samples, *stream.samples],
        crops=[*data.train.crops, *stream.crops],
        labels=np.concatenate([data.train.labels, labels]),
    )
    is_replay = np.concatenate([data.is_replay, np.zeros(len(stream), bool)])
    return dataclasses.replace(data, train=train, is_replay=is_replay, forgery_of=forgery_of)
