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
    """The image as stored: gray [H, W], or RGB [H, W, 3] when the file has colour."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"{path}: missing or unreadable image listed in {MANIFEST}")
    if image.ndim == 3:
        return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)
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


def _fit(img: np.ndarray, h: int, w: int, channels: int) -> np.ndarray:
    """The image in an h x w cell: as it is when it fits exactly, else scaled to fit and centred on white."""
    if channels == 3 and img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[:2] == (h, w):
        return img
    s = min(h / img.shape[0], w / img.shape[1])
    small = cv2.resize(
        img, (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))), interpolation=cv2.INTER_AREA
    )
    cell = np.full((h, w, channels) if channels == 3 else (h, w), 255, np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    cell[y : y + small.shape[0], x : x + small.shape[1]] = small
    return cell


def _row(
    genuine: list[np.ndarray], forged: list[np.ndarray], per_kind: int, gap: int, cell: tuple[int, int], channels: int
) -> np.ndarray:
    h, w = cell
    shape = (h, w, 3) if channels == 3 else (h, w)
    blank, space = np.full(shape, 255, np.uint8), np.full((h, gap, 3) if channels == 3 else (h, gap), 255, np.uint8)
    genuine = [_fit(g, h, w, channels) for g in genuine]
    forged = [_fit(f, h, w, channels) for f in forged]
    left = [c for img in genuine + [blank] * (per_kind - len(genuine)) for c in (img, space)]
    right = [c for img in forged + [blank] * (per_kind - len(forged)) for c in (space, img)]
    bar = np.zeros((h, 3 * gap, 3) if channels == 3 else (h, 3 * gap), np.uint8)
    return np.hstack([*left, bar, *right])  # dark bar: genuine | forged


def contact_sheet(
    out_dir_or_images: str | os.PathLike[str] | Sequence[tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
    writers: int = 4,
    per_kind: int = 3,
    gap: int = 4,
) -> np.ndarray:
    """A preview grid: one row per writer, `per_kind` genuine images, a dark bar, then `per_kind` forgeries.

    Args:
        out_dir_or_images: a dataset folder (read through its manifest.csv) or, per writer, (genuine, forged)
            sequences of uint8 [H, W] or RGB [H, W, 3] images (e.g. from `render_writer_samples`); images of
            different sizes are scaled into 96 x 240 cells.
        writers: rows to show.
        per_kind: images of each kind per row; missing ones are left white.
        gap: white pixels between images and rows.

    Returns:
        uint8 sheet [rows * (H + gap) - gap, 2 * per_kind * (W + gap) + 3 * gap], RGB (with a third axis of 3)
        when any image has colour.
    """
    if isinstance(out_dir_or_images, (str, os.PathLike)):
        groups = _groups_from_dir(Path(out_dir_or_images), writers, per_kind)
    else:
        groups = [(list(g)[:per_kind], list(f)[:per_kind]) for g, f in list(out_dir_or_images)[:writers]]
    if not groups or any(not genuine for genuine, _ in groups):
        raise DatasetError("contact sheet: every writer needs at least one genuine image")
    images = [img for g, f in groups for img in (*g, *f)]
    sizes = {img.shape[:2] for img in images}
    cell = images[0].shape[:2] if len(sizes) == 1 else (96, 240)
    channels = 3 if any(img.ndim == 3 for img in images) else 1
    rows = [_row(genuine, forged, per_kind, gap, cell, channels) for genuine, forged in groups]
    space = np.full((gap, *rows[0].shape[1:]), 255, np.uint8)
    return np.vstack([part for r in rows for part in (r, space)][:-1])


def write_preview(out_dir: str | os.PathLike[str], writers: int = 4, per_kind: int = 3) -> Path:
    """Write `out_dir/preview.png`, the contact sheet of a generated dataset; return its path."""
    path = Path(out_dir) / "preview.png"
    sheet = contact_sheet(out_dir, writers=writers, per_kind=per_kind)
    write_png(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR) if sheet.ndim == 3 else sheet)
    return path
