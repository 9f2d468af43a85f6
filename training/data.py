"""Training data: find the samples, split identities, preprocess every image once into an in-memory crop set.

Crops are cached at the network's input size (uint8), so each epoch only augments and normalises; decoding
and face detection / signature cleaning run once per run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from verify.data import Sample, load_identity_folders, load_signature_dataset
from verify.errors import DatasetError, VerifyError
from verify.io import load_image
from verify.models.registry import get_preprocessor

log = logging.getLogger(__name__)


def load_samples(root: str | Path, modality: str, protocol: str = "auto") -> list[Sample]:
    """The samples of a dataset folder; "auto" picks manifest.csv, the CEDAR layout, or identity folders."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    if protocol == "auto":
        if modality == "signature" and (root / "manifest.csv").is_file():
            protocol = "manifest"
        elif modality == "signature" and (root / "full_org").is_dir():
            protocol = "cedar"
        else:
            protocol = "folders"
    if protocol == "folders":
        return load_identity_folders(root)
    return load_signature_dataset(root, protocol)


def data_roots(data: str | Path | Sequence[str | Path]) -> tuple[Path, ...]:
    """One dataset folder or several, as a tuple of paths (at least one)."""
    roots = (Path(data),) if isinstance(data, str | Path) else tuple(Path(d) for d in data)
    if not roots:
        raise DatasetError("no dataset folder given")
    return roots


def pool_datasets(datasets: Sequence[Sequence[Sample]]) -> list[Sample]:
    """Several datasets' samples as one; with more than one, identities are prefixed by the dataset's position
    ("1/writer_007"), so two sets' writers of the same name stay apart."""
    if len(datasets) == 1:
        return list(datasets[0])
    return [replace(s, identity=f"{i}/{s.identity}") for i, samples in enumerate(datasets) for s in samples]


def load_pooled_samples(roots: Sequence[Path], modality: str, protocol: str = "auto") -> list[Sample]:
    """`load_samples` of each folder (each auto-detected on its own under "auto"), pooled by `pool_datasets`."""
    return pool_datasets([load_samples(root, modality, protocol) for root in roots])


def data_fingerprint(roots: str | Path | Sequence[str | Path], samples: Sequence[Sample]) -> str:
    """sha256 over the sorted (relative path, identity, kind, file size) of the samples. With several roots a
    path is relative to the first root holding it and prefixed by that root's position (one root: no prefix)."""
    bases = data_roots(roots)
    lines = []
    for s in samples:
        path = Path(s.path)
        rel = path.as_posix()
        for i, base in enumerate(bases):
            if path.is_relative_to(base):
                rel = path.relative_to(base).as_posix()
                rel = rel if len(bases) == 1 else f"{i}/{rel}"
                break
        size = path.stat().st_size if path.exists() else -1
        lines.append(f"{rel}\t{s.identity}\t{s.kind}\t{size}")
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


@dataclass
class CropSet:
    """Preprocessed samples: `crops[i]` is the uint8 crop of `samples[i]`; `labels[i]` its class index."""

    samples: list[Sample]
    crops: list[np.ndarray]
    labels: np.ndarray
    skipped: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)


class _ResizeFallback:
    """Plain resize to the card's input size, used only while the named preprocessor module is missing."""

    def __init__(self, card: dict[str, Any]) -> None:
        self.size = (int(card["input"]["width"]), int(card["input"]["height"]))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)


def create_preprocessor(card: dict[str, Any]) -> Any:
    """The card's preprocessor (``image -> Crop``), or a resize stand-in when its module is not installed."""
    kind = str((card.get("preprocessing") or {}).get("kind", "resize"))
    try:
        return get_preprocessor(kind)(card)
    except ModuleNotFoundError as exc:
        log.warning("preprocessor %r is not available (%s); training crops are plain resizes", kind, exc)
        return _ResizeFallback(card)


def build_crop_set(
    samples: Sequence[Sample],
    card: dict[str, Any],
    classes: Sequence[str] | None = None,
    progress: bool = False,
    desc: str = "preprocess",
) -> CropSet:
    """Decode and preprocess every sample once. Samples that fail (unreadable, no face) are skipped and listed.

    Args:
        samples: the samples.
        card: the model card (input size, channels, preprocessing).
        classes: identity names in label order; default: the sorted identities of `samples`.
        progress: show a tqdm bar.
    """
    pre = create_preprocessor(card)
    mode = "rgb" if card["modality"] == "face" else "gray"
    index = {c: i for i, c in enumerate(classes if classes is not None else sorted({s.identity for s in samples}))}
    kept, crops, skipped = [], [], []
    for s in tqdm(samples, desc=desc, disable=not progress, leave=False):
        try:
            out = pre(load_image(s.path, mode=mode))
        except VerifyError as exc:
            skipped.append({"path": str(s.path), "error": str(exc)})
            continue
        crop = np.asarray(getattr(out, "image", out))
        kept.append(s)
        crops.append(crop)
    if skipped:
        log.warning("%d of %d images skipped (first: %s)", len(skipped), len(samples), skipped[0]["error"])
    labels = np.array([index.get(s.identity, -1) for s in kept], dtype=np.int64)
    return CropSet(kept, crops, labels, skipped)
