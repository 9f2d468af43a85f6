"""Fill a gallery from bulk embeddings (`verify embed` output) in one transaction, with an index chosen by size.

Index types (FAISS factory strings, inner product on L2-normalised vectors):
- below `FLAT_BELOW` samples: "Flat", exact search;
- up to `PQ_FROM`: "IVF{n},Flat" with n = 4 sqrt(N) lists (exact distances inside the probed lists; supports
  removal, unlike HNSW graphs);
- from `PQ_FROM`: "IVF{n},PQ{m}" with m = D/4 bytes per vector (a 10M x 128-d gallery takes 320 MB, not 5 GB).
FAISS trains IVF centroids (k-means) on a sample of at most 256 points per list and PQ codebooks on a sample as
well, so training time does not grow with the gallery.

Every row must carry the fingerprint of one model, and of the gallery's model when the gallery exists: rows
from another model would be compared with vectors of a different space, so the build is refused.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from verify.errors import DatasetError, ModelMismatchError
from verify.gallery import store
from verify.gallery.embeddings_file import read_embeddings
from verify.gallery.faiss_gallery import FaissGallery
from verify.gallery.samples import as_matrix, check_name

FLAT_BELOW = 100_000
PQ_FROM = 10_000_000


@dataclass
class BulkSummary:
    """What `build_gallery` did."""

    gallery: Path
    index_type: str
    identities: int
    added: int
    skipped_unlabelled: int = 0
    skipped_unusable: int = 0  # status error / rejected in the embeddings file
    skipped_duplicate: int = 0  # same image (sha256) already in the gallery or earlier in the file
    skipped_flagged: int = 0  # rows the OOD gate flagged (`verify embed --gate-mode flag`), left out as asked
    labels_unmatched: int = 0  # labels naming no row of the embeddings file (a typo leaves a person out)
    flagged: int = 0  # rows the OOD gate flagged that were given to the gallery (skip_flagged=False)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "gallery": str(self.gallery)}


def choose_index_type(n: int, dim: int) -> str:
    """The FAISS factory string for a gallery of `n` samples of dimension `dim` (see the module docstring)."""
    if n < FLAT_BELOW:
        return "Flat"
    nlist = int(4 * math.sqrt(n))
    if n < PQ_FROM:
        return f"IVF{nlist},Flat"
    m = next(m for m in (dim // 4, dim // 2, dim) if m > 0 and dim % m == 0)
    return f"IVF{nlist},PQ{m}"


def read_labels(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A labels CSV: `identity` and `id` (or `path`) columns. Returns columns key ("id" or "path"), value, identity."""
    src = Path(path)
    try:
        raw = pd.read_csv(src, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DatasetError(f"{src}: no such labels CSV") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{src}: not a readable CSV ({str(exc).strip()})") from exc
    names = {str(c).strip().lower(): c for c in raw.columns}
    key = "id" if "id" in names else "path" if "path" in names else None
    if key is None or "identity" not in names:
        raise DatasetError(f"{src}: needs columns 'identity' and 'id' (or 'path'); found {list(raw.columns)}")
    frame = pd.DataFrame({"value": raw[names[key]].str.strip(), "identity": raw[names["identity"]].str.strip()})
    if (frame["identity"] == "").any():
        raise DatasetError(f"{src}:{int(np.argmax(frame['identity'] == '')) + 2}: empty identity")
    dup = frame["value"][frame["value"].duplicated()]
    if len(dup):
        raise DatasetError(f"{src}: {key} {dup.iloc[0]!r} is labelled twice")
    frame.insert(0, "key", key)
    return frame


def build_gallery(
    directory: str | os.PathLike[str],
    embeddings: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    *,
    fingerprint: str | None = None,
    index_type: str | None = None,
    skip_flagged: bool = False,
) -> BulkSummary:
    """Add every labelled, usable row of an embeddings file to the gallery in `directory` (created if missing).

    Args:
        directory: the gallery.
        embeddings: a `verify embed` Parquet file.
        labels: CSV naming each row's identity (`id,identity` or `path,identity`).
        fingerprint: the model in use; refuse embeddings (and a gallery) of another one.
        index_type: a FAISS factory string for a new gallery; default `choose_index_type(rows)`.
        skip_flagged: leave out rows the OOD gate flagged (embedded with `--gate-mode flag`: answered although
            the image did not look like the modality's input); by default they are added and counted.

    Raises:
        ModelMismatchError: rows of several models, of another model than `fingerprint` or than the gallery's.
        DatasetError: unreadable files, labels naming no row.
    """
    import time

    t0 = time.perf_counter()
    rows, matrix = read_embeddings(embeddings)
    found = sorted(set(rows["fingerprint"]))
    if len(found) > 1:
        raise ModelMismatchError(f"{embeddings}: rows come from {len(found)} models ({', '.join(found)}); embed once")
    model = found[0] if found else (fingerprint or "")
    if fingerprint is not None and model != fingerprint:
        raise ModelMismatchError(
            f"{embeddings}: embedded by model {model}, the model in use is {fingerprint}; re-embed with it"
        )
    table = read_labels(labels)
    by_value = dict(zip(table["value"], table["identity"], strict=True))
    names = rows[table["key"].iloc[0] if len(table) else "id"].map(by_value)
    unusable = names.notna() & (rows["status"] != "ok")
    flagged = names.notna() & ~unusable & rows["reason"].fillna("").astype(str).str.startswith("flagged")
    left_out = unusable | flagged if skip_flagged else unusable
    chosen = np.flatnonzero((names.notna() & ~left_out).to_numpy())
    if len(table) and not names.notna().any():
        raise DatasetError(f"{labels}: no label matches a row of {embeddings} (by {table['key'].iloc[0]})")
    key_column = table["key"].iloc[0] if len(table) else "id"
    unmatched = table.loc[~table["value"].isin(set(rows[key_column].astype(str))), "value"].tolist()
    dim = matrix.shape[1]
    kind = index_type or choose_index_type(len(chosen), dim)
    with FaissGallery.open_or_create(Path(directory), dim=dim, fingerprint=model, index_type=kind) as gallery:
        summary = BulkSummary(Path(directory), gallery.index_type, 0, 0)
        summary.skipped_unlabelled = int(names.isna().sum())
        summary.skipped_unusable = int(unusable.sum())
        summary.labels_unmatched = len(unmatched)
        if unmatched:
            summary.warnings.append(
                f"{len(unmatched)} label(s) match no row of the embeddings file, e.g. {unmatched[0]!r}: "
                "check the ids (or paths) for typos; those people were not added"
            )
        summary.skipped_flagged, summary.flagged = (int(flagged.sum()), 0) if skip_flagged else (0, int(flagged.sum()))
        x = as_matrix(matrix[chosen], dim) if len(chosen) else np.zeros((0, dim), np.float32)
        _insert(gallery, [str(names.iloc[i]) for i in chosen], x, rows.iloc[chosen], summary)
    summary.seconds = time.perf_counter() - t0
    return summary


def _insert(gallery: FaissGallery, who: list[str], x: np.ndarray, rows: pd.DataFrame, summary: BulkSummary) -> None:
    """One durable transaction: identities, samples (skipping known image hashes), then an index rebuilt over all."""
    conn = gallery._conn
    shas = rows["sha256"].tolist()
    sources = rows["path"].tolist()

    def change() -> tuple[Any, Any]:
        known = set(store.samples_with_hash(conn, shas))
        ids: dict[str, int] = {}
        batch = []
        now = store.now()
        for j, name in enumerate(who):
            sha = shas[j] or None
            if sha is not None and sha in known:
                summary.skipped_duplicate += 1
                continue
            if sha is not None:
                known.add(sha)
            if name not in ids:
                ids[name] = store.identity_id(conn, check_name(name), create=True) or 0
            batch.append((ids[name], sha, sources[j], x[j].tobytes(), now, "bulk"))
        conn.executemany(
            "INSERT INTO samples(identity_id, image_sha256, image_path, embedding, enrolled_at, source)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            batch,
        )
        summary.added, summary.identities = len(batch), len(ids)
        return None, None

    gallery._write(change, rebuild=True)
