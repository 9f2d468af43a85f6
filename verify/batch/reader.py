"""The batch input: a pairs CSV (`reference,questioned[,label][,id]`) or a claims CSV
(`questioned,claimed_identity[,label][,id]`) read with every column kept, image paths resolved, rows keyed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from verify.data.pairs_csv import read_pairs_csv
from verify.errors import DatasetError

RESULT_COLUMNS = (
    "score",
    "p_match",
    "decision",
    "threshold",
    "ood_score",
    "ood_flag",
    "error",
    "elapsed_ms",
)
ROW = "row"  # 1-based row number in the input, added to every output row
_LABELS = {
    **dict.fromkeys(["1", "1.0", "true", "yes", "same", "genuine", "match"], 1),
    **dict.fromkeys(["0", "0.0", "false", "no", "different", "forgery", "skilled", "mismatch"], 0),
}


@dataclass
class BatchInput:
    """A validated batch input.

    Attributes:
        frame: the input columns as strings, plus `row` (1-based); one row per input row, in input order.
        key: the column that names a row: "id" when the input has one, else "row".
        mode: "pairs" (reference vs questioned) or "claims" (questioned vs an enrolled identity).
        reference: absolute image paths per row (pairs), or None.
        questioned: absolute image paths per row.
        claimed: claimed identity per row (claims), or None.
        labels: 1 same / 0 different / None unknown per row, or None when the input has no label column.
    """

    frame: pd.DataFrame
    key: str
    mode: str
    reference: list[str] | None
    questioned: list[str]
    claimed: list[str] | None
    labels: list[int | None] | None

    @property
    def keys(self) -> list[str]:
        return self.frame[self.key].tolist()

    def images(self, i: int) -> list[str]:
        """The image paths of row i, in the order they are compared."""
        if self.reference is None:
            return [self.questioned[i]]
        return [self.reference[i], self.questioned[i]]


def read_batch_input(path: str | os.PathLike[str], images_root: str | os.PathLike[str] | None = None) -> BatchInput:
    """Read a pairs or claims CSV; relative image paths resolve against `images_root` (default: the CSV's folder).

    Raises:
        DatasetError: unreadable CSV, missing columns, a column that would clash with a result column, an empty
            path or identity, an unknown label, a duplicate id.
    """
    src = Path(path)
    if not src.is_file():
        raise DatasetError(f"{src}: no such pairs CSV")
    try:
        raw = pd.read_csv(src, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{src}: not a readable CSV ({str(exc).strip()})") from exc
    names = {str(c).strip().lower(): c for c in raw.columns}
    clash = sorted(set(names) & {*RESULT_COLUMNS, ROW})
    if clash:
        raise DatasetError(f"{src}: input columns {clash} clash with result columns; rename them")
    frame = raw.copy()
    frame.insert(len(frame.columns), ROW, [str(i) for i in range(1, len(raw) + 1)])
    key = names.get("id", ROW)
    if "questioned" in names and "claimed_identity" in names and "reference" not in names:
        return _claims(src, raw, names, frame, key, images_root)
    pairs = read_pairs_csv(src, images_root=images_root)
    labels = None if "label" not in names else [None if pd.isna(v) else int(v) for v in pairs["label"]]
    return BatchInput(
        frame=frame,
        key=key,
        mode="pairs",
        reference=[str(p) for p in pairs["path_a"]],
        questioned=[str(p) for p in pairs["path_b"]],
        claimed=None,
        labels=labels,
    )


def _claims(
    src: Path,
    raw: pd.DataFrame,
    names: dict[str, str],
    frame: pd.DataFrame,
    key: str,
    images_root: str | os.PathLike[str] | None,
) -> BatchInput:
    base = Path(images_root) if images_root is not None else src.parent
    questioned, claimed, labels = [], [], []
    for i, row in enumerate(raw.itertuples(index=False), start=2):
        values = dict(zip(raw.columns, row, strict=True))
        path, who = values[names["questioned"]].strip(), values[names["claimed_identity"]].strip()
        if not path or not who:
            raise DatasetError(f"{src}:{i}: empty questioned path or claimed_identity")
        p = Path(path).expanduser()
        questioned.append(str(p if p.is_absolute() else (base / p).absolute()))
        claimed.append(who)
        if "label" in names:
            labels.append(_label(values[names["label"]], src, i))
    if frame[key].duplicated().any():
        raise DatasetError(f"{src}: duplicate id {frame[key][frame[key].duplicated()].iloc[0]!r}")
    return BatchInput(
        frame=frame,
        key=key,
        mode="claims",
        reference=None,
        questioned=questioned,
        claimed=claimed,
        labels=labels if "label" in names else None,
    )


def _label(value: str, src: Path, line: int) -> int | None:
    text = value.strip().lower()
    if not text:
        return None
    if text not in _LABELS:
        raise DatasetError(f"{src}:{line}: label {value!r}; expected 1/0, true/false or same/different")
    return _LABELS[text]
