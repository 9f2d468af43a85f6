"""`FaissGallery`: enrolled identities in SQLite (the source of truth) with a FAISS inner-product index.

A gallery directory holds `gallery.sqlite` (meta, identities, samples with float32 embeddings), `index.faiss`
(an `IndexIDMap2` whose ids are sample ids), `index.json` (the index's generation) and `gallery.lock`.

Durability (`verify.gallery.durable`): a change runs in one SQLite transaction with the new index written and
fsynced before the COMMIT; opening checks the index against SQLite and its recorded digest and rebuilds it when
they disagree, so a process killed at any point leaves a gallery that opens consistent and a damaged index is
never searched. Opening also runs SQLite's `PRAGMA quick_check` and refuses a damaged, empty or foreign
`gallery.sqlite` with a `GalleryError` (nothing is written into it). Concurrency: a `threading.RLock`
in-process and `fcntl.flock` across processes; creation holds an `flock` on the directory itself, so processes
creating one gallery at once all end in it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss

from verify.errors import GalleryError, ModelMismatchError
from verify.gallery import index as ix
from verify.gallery import store
from verify.gallery.durable import GalleryDurabilityMixin
from verify.gallery.enrollment import GalleryChangeMixin
from verify.gallery.maintenance import GalleryMaintenanceMixin
from verify.gallery.queries import GalleryQueryMixin

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: in-process locking only
    fcntl = None  # type: ignore[assignment]


class FaissGallery(GalleryDurabilityMixin, GalleryChangeMixin, GalleryQueryMixin, GalleryMaintenanceMixin):
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
            what = "a file, not a gallery folder" if directory.exists() else "no gallery here (no such folder)"
            raise GalleryError(f"{directory}: {what}; `verify enroll` or `verify gallery build` creates one")
        with _creation_lock(directory, shared=True):  # a gallery being created is seen complete or not at all
            exists = cls._exists(directory)
        if not exists:
            raise GalleryError(
                f"{directory}: no gallery here ({cls.DB_FILE} missing or never completed); `verify enroll` or "
                "`verify gallery build` creates one"
            )
        self = cls(directory)
        try:
            version = int(store.get_meta(self._conn).get("format_version", "0"))
            if version > store.FORMAT_VERSION or version < 1:
                raise GalleryError(f"{directory}: gallery format {version} is not supported by this version")
            if fingerprint is not None and fingerprint != self.fingerprint:
                raise ModelMismatchError(_mismatch(directory, self.fingerprint, fingerprint))
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


def _mismatch(directory: Path, gallery_model: str, model: str) -> str:
    """Why a gallery refuses the model in use, naming bundled models; a face/signature mix-up is said as such
    (re-embedding would not help: the gallery's images are of the other kind)."""
    from verify.models.defaults import bundled_model_of

    made, using = bundled_model_of(gallery_model), bundled_model_of(model)

    def words(fingerprint: str, found: tuple[str, str] | None) -> str:
        return f"model {fingerprint}" + (f" ({found[0]}, a {found[1]} model)" if found else "")

    head = (
        f"{directory}: gallery was embedded by {words(gallery_model, made)}, the model in use is {words(model, using)}"
    )
    if made and using and made[1] != using[1]:
        return f"{head}; this is a {made[1]} gallery: use --modality {made[1]} (or that model), or a {using[1]} gallery"
    return f"{head}; re-embed it from its stored images with `verify gallery reembed` or use the matching model"
