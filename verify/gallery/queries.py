"""Read side of `FaissGallery`: search, verify, open-set identify, listings and statistics."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from verify.errors import UnknownIdentityError
from verify.gallery import index as ix
from verify.gallery import store
from verify.gallery.samples import aggregate, as_matrix
from verify.gallery.types import Hit, IdentifyResult, IdentityInfo, SampleInfo

_IDENTIFY_K_PER_IDENTITY = 8  # samples fetched per wanted identity before exact re-scoring


class GalleryQueryMixin:
    """Queries of `FaissGallery`; every method holds the gallery's lock and syncs with the files first."""

    directory: Path
    dim: int
    fingerprint: str
    index_type: str
    _conn: sqlite3.Connection
    _lock: threading.RLock
    _index: faiss.IndexIDMap2 | None
    _searcher: faiss.Index | None
    _active_type: str
    _generation: int

    if TYPE_CHECKING:

        def _sync(self) -> None: ...  # provided by FaissGallery

    def _search_raw(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Search the index (lock held). Returns scores [Q, k'] and ids [Q, k'] (-1 = none), k' <= k."""
        assert self._index is not None
        k = min(k, int(self._index.ntotal))
        if k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        if self._searcher is None:
            self._searcher = ix.to_search_device(self._index, self._active_type)
        return ix.search(self._searcher, queries, k)

    def identity_threshold(self, name: str) -> float | None:
        """The per-identity threshold set with `set_threshold`, or None (the model's threshold applies)."""
        with self._lock:
            return store.thresholds(self._conn, [name]).get(name)

    def search(self, query: np.ndarray, k: int = 5) -> list[list[Hit]]:
        """The k samples most similar to each query.

        Args:
            query: [D] or [Q, D] embeddings (L2-normalised here if they are not).
            k: hits per query.

        Returns:
            One list per query of up to k hits, best first (exact for Flat, approximate for HNSW/IVF).
        """
        q = as_matrix(query, self.dim, "query")
        with self._lock:
            self._sync()
            scores, ids = self._search_raw(q, k)
            names = store.names_of(self._conn, {int(i) for i in ids.ravel() if i >= 0})
        return [
            [
                Hit(names[int(i)], int(i), float(s))
                for s, i in zip(srow, irow, strict=True)
                if i >= 0 and int(i) in names
            ]
            for srow, irow in zip(scores, ids, strict=True)
        ]

    def verify(self, query: np.ndarray, claimed: str, template: str = "max") -> float:
        """Cosine similarity of `query` [D] with identity `claimed`: max over its samples, or with their mean."""
        q = as_matrix(query, self.dim, "query")[0]
        with self._lock:
            self._sync()
            found = store.identity_embeddings(self._conn, [claimed], self.dim)
        if claimed not in found:
            raise UnknownIdentityError(f"{claimed!r} is not enrolled in {self.directory}; enroll it first")
        return aggregate(found[claimed][1], q, template)

    def identify(self, query: np.ndarray, threshold: float, k: int = 5, template: str = "max") -> IdentifyResult:
        """Open-set identification of `query` [D].

        Candidate identities come from the index; each is then scored exactly over all its samples (one score
        per identity, `template` "max" or "mean"). The best identity is the answer if its score reaches its
        own threshold (per-identity, when set) or `threshold`; otherwise the answer is None ("unknown").
        """
        q = as_matrix(query, self.dim, "query")
        with self._lock:
            self._sync()
            _, ids = self._search_raw(q, max(k, 1) * _IDENTIFY_K_PER_IDENTITY)
            names_by_id = store.names_of(self._conn, [int(i) for i in ids[0] if i >= 0])
            names = list(dict.fromkeys(names_by_id[int(i)] for i in ids[0] if int(i) in names_by_id))
            found = store.identity_embeddings(self._conn, names, self.dim)
            own = store.thresholds(self._conn, names)
        scored = sorted(((n, aggregate(e, q[0], template)) for n, (_, e) in found.items()), key=lambda t: -t[1])
        if not scored:
            return IdentifyResult(None, float("-inf"), [])
        best, score = scored[0]
        accepted = score >= own.get(best, threshold)
        return IdentifyResult(best if accepted else None, score, scored[:k])

    def identities(self) -> list[IdentityInfo]:
        """All identities with at least one sample, sorted by name (older versions could leave empty ones)."""
        with self._lock:
            self._sync()
            rows = self._conn.execute(
                "SELECT i.name, COUNT(s.id), i.created, i.threshold FROM identities i"
                " JOIN samples s ON s.identity_id = i.id GROUP BY i.id ORDER BY i.name"
            ).fetchall()
        return [IdentityInfo(n, int(c), created, None if t is None else float(t)) for n, c, created, t in rows]

    def samples(self, name: str) -> list[SampleInfo]:
        """The samples of identity `name`, by id (UnknownIdentityError if not enrolled)."""
        with self._lock:
            self._sync()
            if store.identity_id(self._conn, name) is None:
                raise UnknownIdentityError(f"{name!r} is not enrolled in {self.directory}")
            rows = self._conn.execute(
                "SELECT s.id, s.image_sha256, s.enrolled_at, s.source, s.thumbnail IS NOT NULL,"
                " s.image IS NOT NULL OR s.image_path IS NOT NULL FROM samples s JOIN identities i"
                " ON s.identity_id = i.id WHERE i.name = ? ORDER BY s.id",
                (name,),
            ).fetchall()
        return [SampleInfo(int(r[0]), name, r[1], r[2], r[3], bool(r[4]), bool(r[5])) for r in rows]

    def thumbnail(self, sample_id: int) -> bytes | None:
        """PNG bytes of a sample's thumbnail, or None."""
        with self._lock:
            row = self._conn.execute("SELECT thumbnail FROM samples WHERE id = ?", (int(sample_id),)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def embeddings(self, name: str) -> np.ndarray:
        """The stored embeddings of identity `name`, float32 [n, D] in sample-id order."""
        with self._lock:
            found = store.identity_embeddings(self._conn, [name], self.dim)
        if name not in found:
            raise UnknownIdentityError(f"{name!r} is not enrolled in {self.directory}")
        return found[name][1]

    def stats(self) -> dict[str, Any]:
        """Counts, model, index type (configured and the one active now) and file sizes."""
        with self._lock:
            self._sync()
            n_ids = int(self._conn.execute("SELECT COUNT(DISTINCT identity_id) FROM samples").fetchone()[0])
            n_samples = int(self._conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
            ntotal = int(self._index.ntotal) if self._index is not None else 0
            generation, active = self._generation, self._active_type
        sizes = {p.name: p.stat().st_size for p in self.directory.iterdir() if p.is_file()}
        return {
            "directory": str(self.directory),
            "identities": n_ids,
            "samples": n_samples,
            "index_ntotal": ntotal,
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "index_type": self.index_type,
            "active_index_type": active,
            "generation": generation,
            "format_version": store.FORMAT_VERSION,
            "gpu": faiss.get_num_gpus() > 0,
            "file_bytes": sizes,
        }
