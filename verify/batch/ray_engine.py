"""`run_batch_ray`: the batch job of `run_batch` on a Ray cluster, with the same output.

Every distinct image of the rows still to do is embedded once on the cluster (`ray_images`); results stream
back in input order, and as soon as every image of a partition (`partition_rows` consecutive input rows) is
known, the driver scores its rows with the local engine's code and writes the partition atomically. Partitions
live in `<out>.parts/` (a CSV `--out`) or in the `--out` directory itself (a `.parquet` `--out`), next to a
`_job.json` naming the settings. A killed job rerun with `resume` checks those settings and redoes only the
partitions that have no file; a CSV job ends by merging its partitions into `<out>` (each row exactly once,
input order) and removing them.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from verify.batch.images import ImageCache
from verify.batch.output import ResultJournal, meta_differences
from verify.batch.ray_images import RayOptions, iter_image_results
from verify.batch.reader import RESULT_COLUMNS, BatchInput, check_gallery_use, read_batch_input
from verify.batch.runner import BatchConfig, BatchSummary, _count_final, _frame, _meta, _score_row, _test_sleep
from verify.batch.shard import merge_parts, read_results
from verify.errors import ConfigError
from verify.fsutil import atomic_path, atomic_write_json
from verify.verifier import Verifier

JOB_FILE = "_job.json"
DONE_FILE = "_SUCCESS.json"


@dataclass
class _Layout:
    """Where the partitions of a job go."""

    out: Path
    parquet: bool
    parts: Path = field(init=False)

    def __post_init__(self) -> None:
        self.parts = self.out if self.parquet else self.out.with_name(self.out.name + ".parts")

    def part(self, k: int) -> Path:
        return self.parts / f"part-{k:05d}.{'parquet' if self.parquet else 'csv'}"

    def done_parts(self) -> set[int]:
        suffix = ".parquet" if self.parquet else ".csv"
        return {int(p.stem.split("-")[1]) for p in self.parts.glob(f"part-*{suffix}") if p.stem[5:].isdigit()}


def run_batch_ray(
    verifier: Verifier,
    config: BatchConfig,
    options: RayOptions | None = None,
    gallery: Any = None,
    progress: bool = True,
) -> BatchSummary:
    """`run_batch` on Ray: same rows, columns, statuses and report; output partitioned for resume.

    Args:
        verifier: the model (loaded from a directory every Ray node can read), threshold, calibrator, OOD gate.
        config: the job; `workers` and `chunk_rows` are the local engine's and unused here.
        options: cluster address, actors, batch and partition sizes.
        gallery: an open gallery, for claims CSVs (read on the driver).
        progress: a tqdm bar of rows on stderr.

    Raises:
        VerifyError: a bad input CSV, a claims CSV without a gallery, partitions of a job with other settings.
    """
    options = options or RayOptions()
    t0 = time.perf_counter()
    data = read_batch_input(config.pairs, config.images_root, allow_outside_root=config.allow_outside_root)
    check_gallery_use(data, gallery is not None, config.pairs)
    layout = _Layout(Path(config.out), Path(config.out).suffix.lower() == ".parquet")
    columns = [*data.frame.columns, *RESULT_COLUMNS]
    meta = {**_meta(verifier, config, data), "partition_rows": options.partition_rows, "parquet": layout.parquet}
    rows_in = [i for i, k in enumerate(data.keys) if config.shard.holds(k)]
    partitions: dict[int, list[int]] = {}
    for i in rows_in:
        partitions.setdefault(i // options.partition_rows, []).append(i)
    done = _open(layout, meta, config.resume, columns, set(partitions))
    todo = {k: rows for k, rows in partitions.items() if k not in done}
    in_todo = sum(len(r) for r in todo.values())
    summary = BatchSummary(Path(config.out), len(rows_in), len(rows_in) - in_todo, 0, 0, 0, 0, 0, 0, 0.0)
    cache = ImageCache()
    from tqdm import tqdm

    with tqdm(total=in_todo, unit="row", desc="batch (ray)", disable=not progress, file=sys.stderr) as bar:
        for k, frame in _scored_partitions(todo, data, verifier, cache, gallery, options):
            _write_part(layout, k, frame, columns, data.key)
            summary.processed += len(frame)
            bar.update(len(frame))
            _test_sleep()
    rows = _finish(layout, meta, data, rows_in, partitions)
    _count_final(summary, rows)
    summary.images_decoded = summary.images_embedded = cache.decoded
    summary.seconds = time.perf_counter() - t0
    if data.labels is not None and config.shard.count == 1:
        from verify.batch.report import write_batch_report

        summary.report = write_batch_report(rows, Path(config.out), verifier)
    return summary


def _open(layout: _Layout, meta: dict[str, Any], resume: bool, columns: list[str], every: set[int]) -> set[int]:
    """Start the partitions folder, or take up the one of an interrupted (or finished) run; returns the
    partitions already done."""
    job, success = layout.parts / JOB_FILE, layout.parts / DONE_FILE
    if resume and not layout.parquet and layout.out.exists() and not layout.parts.exists():
        if list(read_results(layout.out).columns) != columns:
            raise ConfigError(f"{layout.out}: columns differ from this run's; it is another job's output")
        return every  # finished before: `_finish` reads it back
    if job.exists() or success.exists():
        if not resume:
            raise ConfigError(
                f"{layout.parts}: a run left its partitions here; pass --resume to continue it, "
                "or delete the folder to start over"
            )
        _check(json.loads((job if job.exists() else success).read_text()).get("job", {}), meta, layout.parts)
        if not job.exists():
            atomic_write_json(job, {"job": meta}, indent=2, default=str)
        return layout.done_parts() & every
    if layout.parts.exists() and any(layout.parts.iterdir()):
        raise ConfigError(f"{layout.parts}: exists and holds other files; choose another --out")
    layout.parts.mkdir(parents=True, exist_ok=True)
    atomic_write_json(job, {"job": meta}, indent=2, default=str)
    return set()


def _check(old: dict[str, Any], meta: dict[str, Any], where: Path) -> None:
    shown = meta_differences(old, meta)
    if shown:
        raise ConfigError(f"{where}: cannot resume a run made with other settings ({shown})")


def _scored_partitions(
    todo: dict[int, list[int]],
    data: BatchInput,
    verifier: Verifier,
    cache: ImageCache,
    gallery: Any,
    options: RayOptions,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """(partition, scored rows) in partition order. Rows are scored as soon as their images are embedded (the
    driver works while the cluster embeds the next blocks); a partition is yielded once all its rows are."""
    rows = [(k, i) for k in sorted(todo) for i in todo[k]]
    paths = list(dict.fromkeys(p for _, i in rows for p in data.images(i)))
    ready, charged = 0, set[str]()
    scored: list[dict[str, Any]] = []
    for results in _with_tail(iter_image_results(paths, verifier, options)):
        for path, result in results:
            cache.by_path[path] = result
        cache.decoded += len(results)
        while ready < len(rows) and all(p in cache for p in data.images(rows[ready][1])):
            k, i = rows[ready]
            scored.append(_score_row(i, data, verifier, cache, gallery, charged))
            ready += 1
            if len(scored) == len(todo[k]):
                yield k, _frame(data, todo[k], scored)
                scored = []


def _with_tail(it: Iterator[list[Any]]) -> Iterator[list[Any]]:
    yield from it
    yield []


def _write_part(layout: _Layout, k: int, frame: pd.DataFrame, columns: list[str], key: str) -> None:
    """One partition, atomically: the local engine's journal for a CSV, a typed Parquet file otherwise."""
    path = layout.part(k)
    if not layout.parquet:
        journal = ResultJournal(path, columns, key)
        journal.open(resume=False)
        journal.append(frame)
        journal.finish()
        return
    with atomic_path(path, suffix=".tmp") as tmp:
        _typed(frame[columns]).to_parquet(tmp, index=False)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in ("score", "p_match", "threshold", "ood_score", "elapsed_ms"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    out["ood_flag"] = out["ood_flag"].astype(bool)
    out["row"] = out["row"].astype("int64")
    return out


def _finish(
    layout: _Layout, meta: dict[str, Any], data: BatchInput, rows_in: list[int], partitions: dict[int, list[int]]
) -> pd.DataFrame:
    """Check every row is there once; merge a CSV job into `out`, mark a Parquet one done. Returns the rows
    (as strings, like `read_results`)."""
    every = data.keys
    keys = [every[i] for i in rows_in]
    if layout.parquet:
        files = [layout.part(k) for k in sorted(partitions)]
        rows = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()
        _check_rows(rows, data.key, keys, layout.out)
        atomic_write_json(layout.out / DONE_FILE, {"rows": len(rows), "job": meta}, indent=2, default=str)
        (layout.parts / JOB_FILE).unlink(missing_ok=True)
        return rows.astype(str).replace({"nan": "", "None": ""})
    if layout.parts.exists():
        merge_parts([layout.part(k) for k in sorted(partitions)], layout.out, data.key, keys)
        shutil.rmtree(layout.parts)
    return read_results(layout.out)


def _check_rows(rows: pd.DataFrame, key: str, keys: list[str], where: Path) -> None:
    from verify.errors import DatasetError

    have = rows[key].astype(str).tolist() if len(rows) else []
    if sorted(have) != sorted(map(str, keys)):
        raise DatasetError(f"{where}: partitions hold {len(have)} rows for {len(keys)} input rows; rerun with --resume")
