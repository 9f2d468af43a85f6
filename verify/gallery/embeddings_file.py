"""The embeddings file of `verify embed` and `verify gallery build`: one Parquet file (or a folder of parts).

Columns: id, path, sha256 (of the decoded pixels), fingerprint (of the model's weights), embedding
(fixed_size_list<float32>[D], L2-normalised; null when the image could not be used), status ("ok", "error",
"rejected"), reason (empty when ok; "flagged: ..." on an ok row the OOD gate refused, embedded because of
`--gate-mode flag`), ood_score (null without a gate).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from verify.errors import DatasetError
from verify.fsutil import atomic_path

EMBED_COLUMNS = ("id", "path", "sha256", "fingerprint", "embedding", "status", "reason", "ood_score")


def write_embeddings(frame: pd.DataFrame, out: str | os.PathLike[str], dim: int) -> Path:
    """Write embeddings rows as one Parquet file atomically; `embedding` as fixed_size_list<float32>[dim]."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = [np.zeros(dim, np.float32) if e is None else np.asarray(e, np.float32) for e in frame["embedding"]]
    values = pa.array(np.concatenate(flat) if flat else np.zeros(0, np.float32), pa.float32())
    mask = pa.array([e is None for e in frame["embedding"]])
    embedding = pa.FixedSizeListArray.from_arrays(values, dim, mask=mask)
    columns = {
        c: pa.array(frame[c].tolist(), pa.string()) for c in EMBED_COLUMNS if c not in ("embedding", "ood_score")
    }
    table = pa.table(
        {
            **{c: columns[c] for c in ("id", "path", "sha256", "fingerprint")},
            "embedding": embedding,
            "status": columns["status"],
            "reason": columns["reason"],
            "ood_score": pa.array(frame["ood_score"].tolist(), pa.float64()),
        }
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".tmp") as tmp:
        pq.write_table(table, tmp)
    return path


def read_embeddings(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """An embeddings Parquet file (a file or a folder of parts) -> (rows without `embedding`, float32 [N, D];
    rows whose embedding is null hold zeros)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(f"{path}: not a readable embeddings Parquet file ({str(exc).splitlines()[0]})") from exc
    missing = [c for c in EMBED_COLUMNS if c not in table.column_names]
    if missing:
        raise DatasetError(f"{path}: columns {missing} missing; is it the output of `verify embed`?")
    column = table.column("embedding").combine_chunks()
    if not pa.types.is_fixed_size_list(column.type):
        raise DatasetError(f"{path}: 'embedding' is {column.type}, expected a fixed-size list of floats")
    dim = column.type.list_size
    values = column.flatten() if column.null_count == 0 else column.fill_null([0.0] * dim).flatten()
    matrix = np.asarray(values.to_numpy(zero_copy_only=False), np.float32).reshape(len(column), dim)
    return table.drop_columns(["embedding"]).to_pandas(), matrix
