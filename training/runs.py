"""The data side of a run folder: the identity split, the crop sets, run.json and metrics.csv."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.config import TrainConfig
from training.data import CropSet, build_crop_set, data_fingerprint, load_pooled_samples, load_samples
from verify.data import Sample, load_split, save_split, split_fingerprint, split_identities, split_samples
from verify.errors import ConfigError, DatasetError
from verify.fsutil import atomic_path, atomic_write_json

REPLAY_PREFIX = "replay:"
FORGERY_SUFFIX = "#skilled"  # the class of a training writer's skilled forgeries


@dataclass
class RunData:
    """Preprocessed training and validation data of a run.

    Attributes:
        train: genuine training crops; labels index `classes` (new identities first, then replay ones).
        is_replay: [N] True for crops of the replay (old) data.
        forgery_of: writer label -> indices of that writer's skilled forgeries in `train` (their own class),
            filled when `config.train_forgeries` and the data has forgeries.
        val: held-out new identities (genuine and skilled); empty on ranks other than 0.
        old_val: held-out replay identities, or None without --replay.
        split: part name -> identities ("train", "val", and "replay_train", "replay_val" with --replay).
        roots: the dataset folder(s); several are pooled, their identities prefixed by position ("1/writer_007").
    """

    train: CropSet
    is_replay: np.ndarray
    forgery_of: dict[int, np.ndarray]
    val: CropSet
    old_val: CropSet | None
    split: dict[str, list[str]]
    roots: tuple[Path, ...]
    replay_root: Path | None
    fingerprint: str

    def card_section(self) -> dict[str, Any]:
        """The card's "data" section: where the data came from and what exactly was used."""
        where: dict[str, Any] = (
            {"root": str(self.roots[0])} if len(self.roots) == 1 else {"roots": [str(r) for r in self.roots]}
        )
        return {
            **where,
            "replay": None if self.replay_root is None else str(self.replay_root),
            "fingerprint": self.fingerprint,
            "split_fingerprint": split_fingerprint(self.split),
            "identities": {k: len(v) for k, v in self.split.items()},
            "train_images": len(self.train),
            "val_images": len(self.val),
        }


def _load(root: Path, config: TrainConfig, prefix: str = "") -> list[Sample]:
    samples = load_samples(root, config.modality, config.protocol if not prefix else "auto")
    return [dataclasses.replace(s, identity=prefix + s.identity) for s in samples] if prefix else samples


def _names(roots: tuple[Path, ...]) -> str:
    return " + ".join(str(r) for r in roots)


def _split(samples: list[Sample], config: TrainConfig, names: tuple[str, str]) -> dict[str, list[str]]:
    ids = sorted({s.identity for s in samples})
    split_seed = config.seed if config.split_seed is None else config.split_seed
    split = split_identities(ids, {names[0]: 1.0 - config.val_fraction, names[1]: config.val_fraction}, split_seed)
    if len(split[names[1]]) < 2 or len(split[names[0]]) < 2:
        raise DatasetError(
            f"{len(ids)} identities are too few to hold out {config.val_fraction:.0%} for validation "
            f"(need >= 2 on each side); add identities or change --set val_fraction"
        )
    return split


def prepare_data(
    config: TrainConfig,
    roots: tuple[Path, ...],
    out: Path,
    card: dict[str, Any],
    replay: str | Path | None,
    resume: bool,
    is_main: bool,
    progress: bool,
) -> RunData:
    """Load (several `roots` pooled), split (or reload RUN/split.json when resuming) and preprocess the run's
    data."""
    samples = load_pooled_samples(roots, config.modality, config.protocol)
    old = _load(Path(replay), config, REPLAY_PREFIX) if replay is not None else []
    split_path = out / "split.json"
    if resume and split_path.is_file():
        split = load_split(split_path)
    else:
        split = _split(samples, config, ("train", "val"))
        if old:
            split.update(_split(old, config, ("replay_train", "replay_val")))
        if is_main:
            save_split(split, split_path)
    parts = split_samples(samples + old, split)
    train_parts = parts["train"] + parts.get("replay_train", [])
    genuine = [s for s in train_parts if s.kind == "genuine"]
    forgeries = []
    if config.train_forgeries:
        forgeries = [
            dataclasses.replace(s, identity=s.identity + FORGERY_SUFFIX) for s in train_parts if s.kind == "skilled"
        ]
    classes = [*split["train"], *split.get("replay_train", []), *sorted({s.identity for s in forgeries})]
    train = build_crop_set(genuine + forgeries, card, classes, progress, desc="preprocess train")
    if len(train) == 0:
        raise DatasetError(f"{_names(roots)}: no usable training image (all {len(genuine)} failed to load)")
    is_replay = np.array([s.identity.startswith(REPLAY_PREFIX) for s in train.samples], dtype=bool)
    forgery_of = forgery_index(train, classes)
    empty = CropSet([], [], np.zeros(0, np.int64))
    val = build_crop_set(parts["val"], card, progress=progress, desc="preprocess val") if is_main else empty
    old_val = None
    if old:
        old_val = build_crop_set(parts["replay_val"], card, desc="preprocess replay val") if is_main else empty
    fingerprint = data_fingerprint(roots, samples)
    replay_root = None if replay is None else Path(replay)
    return RunData(train, is_replay, forgery_of, val, old_val, split, roots, replay_root, fingerprint)


def forgery_index(train: CropSet, classes: list[str]) -> dict[int, np.ndarray]:
    """Writer label (index in `classes`) -> rows of `train` holding that writer's forgery class."""
    index = {c: i for i, c in enumerate(classes)}
    out: dict[int, list[int]] = {}
    for i, s in enumerate(train.samples):
        if s.identity.endswith(FORGERY_SUFFIX):
            out.setdefault(index[s.identity[: -len(FORGERY_SUFFIX)]], []).append(i)
    return {k: np.array(v) for k, v in out.items()}


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temporary file + rename)."""
    atomic_write_json(path, obj, indent=2)


def write_run_info(out: Path, data: tuple[Path, ...], init: str | Path | None, replay: str | Path | None) -> None:
    """RUN/run.json: the paths `--resume` needs again ("data": one folder, or a list when several are pooled)."""
    opt = {"init": init, "replay": replay}
    folders: str | list[str] = str(data[0]) if len(data) == 1 else [str(d) for d in data]
    write_json(out / "run.json", {"data": folders, **{k: None if v is None else str(v) for k, v in opt.items()}})


RUN_MARKERS = ("model.json", "model.safetensors", "state", "summary.json")  # what a model or a started run leaves


def check_new_run_folder(out: Path, sources: Sequence[Path] = ()) -> None:
    """Refuse an --out that is a file, one of the `sources` (the teacher, the --init model), or a folder that already
    holds a model or a run (a new run would mix its files with the old ones: the old report, gate and trust
    figures would be read as the new model's). A folder left by a run that failed before its first checkpoint
    (config.json, run.json, split.json) may be reused.

    Raises:
        ConfigError: naming what is there.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; name a new folder")
    for src in sources:
        if out.exists() and Path(src).exists() and out.resolve() == Path(src).resolve():
            raise ConfigError(f"--out {out} is the model this run starts from; name a new folder")
    found = [name for name in RUN_MARKERS if (out / name).exists()]
    if found:
        raise ConfigError(
            f"--out {out} already holds a model or a run ({', '.join(found)}); name a new folder"
            + (" or use --resume to continue it" if "state" in found else "")
        )


def read_run_info(out: Path) -> dict[str, Any]:
    """RUN/run.json as written by `write_run_info`; its "data" is returned as a tuple of paths."""
    path = Path(out) / "run.json"
    if not path.is_file():
        raise ConfigError(f"{out}: not a training run folder (no run.json); start without --resume")
    info = json.loads(path.read_text())
    data = info.get("data")
    info["data"] = tuple(Path(d) for d in ([data] if isinstance(data, str) else data or []))
    return info


def write_metrics_csv(history: list[dict[str, Any]], path: Path) -> None:
    """One row per epoch, atomically."""
    with atomic_path(path) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
