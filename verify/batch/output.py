"""The results file, written so that an interrupted run can be resumed without losing or repeating rows.

While a run is going, rows are appended to a journal `<out>.partial` in chunks of complete lines, each chunk
flushed and fsynced; `<out>.partial.json` records what produced it (input, model, threshold, shard). At the end
the journal is rewritten in input order to `<out>` atomically (temp file + rename) and removed, so `<out>`
exists only when complete. After a kill, `open(resume=True)` drops a trailing partial line and returns the keys
already written. Values never contain a newline (they are replaced by spaces), so one line is one row.
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

    def open(self, resume: bool) -> set[str]:
        """Start the journal (or take up an interrupted one with `resume`); returns keys already done."""
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.journal.exists() and not resume:
            raise ConfigError(
                f"{self.journal}: an interrupted run left its rows here; pass --resume to continue it, "
                "or delete the file to start over"
            )
        if resume and self.journal.exists():
            self._check_meta()
            return self._recover()
        if resume and self.out.exists():
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

    def _check_meta(self) -> None:
        try:
            old = json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            old = {}
        diff = sorted(k for k in self.meta if old.get(k) != self.meta[k])
        if diff:
            shown = ", ".join(f"{k}: {old.get(k)!r} then, {self.meta[k]!r} now" for k in diff)
            raise ConfigError(f"{self.journal}: cannot resume a run made with other settings ({shown})")

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
        clean = rows[self.columns].apply(_single_line)
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
        self.journal.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)
        return rows


def _single_line(col: pd.Series) -> pd.Series:
    if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
        return col
    return col.map(lambda v: " ".join(str(v).splitlines()) if isinstance(v, str) and ("\n" in v or "\r" in v) else v)


def _write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    atomic_write_json(path, obj, indent=2, default=str)
