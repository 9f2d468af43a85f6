"""Synthetic signature datasets in the CEDAR layout, and the same samples in memory.

Every random draw comes from a generator seeded by (seed, writer, purpose, index), so the bytes of a file do not
depend on the number of workers, the order of work or which other writers are generated.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from verify.errors import ConfigError, DatasetError
from verify.fsutil import atomic_path, atomic_write_bytes
from verify.synth.render import Pen, render_traces
from verify.synth.shapes import sample_shape
from verify.synth.style import WriterStyle, sample_style
from verify.synth.writer import forgery_traces, genuine_traces, imitating_style

FORGERS_PER_WRITER = 3  # skilled forgeries of one writer come from this many forgers in turn
MANIFEST = "manifest.csv"
_STYLE, _FORGER, _MANNER, _GENUINE, _FORGERY = range(5)


def _rng(seed: int, writer: int, purpose: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, writer, purpose, index]))


def _pen(style: WriterStyle, rng: np.random.Generator, fill: float) -> Pen:
    return Pen(
        width=style.pen_width * float(np.exp(rng.normal(0.0, 0.05))),
        ink=min(1.0, style.ink * float(np.exp(rng.normal(0.0, 0.03)))),
        fill=float(np.clip(fill * np.exp(rng.normal(0.0, 0.04)), 0.5, 1.0)),
    )


def _check_size(height: int, width: int) -> None:
    if height < 16 or width < 16:
        raise ConfigError(f"image size {height}x{width} is too small; use at least 16x16 (default 150x220)")


def render_writer_samples(
    writer_id: int, n_genuine: int, n_forgeries: int, seed: int, height: int = 150, width: int = 220
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Genuine signatures and skilled forgeries of one synthetic writer, in memory.

    Args:
        writer_id: the writer (any int; datasets number writers from 1).
        n_genuine: genuine repetitions to render.
        n_forgeries: skilled forgeries to render (by `FORGERS_PER_WRITER` forgers in turn).
        seed: dataset seed; (seed, writer_id) fixes everything.
        height, width: image size in pixels.

    Returns:
        (genuine images, forgery images), each a list of uint8 [H, W] arrays (dark ink on light paper).
    """
    _check_size(height, width)
    style_rng = _rng(seed, writer_id, _STYLE)
    style = sample_style(style_rng)
    shape = sample_shape(style, style_rng)
    genuine = []
    for i in range(n_genuine):
        rng = _rng(seed, writer_id, _GENUINE, i)
        traces = genuine_traces(shape, style, rng)
        genuine.append(render_traces(traces, height, width, _pen(style, rng, style.fill), rng))
    forgers = []
    for k in range(FORGERS_PER_WRITER):
        forger_rng = _rng(seed, writer_id, _FORGER, k)
        forgers.append(imitating_style(style, sample_style(forger_rng), forger_rng))
    forged = []
    for i in range(n_forgeries):
        k = i % FORGERS_PER_WRITER
        rng = _rng(seed, writer_id, _FORGERY, i)
        traces = forgery_traces(shape, forgers[k], rng, _rng(seed, writer_id, _MANNER, k))
        forged.append(render_traces(traces, height, width, _pen(forgers[k], rng, forgers[k].fill), rng))
    return genuine, forged


def write_png(path: Path, image: np.ndarray) -> None:
    """Encode uint8 [H, W] (or BGR [H, W, 3]) as PNG and write it atomically (temporary file, then rename)."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise DatasetError(f"{path}: PNG encoding failed")
    atomic_write_bytes(path, buf.tobytes(), fsync=False)  # thousands of small files: no fsync each


def _render_v2(
    writer: int, n_gen: int, n_forg: int, seed: int, canvas: tuple[int, int] | None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Generator v2 images of one writer as BGR arrays (what cv2 writes as an RGB PNG)."""
    from verify.synth.generator import NameSignatureGenerator
    from verify.synth.scan import ScanConfig

    samples = NameSignatureGenerator(seed=seed, scan=ScanConfig(canvas=canvas)).writer_samples(writer, n_gen, n_forg)
    bgr = [[cv2.cvtColor(img, cv2.COLOR_RGB2BGR) for img in samples[k]] for k in ("genuine", "skilled")]
    return bgr[0], bgr[1]


def _write_writer(args: tuple[Path, int, int, int, int, int, int, str, bool]) -> list[tuple[str, int, str]]:
    out, writer, n_gen, n_forg, seed, height, width, generator, natural = args
    if generator == "v2":
        genuine, forged = _render_v2(writer, n_gen, n_forg, seed, None if natural else (height, width))
    else:
        genuine, forged = render_writer_samples(writer, n_gen, n_forg, seed, height, width)
    rows = []
    for kind, folder, stem, images in (
        ("genuine", "full_org", "original", genuine),
        ("skilled", "full_forg", "forgeries", forged),
    ):
        for i, image in enumerate(images, start=1):
            rel = f"{folder}/{stem}_{writer}_{i}.png"
            write_png(out / rel, image)
            rows.append((rel, writer, kind))
    return rows


def generate_dataset(
    out_dir: str | os.PathLike[str],
    writers: int,
    genuine: int,
    forgeries: int,
    seed: int = 0,
    height: int = 150,
    width: int = 220,
    workers: int = 1,
    progress: bool = True,
    generator: str = "v1",
    natural_size: bool = False,
) -> Path:
    """Write a synthetic signature dataset in the CEDAR layout.

    Files: `full_org/original_{w}_{i}.png`, `full_forg/forgeries_{w}_{i}.png` (w and i from 1) and
    `manifest.csv` with columns path (relative to out_dir), writer, kind ("genuine" or "skilled").

    Args:
        out_dir: output folder (created; existing files of the same names are replaced).
        writers: number of writers.
        genuine: genuine signatures per writer.
        forgeries: skilled forgeries per writer.
        seed: the same seed gives the same bytes, whatever `workers`.
        height, width: image size in pixels.
        workers: processes to use.
        progress: show a progress bar on stderr.
        generator: "v1" (sigma-lognormal abstract writers, gray) or "v2" (name signatures, RGB scans with
            domain randomisation, `verify.synth.generator`).
        natural_size: v2 only: tight crops at their own size instead of height x width canvases.

    Returns:
        out_dir as a Path.
    """
    if generator not in ("v1", "v2"):
        raise ConfigError(f"unknown generator {generator!r}; use v1 or v2")
    if writers < 1 or genuine < 1 or forgeries < 0 or workers < 1:
        raise ConfigError(
            f"need writers >= 1, genuine >= 1, forgeries >= 0, workers >= 1; got writers={writers}, "
            f"genuine={genuine}, forgeries={forgeries}, workers={workers}"
        )
    _check_size(height, width)
    out = Path(out_dir)
    _check_no_stale(out, writers, {"full_org": genuine, "full_forg": forgeries})
    for folder in ("full_org", "full_forg"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    tasks = [(out, w, genuine, forgeries, seed, height, width, generator, natural_size) for w in range(1, writers + 1)]
    from tqdm import tqdm

    bar = tqdm(total=writers, desc="writers", unit="writer", disable=not progress, file=sys.stderr)
    rows: list[tuple[str, int, str]] = []
    if workers == 1:
        for task in tasks:
            rows.extend(_write_writer(task))
            bar.update()
    else:
        # "spawn", not fork: a child forked from a process whose OpenCV / OpenMP thread pools already ran can
        # deadlock on their locks (seen under pytest after other tests); spawned workers start clean.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
            for part in pool.map(_write_writer, tasks, chunksize=max(1, writers // (8 * workers))):
                rows.extend(part)
                bar.update()
    bar.close()
    _write_manifest(out / MANIFEST, rows)
    return out


def _check_no_stale(out: Path, writers: int, per_writer: dict[str, int]) -> None:
    """Refuse a folder holding signature files this run would not overwrite: loaders would mix them in."""
    for folder, count in per_writer.items():
        for path in sorted((out / folder).glob("*_*_*.png")):
            parts = path.stem.split("_")
            if not (parts[1].isdigit() and parts[2].isdigit()):
                continue
            if int(parts[1]) > writers or int(parts[2]) > count:
                raise DatasetError(
                    f"{path}: left from an earlier, larger run (this one writes {writers} writers); "
                    "the dataset loaders would mix it in; remove the old files or choose another --out"
                )


def _row_order(row: tuple[str, int, str]) -> tuple[int, str, int]:
    """Writer, then genuine before skilled, then sample number."""
    rel, writer, kind = row
    return writer, kind, int(Path(rel).stem.rsplit("_", 1)[1])


def _write_manifest(path: Path, rows: list[tuple[str, int, str]]) -> None:
    ordered = sorted(rows, key=_row_order)
    with atomic_path(path, suffix=".tmp") as tmp, tmp.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["path", "writer", "kind"])
        out.writerows(ordered)
