"""Sharding rows across jobs by a stable hash of their key, and merging the parts back into one file.

A row goes to shard ``int(sha1(key)[:16], 16) % n``: the same key lands in the same shard on every machine and
Python version (Python's `hash` is salted per process, so it is not used).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from verify.errors import ConfigError, DatasetError
from verify.fsutil import atomic_path


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count); `Shard(0, 1)` is the whole input."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"shard {self.index}/{self.count}: need 0 <= i < n (e.g. --shard 0/4 ... 3/4)")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, key: str) -> bool:
        return self.count == 1 or shard_of(key, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """'i/n' -> Shard(i, n), 0-based (torchrun's RANK/WORLD_SIZE, SLURM_ARRAY_TASK_ID from 0)."""
    left, sep, right = str(text).partition("/")
    try:
        if not sep:
            raise ValueError
        return Shard(int(left), int(right))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/4") from None


def shard_of(key: str, count: int) -> int:
    """The shard (0..count-1) of a row key: sha1 of its UTF-8 bytes, first 64 bits, modulo count."""
    return int(hashlib.sha1(str(key).encode("utf-8")).hexdigest()[:16], 16) % count


@dataclass
class MergeSummary:
    """What `merge_parts` wrote and what it found."""

    out: Path
    rows: int
    parts: int


def read_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A results CSV with every value as the string it was written as (so merged files keep the same bytes)."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such results file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable results CSV ({str(exc).strip()})") from exc


def merge_parts(
    parts: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    key: str,
    expected: Sequence[str] | None = None,
    inputs: pd.DataFrame | None = None,
) -> MergeSummary:
    """Join shard outputs into one CSV in input order (by the `row` column), written atomically.

    Args:
        parts: results CSVs of `verify batch --shard i/n` (same columns).
        out: the merged CSV.
        key: the column naming a row ("id" or "row").
        expected: the keys of the input, when known: every one must appear exactly once.
        inputs: the input rows (`BatchInput.frame`), when known: every part row must carry the same input values
            as the input row of its key (so parts of another CSV with the same number of rows are refused).

    Raises:
        DatasetError: no parts, parts with different columns, a key in two parts (or twice in one), a key
            that is not in the input or an input key in no part, a row whose input values differ from the
            input's; nothing is written then.
    """
    if not parts:
        raise DatasetError("batch merge: name at least one part")
    from verify.batch.output import check_writable

    check_writable(Path(out))
    if any(Path(out).resolve() == Path(p).resolve() for p in parts):
        raise DatasetError(f"batch merge: --out {out} is one of the parts; choose another path")
    if expected is None:
        _check_shards(parts)
    frames = [read_results(p) for p in parts]
    columns = list(frames[0].columns)
    for path, frame in zip(parts, frames, strict=True):
        if list(frame.columns) != columns:
            raise DatasetError(f"{path}: columns {list(frame.columns)} differ from {parts[0]}'s {columns}")
    if key not in columns or "row" not in columns:
        raise DatasetError(f"{parts[0]}: no {key!r} / 'row' column; is it the output of `verify batch`?")
    merged = pd.concat(frames, ignore_index=True)
    dup = merged[key][merged[key].duplicated()]
    if len(dup):
        raise DatasetError(f"batch merge: {len(dup)} row(s) appear more than once, e.g. {key}={dup.iloc[0]!r}")
    summary = MergeSummary(out=Path(out), rows=len(merged), parts=len(parts))
    if expected is not None:
        have, want = set(merged[key]), set(map(str, expected))
        extra = sorted(have - want)
        if extra:
            raise DatasetError(f"batch merge: {len(extra)} row(s) not in the input, e.g. {key}={extra[0]!r}")
        missing = [k for k in map(str, expected) if k not in have]
        if missing:
            raise DatasetError(
                f"batch merge: {len(missing)} input row(s) are in no part, e.g. {key}={missing[0]!r}; "
                "run (or --resume) the shard that holds them"
            )
    if inputs is not None:
        _check_same_input(merged, inputs, key)
    merged = merged.iloc[pd.to_numeric(merged["row"]).argsort(kind="stable")]
    write_csv_atomic(merged, Path(out))
    return summary


def _check_shards(parts: Sequence[str | os.PathLike[str]]) -> None:
    """Without the input to check rows against: when every part has its run record (`PART.run.json`), the parts
    must be shards i/n of one n, each i once, none missing."""
    from verify.batch.output import run_record_path

    shards: list[Shard] = []
    for part in parts:
        try:
            shards.append(parse_shard(json.loads(run_record_path(Path(part)).read_text()).get("shard", "")))
        except (OSError, ValueError, AttributeError, ConfigError):
            return  # no readable record: nothing to check without --pairs
    counts = {s.count for s in shards}
    if len(counts) > 1:
        raise DatasetError(f"batch merge: the parts come from different --shard splits (of {sorted(counts)})")
    (n,) = counts
    missing = sorted(set(range(n)) - {s.index for s in shards})
    if missing:
        raise DatasetError(
            f"batch merge: shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing; name every part "
            "(--pairs IN.csv also checks that every input row is there)"
        )


def _check_same_input(merged: pd.DataFrame, inputs: pd.DataFrame, key: str) -> None:
    """Every merged row carries the input values of the input row with its key (as the journal wrote them)."""
    from verify.batch.output import single_line

    columns = [str(c) for c in inputs.columns]
    lacking = [c for c in columns if c not in merged.columns]
    if lacking:
        raise DatasetError(f"batch merge: the parts have no input column(s) {lacking}; they come from another input")
    want = inputs[columns].astype(str).apply(single_line).set_index(key)
    have = merged[columns].set_index(key)
    want = want.loc[want.index.intersection(have.index)]
    have = have.loc[want.index]
    differs = (have != want).any(axis=1)
    if differs.any():
        first = str(differs[differs].index[0])
        column = next(c for c in have.columns if have.at[first, c] != want.at[first, c])
        raise DatasetError(
            f"batch merge: {int(differs.sum())} row(s) differ from the input CSV, e.g. {key}={first!r} in column"
            f" {column!r}: the parts were made from another input"
        )


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as CSV to a temp file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".tmp") as tmp, tmp.open("w", newline="") as fh:
        frame.to_csv(fh, index=False)
