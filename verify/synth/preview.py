"""A contact sheet of synthetic signatures: one row per writer, genuine images then skilled forgeries."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from verify.errors import DatasetError
from verify.synth.dataset import MANIFEST, write_png

Group = tuple[list[np.ndarray], list[np.ndarray]]


def _read_gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DatasetError(f"{path}: missing or unreadable image listed in {MANIFEST}")
    return image


def _groups_from_dir(root: Path, writers: int, per_kind: int) -> list[Group]:
    """Up to `per_kind` genuine and forged images of the first `writers` writers of a generated dataset."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise DatasetError(f"{root}: no {MANIFEST}; generate the dataset with `verify synth signatures` first")
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    chosen = sorted({int(r["writer"]) for r in rows})[:writers]
    groups: dict[int, Group] = {w: ([], []) for w in chosen}
    for row in rows:
        group = groups.get(int(row["writer"]))
        if group is None:
            continue
        images = group[0] if row["kind"] == "genuine" else group[1]
        if len(images) < per_kind:
            images.append(_read_gray(root / row["path"]))
    return [groups[w] for w in chosen]


def _row(genuine: list[np.ndarray], forged: list[np.ndarray], per_kind: int, gap: int) -> np.ndarray:
    h, w = genuine[0].shape[:2]
    blank, space = np.full((h, w), 255, np.uint8), np.full((h, gap), 255, np.uint8)
    left = [c for img in genuine + [blank] * (per_kind - len(genuine)) for c in (img, space)]
    right = [c for img in forged + [blank] * (per_kind - len(forged)) for c in (space, img)]
    return np.hstack([*left, np.zeros((h, 3 * gap), np.uint8), *right])  # dark bar: genuine | forged


def contact_sheet(
    out_dir_or_images: str | os.PathLike[str] | Sequence[tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
    writers: int = 4,
    per_kind: int = 3,
    gap: int = 4,
) -> np.ndarray:
    """A preview grid: one row per writer, `per_kind` genuine images, a dark bar, then `per_kind` forgeries.

    Args:
        out_dir_or_images: a dataset folder (read through its manifest.csv) or, per writer, (genuine, forged)
            sequences of uint8 [H, W] images, all of one size (e.g. from `render_writer_samples`).
        writers: rows to show.
        per_kind: images of each kind per row; missing ones are left white.
        gap: white pixels between images and rows.

    Returns:
        uint8 sheet [rows * (H + gap) - gap, 2 * per_kind * (W + gap) + 3 * gap].
    """
    if isinstance(out_dir_or_images, (str, os.PathLike)):
        groups = _groups_from_dir(Path(out_dir_or_images), writers, per_kind)
    else:
        groups = [(list(g)[:per_kind], list(f)[:per_kind]) for g, f in list(out_dir_or_images)[:writers]]
    if not groups or any(not genuine for genuine, _ in groups):
        raise DatasetError("contact sheet: every writer needs at least one genuine image")
    rows = [_row(genuine, forged, per_kind, gap) for genuine, forged in groups]
    space = np.full((gap, rows[0].shape[1]), 255, np.uint8)
    return np.vstack([part for r in rows for part in (r, space)][:-1])


def write_preview(out_dir: str | os.PathLike[str], writers: int = 4, per_kind: int = 3) -> Path:
    """Write `out_dir/preview.png`, the contact sheet of a generated dataset; return its path."""
    path = Path(out_dir) / "preview.png"
    write_png(path, contact_sheet(out_dir, writers=writers, per_kind=per_kind))
    return path
