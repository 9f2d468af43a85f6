"""`FaissGallery`: enrolled identities in SQLite (the source of truth) with a FAISS inner-product index.

A gallery directory holds `gallery.sqlite` (meta, identities, samples with float32 embeddings), `index.faiss`
(an `IndexIDMap2` whose ids are sample ids), `index.json` (the index's generation) and `gallery.lock`.

Durability: a change runs in one SQLite transaction that bumps `meta.generation`; the new index is written to a
temp file and fsynced before the COMMIT, renamed over `index.faiss` after it, then `index.json` records the
generation and the sha256 of the index file's bytes. Opening compares generation and id set with SQLite and the
file with its digest, and rebuilds the index from SQLite (with a logged warning when the file was damaged) when
they disagree, so a process killed at any point leaves a gallery that opens consistent and a damaged index is
never searched. Opening also runs SQLite's `PRAGMA quick_check` and refuses a damaged, empty or foreign
`gallery.sqlite` with a `GalleryError` (nothing is written into it). `VERIFY_GALLERY_CRASH_AT`
(or the module-level `crash_hook`) injects a crash at the points "before_commit", "after_commit" and
"after_index_replace" for tests. Concurrency: a `threading.RLock` in-process and `fcntl.flock` across processes;
creation holds an `flock` on the directory itself, so processes creating one gallery at once all end in it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from verify.errors import GalleryError, ModelMismatchError
from verify.fsutil import atomic_write_json
from verify.gallery import index as ix
from verify.gallery import store
from verify.gallery.enrollment import GalleryChangeMixin
from verify.gallery.maintenance import GalleryMaintenanceMixin
from verify.gallery.queries import GalleryQueryMixin

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: in-process locking only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
CRASH_ENV = "VERIFY_GALLERY_CRASH_AT"
crash_hook: Callable[[str], None] | None = None
_RETRAIN_GROWTH = 2.0  # retrain a trained index when the gallery has doubled since it was trained


def _checkpoint(point: str) -> None:
    if crash_hook is not None:
        crash_hook(point)
    if os.environ.get(CRASH_ENV) == point:
        os._exit(1)


class FaissGallery(GalleryChangeMixin, GalleryQueryMixin, GalleryMaintenanceMixin):
    """A gallery of enrolled identities searched by cosine similarity. Build with `create` / `open`."""

    DB_FILE = "gallery.sqlite"
    INDEX_FILE = "index.faiss"
    SIDECAR_FILE = "index.json"
    LOCK_FILE = "gallery.lock"

    def __init__(self, directory: Path, *, create: bool = False) -> None:
        """Private: use `create`, `open` or `open_or_create`."""
        self.directory = Path(directory)
        self._lock = threading.RLock()
        self._flock_depth = 0
        self._index: faiss.IndexIDMap2 | None = None
        self._searcher: faiss.Index | None = None
        self._generation = -1
        self._active_type = "Flat"
        self._trained_on = 0
        self._conn = store.connect(self.directory / self.DB_FILE, create=create)
        self._lock_fd = os.open(self.directory / self.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        self._read_meta()

    # ----------------------------------------------------------------- construction
    @classmethod
    def create(cls, directory: str | Path, *, dim: int, fingerprint: str, index_type: str = "Flat") -> FaissGallery:
        """Create an empty gallery in `directory` (made if missing); refuses a directory that has one."""
        directory = Path(directory)
        if dim <= 0:
            raise GalleryError(f"dimension must be positive, got {dim}")
        ix.validate_index_type(index_type, dim)
        with _creation_lock(directory):
            return cls._create_locked(directory, dim, fingerprint, index_type)

    @classmethod
    def _create_locked(cls, directory: Path, dim: int, fingerprint: str, index_type: str) -> FaissGallery:
        if cls._exists(directory):
            raise GalleryError(f"{directory}: a gallery already exists here; open it instead")
        self = cls(directory, create=True)
        try:
            with self._locked():
                if store.get_meta(self._conn):
                    raise GalleryError(f"{directory}: a gallery already exists here; open it instead")
                self._conn.execute("BEGIN IMMEDIATE")
                values = {"format_version": store.FORMAT_VERSION, "fingerprint": fingerprint, "dim": dim}
                values.update(index_type=index_type, generation=0, created=store.now())
                store.set_meta(self._conn, values)
                self._conn.execute("COMMIT")
                self._read_meta()
                self._rebuild_locked()
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def _exists(cls, directory: Path) -> bool:
        """A gallery whose creation completed is there (a create killed before its commit does not count)."""
        path = directory / cls.DB_FILE
        if not path.is_file():
            return False
        store.check_header(path)  # an empty or foreign file is refused, never turned into a new gallery
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)
        try:
            return conn.execute("SELECT COUNT(*) FROM meta WHERE key = 'dim'").fetchone()[0] > 0
        except sqlite3.OperationalError as exc:  # "no such table": a create killed before its schema was written
            return "no such table" not in str(exc)  # else let `open` report it rather than overwrite it
        except sqlite3.DatabaseError:
            return True  # unreadable: let `open` report it rather than overwrite it
        finally:
            conn.close()

    @classmethod
    def open(cls, directory: str | Path, *, fingerprint: str | None = None) -> FaissGallery:
        """Open an existing gallery; with `fingerprint`, refuse one built by another model."""
        directory = Path(directory)
        if not directory.is_dir():
            raise GalleryError(f"{directory}: no gallery here (no such folder); create one")
        with _creation_lock(directory, shared=True):  # a gallery being created is seen complete or not at all
            exists = cls._exists(directory)
        if not exists:
            raise GalleryError(f"{directory}: no gallery here ({cls.DB_FILE} missing or never completed); create one")
        self = cls(directory)
        try:
            version = int(store.get_meta(self._conn).get("format_version", "0"))
            if version > store.FORMAT_VERSION or version < 1:
                raise GalleryError(f"{directory}: gallery format {version} is not supported by this version")
            if fingerprint is not None and fingerprint != self.fingerprint:
                raise ModelMismatchError(
                    f"{directory}: gallery was embedded by model {self.fingerprint}, the model in use is"
                    f" {fingerprint}; re-embed it from its stored images with `verify gallery reembed` or use"
                    " the matching model"
                )
            with self._lock:
                self._sync()
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def open_or_create(
        cls, directory: str | Path, *, dim: int, fingerprint: str, index_type: str = "Flat"
    ) -> FaissGallery:
        """Open the gallery in `directory` (checking fingerprint and dim), or create it there. Processes doing
        this at once on one directory all end up in the same gallery."""
        directory = Path(directory)
        if dim <= 0:
            raise GalleryError(f"dimension must be positive, got {dim}")
        ix.validate_index_type(index_type, dim)
        with _creation_lock(directory):
            if not cls._exists(directory):
                return cls._create_locked(directory, dim, fingerprint, index_type)
        gallery = cls.open(directory, fingerprint=fingerprint)
        if gallery.dim != dim:
            gallery.close()
            raise ModelMismatchError(f"{directory}: gallery holds {gallery.dim}-d embeddings, not {dim}-d")
        return gallery

    def _read_meta(self) -> None:
        meta = store.get_meta(self._conn)
        self.dim = int(meta.get("dim", "0"))
        self.fingerprint = meta.get("fingerprint", "")
        self.index_type = meta.get("index_type", "Flat")

    def close(self) -> None:
        """Close the database and the lock file; the gallery cannot be used afterwards."""
        with self._lock:
            if self._lock_fd >= 0:
                self._conn.close()
                os.close(self._lock_fd)
                self._lock_fd = -1
                self._index = self._searcher = None

    def __enter__(self) -> FaissGallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- locking and index state
    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the in-process RLock and the cross-process file lock (re-entrant)."""
        with self._lock:
            if self._lock_fd < 0:
                raise GalleryError(f"{self.directory}: gallery is closed")
            if self._flock_depth == 0 and fcntl is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._flock_depth += 1
            try:
                yield
            finally:
                self._flock_depth -= 1
                if self._flock_depth == 0 and fcntl is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

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
        except (OSError, ValueError):
            sidecar = {}
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


@contextmanager
def _creation_lock(directory: Path, *, shared: bool = False) -> Iterator[None]:
    """An `flock` on the directory itself (made if missing): one process at a time creates a gallery there,
    and (`shared`) openers wait until a creation in progress has completed."""
    directory.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
