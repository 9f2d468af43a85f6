"""LFW View 2 `pairs.txt`: folds of matched and mismatched pairs, with missing images reported, never dropped.

Format: an optional header ``<folds>\\t<pairs per class>`` (``10\\t300``; View 1 files have one number), then per
fold that many matched lines ``name n1 n2`` followed by as many mismatched lines ``name1 n1 name2 n2``. Images are
``<images_root>/<name>/<name>_<nnnn>.jpg``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from verify.errors import DatasetError
from verify.fsutil import atomic_write_text


@dataclass(frozen=True)
class LfwPair:
    """One line of pairs.txt. `missing` is True when either image file does not exist."""

    path_a: Path
    path_b: Path
    same: bool
    fold: int
    line: int
    missing: bool = False


@dataclass
class LfwPairs:
    """All pairs of a pairs file; `missing` lists the absent image files (each once, in order of appearance)."""

    pairs: list[LfwPair]
    n_folds: int
    missing: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def labels(self) -> np.ndarray:
        """bool [N]: True for matched pairs."""
        return np.array([p.same for p in self.pairs], dtype=bool)

    @property
    def folds(self) -> np.ndarray:
        """int [N]: the fold of each pair, 0-based."""
        return np.array([p.fold for p in self.pairs], dtype=np.int64)

    @property
    def complete(self) -> list[LfwPair]:
        """The pairs whose two images both exist."""
        return [p for p in self.pairs if not p.missing]


def lfw_image_path(images_root: str | os.PathLike[str], name: str, number: int, ext: str = ".jpg") -> Path:
    """`<images_root>/<name>/<name>_<nnnn><ext>`."""
    return Path(images_root) / name / f"{name}_{number:04d}{ext}"


def _parse_header(fields: list[str]) -> tuple[int, int] | None:
    if len(fields) in (1, 2) and all(f.isdigit() for f in fields):
        return (int(fields[0]), int(fields[1])) if len(fields) == 2 else (1, int(fields[0]))
    return None


def _parse_line(fields: list[str], where: str) -> tuple[str, int, str, int]:
    try:
        if len(fields) == 3:
            return fields[0], int(fields[1]), fields[0], int(fields[2])
        if len(fields) == 4:
            return fields[0], int(fields[1]), fields[2], int(fields[3])
    except ValueError:
        raise DatasetError(f"{where}: image numbers must be integers: {' '.join(fields)!r}") from None
    raise DatasetError(
        f"{where}: expected 'name n1 n2' (matched) or 'name1 n1 name2 n2' (mismatched), "
        f"got {len(fields)} fields: {' '.join(fields)!r}"
    )


def read_lfw_pairs(
    pairs_file: str | os.PathLike[str], images_root: str | os.PathLike[str], *, ext: str = ".jpg"
) -> LfwPairs:
    """Parse an LFW pairs file; every pair is kept, pairs with absent images are flagged and listed.

    Without a header all pairs form fold 0. With a header the file must hold exactly folds x 2 x n lines, in
    fold order, matched lines first within each fold.

    Raises:
        DatasetError: unreadable file, a malformed line (named by its number), a line count that does not match
            the header, or a matched line in a mismatched block (and the reverse).
    """
    path = Path(pairs_file)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read LFW pairs file ({exc})") from exc
    numbered = [(i + 1, ln.split()) for i, ln in enumerate(lines) if ln.strip()]
    if not numbered:
        raise DatasetError(f"{path}: empty LFW pairs file")
    header = _parse_header(numbered[0][1])
    body = numbered[1:] if header else numbered
    n_folds, per_class = header or (1, 0)
    if header and len(body) != n_folds * 2 * per_class:
        raise DatasetError(
            f"{path}: header says {n_folds} folds x 2 x {per_class} pairs = {n_folds * 2 * per_class} lines, "
            f"found {len(body)}"
        )
    pairs, missing, seen = [], [], set()
    for k, (lineno, fields) in enumerate(body):
        where = f"{path}:{lineno}"
        name_a, n_a, name_b, n_b = _parse_line(fields, where)
        same = len(fields) == 3
        if header and same != (k % (2 * per_class) < per_class):
            kind = "matched" if same else "mismatched"
            raise DatasetError(f"{where}: {kind} pair where the header's fold layout expects the other kind")
        a, b = lfw_image_path(images_root, name_a, n_a, ext), lfw_image_path(images_root, name_b, n_b, ext)
        absent = [p for p in (a, b) if not p.is_file()]
        for p in absent:
            if p not in seen:
                seen.add(p)
                missing.append(p)
        fold = k // (2 * per_class) if header else 0
        pairs.append(LfwPair(a, b, same, fold, lineno, missing=bool(absent)))
    return LfwPairs(pairs=pairs, n_folds=n_folds, missing=missing)


def write_lfw_pairs(
    path: str | os.PathLike[str],
    folds: Sequence[tuple[Sequence[tuple[str, int, int]], Sequence[tuple[str, int, str, int]]]],
    *,
    header: bool = True,
) -> Path:
    """Write a pairs file: each fold is (matched [(name, n1, n2)], mismatched [(name1, n1, name2, n2)]).

    With `header`, every fold must hold the same number of matched and mismatched pairs. Written atomically.
    """
    out = Path(path)
    rows: list[str] = []
    if header:
        sizes = {len(m) for fold in folds for m in fold}
        if len(sizes) != 1:
            raise DatasetError(f"{out}: a header needs equal matched/mismatched counts per fold, got {sizes}")
        rows.append(f"{len(folds)}\t{sizes.pop()}")
    for matched, mismatched in folds:
        rows.extend("\t".join(map(str, m)) for m in matched)
        rows.extend("\t".join(map(str, m)) for m in mismatched)
    atomic_write_text(out, "\n".join(rows) + "\n")
    return out
