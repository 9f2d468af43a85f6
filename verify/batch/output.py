"""The results file, written so that an interrupted run can be resumed without losing or repeating rows.

While a run is going, rows are appended to a journal `<out>.partial` in chunks of complete lines, each chunk
flushed and fsynced; `<out>.partial.json` records what produced it (input path and content hash, model
fingerprint, threshold, shard, ...). At the end the journal is rewritten in input order to `<out>` atomically (temp
file + rename) and removed, so `<out>` exists only when complete; the record stays beside it as `<out>.run.json`.
`--resume` takes up a journal or a finished output only when its record matches this run's exactly. After a
kill, `open(resume=True)` drops a trailing partial line and returns the keys already written. Values never
contain a newline (they are replaced by spaces), so one line is one row.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from verify.batch.shard import read_results, write_csv_atomic
from verify.errors import ConfigError, DatasetError
from verify.fsutil import atomic_write_json

# Facts a run record may lack because it was written before they were recorded, with the value every run of
# that time had: such a record still resumes (a run before gate modes rejected what the gate refused).
LEGACY_META: dict[str, Any] = {"gate_mode": "reject"}


def meta_differences(old: dict[str, Any], meta: dict[str, Any]) -> str:
    """The facts of `meta` that the record `old` holds otherwise, as "key: old then, new now, ..." ("" if none)."""
    then = {**LEGACY_META, **old}
    diff = sorted(k for k in meta if then.get(k) != meta[k])
    return ", ".join(f"{k}: {then.get(k)!r} then, {meta[k]!r} now" for k in diff)


@dataclass
class ResultJournal:
    """The journal of one batch run.

    Args:
        out: the final results CSV.
        columns: the output columns, in order.
        key: the column naming a row.
        meta: facts that must match for a resume (input path, model fingerprint, threshold, shard, ...).
    """

    out: Path
    columns: list[str]
    key: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def journal(self) -> Path:
        return self.out.with_name(self.out.name + ".partial")

    @property
    def meta_path(self) -> Path:
        return self.out.with_name(self.out.name + ".partial.json")

    @property
    def record_path(self) -> Path:
        """The record of the run that wrote the finished `out`."""
        return run_record_path(self.out)

    def open(self, resume: bool) -> set[str]:
        """Start the journal (or take up an interrupted one with `resume`); returns keys already done.

        Raises:
            ConfigError: `out` is a folder or cannot be written; a journal exists and `resume` is off; with
                `resume`, a journal or output made by another run (input content, model, threshold, ...).
        """
        check_writable(self.out)
        if self.journal.exists() and not resume:
            raise ConfigError(
                f"{self.journal}: an interrupted run left its rows here; pass --resume to continue it, "
                "or delete the file to start over"
            )
        if resume and self.journal.exists():
            self._check_meta(self.meta_path, self.journal)
            return self._recover()
        if resume and self.out.exists():
            if not self.record_path.is_file():
                raise ConfigError(
                    f"{self.out}: no record of the run that wrote it ({self.record_path.name}), so it cannot be"
                    " checked against this input, model and threshold; delete it or choose another --out"
                )
            self._check_meta(self.record_path, self.out)
            done = read_results(self.out)
            if list(done.columns) != self.columns:
                raise ConfigError(f"{self.out}: columns differ from this run's; it is another job's output")
            self._start()
            self.append(done)
            return set(done[self.key])
        self._start()
        return set()

    def _start(self) -> None:
        _write_json_atomic(self.meta_path, self.meta)
        with self.journal.open("w", newline="") as fh:
            pd.DataFrame(columns=self.columns).to_csv(fh, index=False, lineterminator="\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _check_meta(self, record: Path, what: Path) -> None:
        try:
            old = json.loads(record.read_text())
        except (OSError, ValueError):
            old = {}
        old = old if isinstance(old, dict) else {}
        shown = meta_differences(old, self.meta)
        if shown:
            raise ConfigError(
                f"{what}: made by another run ({shown}); cannot resume it: delete it or choose another --out"
            )

    def _recover(self) -> set[str]:
        data = self.journal.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a chunk cut short by the kill: drop its unfinished last line
            with self.journal.open("r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        try:
            done = read_results(self.journal)
        except DatasetError:
            self._start()
            return set()
        if list(done.columns) != self.columns:
            raise ConfigError(f"{self.journal}: columns differ from this run's; delete it to start over")
        return set(done[self.key])

    def append(self, rows: pd.DataFrame) -> None:
        """Append complete rows (columns as `columns`) as one chunk; durable when this returns."""
        if rows.empty:
            return
        clean = rows[self.columns].apply(single_line)
        text = clean.to_csv(header=False, index=False, lineterminator="\n")
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND)
        try:
            view = memoryview(text.encode("utf-8"))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def finish(self) -> pd.DataFrame:
        """Write `out` in input order (by `row`) atomically, remove the journal; returns the rows."""
        rows = read_results(self.journal)
        dup = rows[self.key][rows[self.key].duplicated()]
        if len(dup):
            raise DatasetError(f"{self.journal}: row {dup.iloc[0]!r} written twice; delete it and run again")
        rows = rows.iloc[pd.to_numeric(rows["row"]).argsort(kind="stable")].reset_index(drop=True)
        write_csv_atomic(rows, self.out)
        _write_json_atomic(self.record_path, self.meta)
        self.journal.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)
        return rows


def run_record_path(out: Path) -> Path:
    """Where the record of the run that wrote the finished `out` lies: `OUT.run.json` beside it."""
    return out.with_name(out.name + ".run.json")


def check_writable(out: Path) -> None:
    """Refuse, before any work, an output path that is a folder, a link or a special file (a device, a pipe: the
    atomic rename would replace it with a plain file), or whose folder cannot be made or written."""
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; name a file in it, e.g. {out / 'results.csv'}")
    if out.is_symlink():
        raise ConfigError(f"--out {out} is a link; name the file itself (the results replace what is at --out)")
    if out.exists() and not out.is_file():
        raise ConfigError(f"--out {out} is not a regular file (a device or a pipe?); name a file")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: its folder cannot be created ({exc.strerror})") from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: its folder {out.parent} is not writable")


def single_line(col: pd.Series) -> pd.Series:
    """String values with their line breaks replaced by spaces (one output line per row)."""
    if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
        return col
    return col.map(lambda v: " ".join(str(v).splitlines()) if isinstance(v, str) and ("\n" in v or "\r" in v) else v)


def _write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    atomic_write_json(path, obj, indent=2, default=str)
