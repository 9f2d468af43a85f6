"""The durable index of `FaissGallery`: `index.faiss` kept in step with SQLite, the source of truth.

A change runs in one SQLite transaction that bumps `meta.generation`; the new index is written to a temp file and
fsynced before the COMMIT, renamed over `index.faiss` after it, then `index.json` records the generation and the
sha256 of the index file's bytes. Syncing compares generation and id set with SQLite and the file with its digest,
and rebuilds the index from SQLite (with a logged warning when the file was damaged) when they disagree.
`VERIFY_GALLERY_CRASH_AT` (`CRASH_ENV`, or the module-level `crash_hook`) injects a crash at the points
"before_commit", "after_commit" and "after_index_replace" for tests.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from verify.errors import GalleryError
from verify.fsutil import atomic_write_json
from verify.gallery import index as ix
from verify.gallery import store

log = logging.getLogger(__name__)
CRASH_ENV = "VERIFY_GALLERY_CRASH_AT"
crash_hook: Callable[[str], None] | None = None
_RETRAIN_GROWTH = 2.0  # retrain a trained index when the gallery has doubled since it was trained


def _checkpoint(point: str) -> None:
    if crash_hook is not None:
        crash_hook(point)
    if os.environ.get(CRASH_ENV) == point:
        os._exit(1)


class GalleryDurabilityMixin:
    """Index state and durable writes of `FaissGallery`."""

    directory: Path
    dim: int
    index_type: str
    _conn: sqlite3.Connection
    _index: faiss.IndexIDMap2 | None
    _searcher: faiss.Index | None
    _generation: int
    _active_type: str
    _trained_on: int
    _lock_fd: int
    DB_FILE: str
    INDEX_FILE: str
    SIDECAR_FILE: str

    if TYPE_CHECKING:  # provided by FaissGallery

        def _locked(self) -> AbstractContextManager[None]: ...

        def _read_meta(self) -> None: ...

    def _sync(self) -> None:
        """Bring the in-memory index up to date with SQLite (another process may have changed it)."""
        if self._lock_fd < 0:
            raise GalleryError(f"{self.directory}: gallery is closed")
        if self._index is None or store.generation(self._conn) != self._generation:
            with self._locked():
                self._load_or_rebuild()

    def _paths(self) -> tuple[Path, Path]:
        return self.directory / self.INDEX_FILE, self.directory / self.SIDECAR_FILE

    def _load_or_rebuild(self) -> None:
        """Under the file lock: load index.faiss if it matches SQLite (generation and ids), else rebuild it."""
        self._read_meta()
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        index_path, sidecar_path = self._paths()
        generation = store.generation(self._conn)
        try:
            sidecar = json.loads(sidecar_path.read_text())
            sidecar = sidecar if isinstance(sidecar, dict) else {}
        except FileNotFoundError:
            sidecar = {}
        except (OSError, ValueError):
            sidecar = {}
            log.warning(
                "%s: %s is damaged; rebuilding the index from %s", self.directory, self.SIDECAR_FILE, self.DB_FILE
            )
        index = None
        if sidecar.get("generation") == generation and index_path.exists():
            index = ix.read_index(index_path, sidecar.get("sha256"))
            if index is None and sidecar.get("sha256"):
                log.warning(
                    "%s: %s does not match its recorded checksum (damaged); rebuilding it from %s",
                    self.directory,
                    self.INDEX_FILE,
                    self.DB_FILE,
                )
        if (
            index is None
            or index.d != self.dim
            or not np.array_equal(ix.index_ids(index), store.sample_ids(self._conn))
        ):
            self._rebuild_locked()
            return
        self._active_type = str(sidecar.get("active_type", "Flat"))
        self._trained_on = int(sidecar.get("trained_on", 0))
        ix.set_search_params(index, self._active_type, sidecar.get("search_params"))
        self._set_index(index, generation)

    def _set_index(self, index: faiss.IndexIDMap2, generation: int) -> None:
        self._index, self._searcher, self._generation = index, None, generation

    def _build_all(self) -> faiss.IndexIDMap2:
        """A fresh index over every sample in SQLite (sees the open transaction's changes)."""
        ids, embeddings = store.all_embeddings(self._conn, self.dim)
        self._active_type = ix.effective_type(self.index_type, len(ids))
        self._trained_on = len(ids) if self._active_type != "Flat" or self.index_type == "Flat" else 0
        return ix.build_index(self.dim, self._active_type, embeddings, ids)

    def _rebuild_locked(self) -> None:
        index = self._build_all()
        generation = store.generation(self._conn)
        self._publish(*ix.write_index_temp(index, self._paths()[0]), generation)
        self._set_index(index, generation)

    def _publish(self, tmp: Path, sha256: str, generation: int) -> None:
        """Rename the temp index into place, then record its generation and digest in the sidecar (durable)."""
        index_path, sidecar_path = self._paths()
        os.replace(tmp, index_path)
        _checkpoint("after_index_replace")
        info = {"generation": generation, "active_type": self._active_type, "trained_on": self._trained_on}
        info["sha256"] = sha256
        atomic_write_json(sidecar_path, info, fsync_dir=True)  # the directory fsync covers both renames

    def _next_index(self, added: tuple[np.ndarray, np.ndarray] | None, removed: np.ndarray | None) -> faiss.IndexIDMap2:
        """The index after a change: updated in place when possible, else rebuilt (and retrained) from SQLite."""
        assert self._index is not None
        n = int(self._conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
        retrain = ix.effective_type(self.index_type, n) != self._active_type or (
            self._active_type != "Flat" and n >= _RETRAIN_GROWTH * max(self._trained_on, 1)
        )
        if retrain or (removed is not None and len(removed) and not ix.supports_remove(self._active_type)):
            return self._build_all()
        if removed is not None and len(removed):
            self._index.remove_ids(np.ascontiguousarray(removed, dtype=np.int64))  # type: ignore[arg-type]
        if added is not None and len(added[0]):
            self._index.add_with_ids(added[1], np.ascontiguousarray(added[0], dtype=np.int64))
        return self._index

    def _write(self, change: Callable[[], tuple[Any, Any]], *, rebuild: bool = False) -> None:
        """Run `change` (SQL statements returning (added, removed)) in one durable transaction with the index."""
        with self._locked():
            self._sync()
            self._conn.execute("BEGIN IMMEDIATE")
            tmp: Path | None = None
            sha256 = ""
            try:
                added, removed = change()
                generation = self._generation + 1
                store.set_meta(self._conn, {"generation": generation})
                index = self._build_all() if rebuild else self._next_index(added, removed)
                tmp, sha256 = ix.write_index_temp(index, self._paths()[0])
                _checkpoint("before_commit")
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                self._index = None
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
                self._read_meta()
                raise
            _checkpoint("after_commit")
            ix.set_search_params(index, self._active_type)
            self._set_index(index, generation)
            self._publish(tmp, sha256, generation)
