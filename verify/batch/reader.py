"""The batch input: a pairs CSV (`reference,questioned[,label][,id]`) or a claims CSV
(`questioned,claimed_identity[,label][,id]`) read with every column kept, image paths resolved, rows keyed."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from verify.batch import uri
from verify.data.pairs_csv import LABEL_WORDS, LABELS
from verify.errors import ConfigError, DatasetError

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
MAX_PATH_CHARS = 4096  # Linux's PATH_MAX: a longer image path cell is a row error, never opened
# Python's csv module refuses a whole file over one cell longer than 128 KiB. A cell that long is one bad row:
# read cells up to 64 MiB, so that the row check above names it and the other rows are scored.
csv.field_size_limit(max(csv.field_size_limit(), 64 * 2**20))
_ALIASES = {"path_a": "reference", "path_b": "questioned"}


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
        errors: per row, why it cannot be scored ("" when it can): a malformed line, a path outside the root.
    """

    frame: pd.DataFrame
    key: str
    mode: str
    reference: list[str] | None
    questioned: list[str]
    claimed: list[str] | None
    labels: list[int | None] | None
    errors: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return self.frame[self.key].tolist()

    def images(self, i: int) -> list[str]:
        """The image paths of row i, in the order they are compared (none for a row with an error)."""
        if self.errors and self.errors[i]:
            return []
        if self.reference is None:
            return [self.questioned[i]]
        return [self.reference[i], self.questioned[i]]


def read_batch_input(
    path: str | os.PathLike[str],
    images_root: str | os.PathLike[str] | None = None,
    *,
    allow_outside_root: bool = False,
) -> BatchInput:
    """Read a pairs or claims CSV (or Parquet: `.parquet`/`.pq`, same columns); relative image paths resolve
    against `images_root` (default: the input file's folder). The input, the images root and the image paths
    may be URIs of any pyarrow filesystem (`file:///abs/pairs.csv`, `s3://bucket/pairs.parquet`; see
    `verify.batch.uri`).

    Path rule: an image path must resolve (symbolic links followed) inside the images root. A path that leaves it
    (`../x.png`, or an absolute path elsewhere) gives that row an error, unless `allow_outside_root`. A row whose
    number of fields differs from the header's (a stray comma) also gets a row error and is not scored: its
    values are never shifted into other columns. So does a row with an empty path or claimed identity, or a label
    that is none of the label words (`LABEL_WORDS`): one bad cell never stops the other rows.

    Raises:
        DatasetError: unreadable CSV or URI, missing columns, a column that would clash with a result column, a
            duplicate id, an id with a line break.
    """
    src = source_path(path)
    header, rows, lines = _read_rows(src)
    names = {c.strip().lower(): c for c in header}
    clash = sorted(set(names) & {*RESULT_COLUMNS, ROW})
    if clash:
        raise DatasetError(f"{src}: input columns {clash} clash with result columns; rename them")
    for alias, canonical in _ALIASES.items():
        if alias in names and canonical not in names:
            names[canonical] = names.pop(alias)
    if "questioned" in names and "claimed_identity" in names and "reference" not in names:
        mode, image_cols = "claims", ["questioned"]
    elif "reference" in names and "questioned" in names:
        mode, image_cols = "pairs", ["reference", "questioned"]
    else:
        raise DatasetError(
            f"{src}: columns {header}; expected reference,questioned[,label][,id] (or path_a,path_b), or"
            " questioned,claimed_identity[,label][,id] for claims against a gallery"
        )
    width = len(header)
    frame = pd.DataFrame([(r + [""] * width)[:width] for r in rows], columns=header, dtype=str)
    frame.insert(len(frame.columns), ROW, [str(i) for i in range(1, len(rows) + 1)])
    key = names.get("id", ROW)
    base = _base(src, images_root)
    resolver = _Resolver(base, allow_outside_root)
    errors = [""] * len(rows)
    paths: dict[str, list[str]] = {c: [] for c in image_cols}
    claimed: list[str] = []
    labels: list[int | None] = []
    for i, (fields, line) in enumerate(zip(rows, lines, strict=True)):
        values = dict(zip(header, (fields + [""] * width)[:width], strict=True))
        if len(fields) != width:
            errors[i] = f"line {line}: {len(fields)} fields where the header has {width} (a stray comma?); not scored"
        elif "id" in names and ("\n" in values[names["id"]] or "\r" in values[names["id"]]):
            raise DatasetError(f"{src}:{line}: id {values[names['id']]!r} contains a line break; ids are one line")
        for col in image_cols:
            text = values[names[col]].strip()
            if not text and not errors[i]:
                errors[i] = f"line {line}: empty {col} path; not scored"
            if len(text) > MAX_PATH_CHARS:
                errors[i] = errors[i] or f"line {line}: {col} path of {len(text):,} characters; not scored"
                text = ""
            resolved, outside = resolver(text)
            paths[col].append(resolved)
            if outside and not errors[i]:
                errors[i] = f"{col}: {text} is outside the images folder; use a path relative to it"
        if mode == "claims":
            who = values[names["claimed_identity"]].strip()
            if not who and not errors[i]:
                errors[i] = f"line {line}: empty claimed_identity; not scored"
            claimed.append(who)
        if "label" in names:
            label, problem = (None, "") if errors[i].startswith("line ") else _label(values[names["label"]], line)
            errors[i] = errors[i] or problem
            labels.append(label)
    if frame[key].duplicated().any():
        raise DatasetError(f"{src}: duplicate id {frame[key][frame[key].duplicated()].iloc[0]!r}")
    return BatchInput(
        frame=frame,
        key=key,
        mode=mode,
        reference=paths["reference"] if mode == "pairs" else None,
        questioned=paths["questioned"],
        claimed=claimed if mode == "claims" else None,
        labels=labels if "label" in names else None,
        errors=errors,
    )


PARQUET_SUFFIXES = (".parquet", ".pq")


def check_gallery_use(data: BatchInput, has_gallery: bool, source: object) -> None:
    """A claims CSV needs a gallery and a pairs CSV takes none (a --gallery it would ignore is refused)."""
    if data.mode == "claims" and not has_gallery:
        raise ConfigError(f"{source}: a questioned,claimed_identity CSV needs --gallery")
    if data.mode == "pairs" and has_gallery:
        raise ConfigError(
            f"{source}: a reference,questioned CSV compares its own pairs; --gallery is for "
            "questioned,claimed_identity CSVs (drop --gallery, or name the claimed identities)"
        )


def source_path(path: str | os.PathLike[str]) -> Path | str:
    """The input as a local `Path` (a plain path or a `file://` URI) or a remote URI string.

    Raises:
        DatasetError: no such local file; a remote URI that cannot be opened (its scheme unknown, its
            filesystem unreachable).
    """
    text = os.fspath(path)
    local = uri.as_local(text)
    if local is None:
        uri.open_uri(text)
        return text
    if not Path(local).is_file():
        if Path(local).is_dir():
            raise DatasetError(f"{text} is a folder; name the pairs file (CSV or Parquet)")
        if Path(local).exists():
            raise DatasetError(f"{text} is not a regular file; name the pairs file (CSV or Parquet)")
        raise DatasetError(f"{text}: no such pairs file (CSV or Parquet)")
    return Path(local)


def _base(src: Path | str, images_root: str | os.PathLike[str] | None) -> Path | str:
    if images_root is None:
        return src.parent if isinstance(src, Path) else uri.parent(src)
    text = os.fspath(images_root)
    local = uri.as_local(text)
    if local is not None and not Path(local).is_dir():
        what = "is not a folder" if Path(local).exists() else "does not exist"
        raise ConfigError(f"--images-root {text} {what}; name the folder the image paths start from")
    return Path(local) if local is not None else text.rstrip("/")


def _read_rows(src: Path | str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows (blank lines skipped) and the line number where each row starts (for Parquet: the
    row number plus one, as if the header were line 1)."""
    name = src.name if isinstance(src, Path) else src.rsplit("/", 1)[-1]
    data = src if isinstance(src, Path) else uri.read_uri(src)
    if Path(name).suffix.lower() in PARQUET_SUFFIXES:
        return _read_parquet_rows(src, data)
    try:
        with _text(data) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows, lines = [], []
            start = reader.line_num + 1
            for fields in reader:
                if fields and any(f.strip() for f in fields):
                    rows.append(fields)
                    lines.append(start)
                start = reader.line_num + 1
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(f"{src}: not a readable CSV ({str(exc).strip()})") from exc
    if not header:
        raise DatasetError(f"{src}: not a readable CSV (empty file: no header row)")
    return header, rows, lines


def _text(data: Path | bytes) -> io.TextIOBase:
    if isinstance(data, Path):
        return data.open(newline="", encoding="utf-8-sig")  # type: ignore[return-value]
    return io.StringIO(data.decode("utf-8-sig"), newline="")


def _read_parquet_rows(src: Path | str, data: Path | bytes) -> tuple[list[str], list[list[str]], list[int]]:
    """A Parquet table read as text, as the CSV path reads it: missing values are empty strings, integers keep
    their digits (a label 1 stays "1")."""
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError as exc:
        raise DatasetError(f"{src}: reading Parquet needs pyarrow (pip install 'siamese-verify[distributed]')") from exc
    try:
        table = pq.read_table(data if isinstance(data, Path) else io.BytesIO(data))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{src}: not a readable Parquet file ({str(exc).strip()[:200]})") from exc
    header = [str(name) for name in table.column_names]
    if not header:
        raise DatasetError(f"{src}: a Parquet file with no columns")
    columns = [["" if v is None else str(v) for v in col.to_pylist()] for col in table.columns]
    rows = [list(values) for values in zip(*columns, strict=True)] if columns else []
    keep = [i for i, r in enumerate(rows) if any(f.strip() for f in r)]
    return header, [rows[i] for i in keep], [i + 2 for i in keep]


class _Resolver:
    """Image path text -> (absolute path or URI, whether it leaves the images root); memoised per text (an
    image appears in many rows, and resolving symbolic links costs a few system calls)."""

    def __init__(self, base: Path | str, allow_outside_root: bool) -> None:
        self.base, self.any = base, allow_outside_root
        self.root = None if allow_outside_root or isinstance(base, str) else base.resolve()
        self.seen: dict[str, tuple[str, bool]] = {}

    def __call__(self, text: str) -> tuple[str, bool]:
        if text not in self.seen:
            self.seen[text] = self._resolve(text)
        return self.seen[text]

    def _resolve(self, text: str) -> tuple[str, bool]:
        if uri.is_remote(text):
            return text, not self.any and not (isinstance(self.base, str) and uri.is_under(text, self.base))
        local = uri.as_local(text)
        p = Path(local or text).expanduser()
        if isinstance(self.base, str) and not p.is_absolute():
            joined, outside = uri.join(self.base, local or text)
            return joined, outside and not self.any
        path = p if p.is_absolute() else (self.base / p).absolute()
        if self.any or not text:
            return str(path), False
        if self.root is None:  # a remote images root: a local path is outside it
            return str(path), True
        return str(path), not path.resolve().is_relative_to(self.root)


def _label(value: str, line: int) -> tuple[int | None, str]:
    """A label cell as 1 / 0 / None (empty), or None and the row's error when it is none of those."""
    text = value.strip().lower()
    if not text:
        return None, ""
    if text not in LABELS:
        return None, f"line {line}: label {value!r}; expected {LABEL_WORDS}; not scored"
    return LABELS[text], ""
