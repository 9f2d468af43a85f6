"""Training curves: loss, active-triplet fraction and validation EER per epoch, as one PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from verify.fsutil import atomic_path

PANELS = (
    ("loss", "training loss"),
    ("active_fraction", "active-triplet fraction"),
    ("val_eer", "validation EER"),
)


def plot_curves(history: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Write `path` (PNG, atomically) with one panel per metric of `PANELS` against the epoch.

    Args:
        history: one row per epoch with "epoch" and the metric keys (missing or None values are skipped).
        path: output file.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.2))
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        points = [(r["epoch"], r[key]) for r in history if r.get(key) is not None and r.get("epoch") is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o")
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=80)
    finally:
        plt.close(fig)
    return path
