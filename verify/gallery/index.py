"""FAISS index helpers of the gallery: factory strings, training rules, search parameters, atomic file I/O.

Every index is built with `faiss.index_factory(dim, type, METRIC_INNER_PRODUCT)` and wrapped in
`faiss.IndexIDMap2`, so its ids are the gallery's sample ids. Types that need training (IVF, PQ) stay an exact
"Flat" index until the gallery holds enough samples to train them (`min_training_size`).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np

from verify.errors import GalleryError

_IVF = re.compile(r"^IVF(\d+),(Flat|PQ(\d+))$")
_HNSW = re.compile(r"^HNSW(\d+)$")
# faiss warns below 39 training points per k-means centroid; PQ codebooks have 256 centroids each.
_TRAIN_PER_CENTROID = 39
_PQ_CENTROIDS = 256
# nprobe = max(16, nlist / 16): bench_gallery (synthetic clustered 128-d) gives recall@1 0.99 at 100k (IVF632,
# nprobe 39) and 0.98 at 1M (IVF2000, nprobe 128), where a fixed nprobe of 16 drops to 0.80 at 1M.
MIN_NPROBE, NPROBE_FRACTION = 16, 16
DEFAULT_EF_SEARCH = 128
# Below this many queries one OpenMP thread is faster: faiss parallelises over queries, and idle threads spinning
# at the barrier cost ~30 ms per search on a busy 2-core machine (measured: 55 vs 2,900 single searches/s).
SINGLE_THREAD_BELOW = 16


def validate_index_type(index_type: str, dim: int) -> str:
    """Check a factory string: "Flat", "HNSW{M}", "IVF{n},Flat" or "IVF{n},PQ{m}" (m must divide dim).

    Returns:
        The string unchanged.
    """
    ivf = _IVF.match(index_type)
    if index_type == "Flat" or _HNSW.match(index_type):
        return index_type
    if ivf and ivf.group(3) and dim % int(ivf.group(3)) != 0:
        raise GalleryError(f"index type {index_type!r}: PQ{ivf.group(3)} needs a dimension divisible by it, not {dim}")
    if ivf and int(ivf.group(1)) > 0:
        return index_type
    raise GalleryError(
        f"unknown index type {index_type!r}; use 'Flat', 'HNSW32', 'IVF{{n}},Flat' or 'IVF{{n}},PQ{{m}}'"
    )


def min_training_size(index_type: str) -> int:
    """Number of samples from which a trained type is built; 0 for types that need no training."""
    ivf = _IVF.match(index_type)
    if not ivf:
        return 0
    size = _TRAIN_PER_CENTROID * int(ivf.group(1))
    return max(size, _TRAIN_PER_CENTROID * _PQ_CENTROIDS) if ivf.group(3) else size


def effective_type(index_type: str, n: int) -> str:
    """The type actually built for `n` samples: trained types fall back to exact "Flat" below their minimum."""
    return index_type if n >= min_training_size(index_type) else "Flat"


def build_index(dim: int, index_type: str, embeddings: np.ndarray, ids: np.ndarray) -> faiss.IndexIDMap2:
    """Build an `IndexIDMap2` over `embeddings` [N, D] with int64 `ids` [N], training it on them if needed."""
    index = faiss.IndexIDMap2(faiss.index_factory(dim, index_type, faiss.METRIC_INNER_PRODUCT))
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if not index.is_trained:
        index.train(embeddings)
    if len(ids):
        index.add_with_ids(embeddings, np.ascontiguousarray(ids, dtype=np.int64))
    set_search_params(index, index_type)
    return index


def set_search_params(index: faiss.Index, index_type: str, params: str | None = None) -> None:
    """Apply search parameters ("nprobe=16", "efSearch=128"); defaults suit galleries of up to ~1M samples."""
    if params is None:
        ivf = _IVF.match(index_type)
        if ivf:
            nlist = int(ivf.group(1))
            params = f"nprobe={min(nlist, max(MIN_NPROBE, nlist // NPROBE_FRACTION))}"
        elif _HNSW.match(index_type):
            params = f"efSearch={DEFAULT_EF_SEARCH}"
    if params:
        try:
            faiss.ParameterSpace().set_index_parameters(index, params)  # type: ignore[arg-type]
        except RuntimeError as exc:
            raise GalleryError(f"search parameters {params!r} do not apply to index {index_type!r}: {exc}") from exc


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`index.search` on queries [Q, D], single-threaded for small Q. Returns scores [Q, k], ids [Q, k]."""
    if len(queries) >= SINGLE_THREAD_BELOW:
        return index.search(queries, k)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # per calling thread in OpenMP: other threads keep their setting
    try:
        return index.search(queries, k)
    finally:
        faiss.omp_set_num_threads(threads)


def index_ids(index: faiss.IndexIDMap2) -> np.ndarray:
    """The ids held by an `IndexIDMap2`, sorted int64 [N]."""
    return np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))


def supports_remove(index_type: str) -> bool:
    """HNSW graphs cannot delete vectors; the gallery rebuilds them instead."""
    return not _HNSW.match(index_type)


def write_index_temp(index: faiss.Index, path: Path) -> tuple[Path, str]:
    """Write `index` to a temp file beside `path` and fsync it; the caller renames it with `os.replace`.

    Returns:
        The temp file and the sha256 hex digest of its bytes (recorded in the sidecar, checked on read).
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    faiss.write_index(index, str(tmp))
    with open(tmp, "rb+") as fh:
        digest = _sha256(fh)
        os.fsync(fh.fileno())
    return tmp, digest


def read_index(path: Path, sha256: str | None) -> faiss.IndexIDMap2 | None:
    """Read an index file whose bytes hash to `sha256`; None when it is missing, damaged (its bytes do not hash
    to `sha256`, or no digest is known) or unreadable: the gallery then rebuilds it. A damaged file never
    reaches faiss (the caller holds the gallery's file lock, so the file cannot change between hash and read)."""
    try:
        with open(path, "rb") as fh:
            if not sha256 or _sha256(fh) != sha256:
                return None
        index = faiss.read_index(str(path))
    except (OSError, RuntimeError):
        return None
    return index if isinstance(index, faiss.IndexIDMap2) else None


def _sha256(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: fh.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def to_search_device(index: faiss.Index, index_type: str) -> faiss.Index:
    """A GPU replica of `index` for searching when faiss sees GPUs (not for HNSW), else `index` itself."""
    if faiss.get_num_gpus() <= 0 or _HNSW.match(index_type):
        return index
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except (RuntimeError, AttributeError):
        return index
