"""Pairs CSV: `path_a,path_b[,label][,id]` (or `reference,questioned[,label][,id]`), validated, paths resolved."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from verify.errors import DatasetError

_ALIASES = {"reference": "path_a", "questioned": "path_b"}
_TRUE = {"1", "1.0", "true", "yes", "same", "genuine", "match"}
_FALSE = {"0", "0.0", "false", "no", "different", "forgery", "skilled", "mismatch"}
LABELS = {**dict.fromkeys(_TRUE, 1), **dict.fromkeys(_FALSE, 0)}  # a label cell, stripped and lower-cased -> 1 / 0
LABEL_WORDS = "1/0, true/false, yes/no, same/different, genuine/forgery (or skilled) or match/mismatch"


def read_pairs_csv(path: str | os.PathLike[str], images_root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Read and validate a pairs CSV.

    Args:
        path: the CSV file; header row required.
        images_root: relative image paths are resolved against it (default: the CSV's own folder).

    Returns:
        DataFrame with columns id (str; from the file or the 1-based row number), path_a, path_b (absolute
        `Path`s; existence is not checked so a batch job can report missing files per row), label (nullable
        Int64, 1 = same identity, 0 = different, <NA> where blank; absent column -> all <NA>), line (the line
        number in the file).

    Raises:
        DatasetError: missing/unreadable file, no path columns, an empty path or an unknown label, naming the
            line.
    """
    src = Path(path)
    if not src.is_file():
        raise DatasetError(f"{src}: no such pairs CSV")
    try:
        df = pd.read_csv(src, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{src}: not a readable CSV ({str(exc).strip()})") from exc
    df.columns = [str(c).strip().lower() for c in df.columns]
    df = df.rename(columns=_ALIASES)
    if not {"path_a", "path_b"} <= set(df.columns):
        raise DatasetError(
            f"{src}: columns {list(df.columns)}; expected path_a,path_b[,label][,id] "
            "or reference,questioned[,label][,id]"
        )
    if df.columns.duplicated().any():
        raise DatasetError(f"{src}: duplicate columns after aliasing: {list(df.columns)}")
    base = Path(images_root) if images_root is not None else src.parent
    lines = pd.Series(range(2, len(df) + 2), index=df.index)
    out = pd.DataFrame(
        {
            "id": df["id"].str.strip() if "id" in df else lines.map(lambda n: str(n - 1)),
            "path_a": _resolve(df["path_a"], base, lines, src, "path_a"),
            "path_b": _resolve(df["path_b"], base, lines, src, "path_b"),
            "label": _labels(df["label"], lines, src) if "label" in df else pd.array([pd.NA] * len(df), "Int64"),
            "line": lines,
        }
    )
    if "id" in df and out["id"].duplicated().any():
        dup = out.loc[out["id"].duplicated(), ["id", "line"]].iloc[0]
        raise DatasetError(f"{src}:{dup['line']}: duplicate id {dup['id']!r}")
    return out.reset_index(drop=True)


def _resolve(col: pd.Series, base: Path, lines: pd.Series, src: Path, name: str) -> list[Path]:
    out = []
    for value, line in zip(col, lines, strict=True):
        text = value.strip()
        if not text:
            raise DatasetError(f"{src}:{line}: empty {name}")
        p = Path(text).expanduser()
        out.append(p if p.is_absolute() else (base / p).absolute())
    return out


def _labels(col: pd.Series, lines: pd.Series, src: Path) -> pd.arrays.IntegerArray:
    values: list[int | None] = []
    for value, line in zip(col, lines, strict=True):
        text = value.strip().lower()
        if text == "":
            values.append(None)
        elif text in LABELS:
            values.append(LABELS[text])
        else:
            raise DatasetError(f"{src}:{line}: label {value!r}; expected {LABEL_WORDS}")
    return pd.array(values, dtype="Int64")
