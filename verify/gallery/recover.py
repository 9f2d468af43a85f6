"""Recovery of a gallery whose SQLite file is damaged: every identity and sample that can still be read is copied
into a new database, which replaces the damaged one; the damaged file is kept beside it.

SQLite's own `.recover` needs the `sqlite_dbpage` table, which not every build has (Debian's `sqlite3` 3.40 fails
with "SQL logic error"), so this reads the tables through Python's `sqlite3`: a full scan first, and when a damaged
page stops it, one row at a time by id (ids are AUTOINCREMENT, so `sqlite_sequence` bounds them), skipping the
rows that cannot be read. A sample whose identity was lost is dropped (its name is gone), and so is one whose
embedding is not `dim` float32 values. The gallery's settings (the `meta` table: model fingerprint, dimension)
must be readable: without them nothing says which model the embeddings belong to.

The new database is written beside the damaged one and fsynced, then, holding the gallery's locks, the damaged
file (and its `-wal` / `-shm` files) is renamed to `gallery.sqlite.damaged-<time>` and the new one moved into its
place; the FAISS index is removed and rebuilt from it on the next open.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from verify.errors import GalleryError
from verify.gallery import store

_IDENTITY_COLUMNS = ("id", "name", "created", "threshold")
_SAMPLE_COLUMNS = (
    "id",
    "identity_id",
    "image_sha256",
    "thumbnail",
    "image",
    "image_path",
    "embedding",
    "enrolled_at",
    "source",
)
_MISSES_WITHOUT_BOUND = 10_000  # ids probed past the last one found when sqlite_sequence cannot be read


@dataclass(frozen=True)
class TableSalvage:
    """What was read from one table: the rows, and how many ids could not be read (rows lost to damage; None
    when the table's id counter could not be read either, so the count is unknown)."""

    rows: list[tuple[Any, ...]]
    unreadable: int | None


@dataclass(frozen=True)
class RecoveryReport:
    """The outcome of `recover_gallery`.

    damaged: whether the database was damaged at all (False: nothing was changed);
    identities / samples: how many the recovered gallery holds;
    identities_unreadable / samples_unreadable: ids that could not be read (rows lost, or ids no longer used;
        None: unknown, the table's id counter was damaged too);
    samples_orphaned: readable samples dropped because their identity was lost;
    samples_invalid: readable samples dropped because their embedding was not `dim` float32 values;
    emptied: identities recovered with no sample left (to enroll again);
    kept_as: the damaged file's new name in the gallery folder (None when nothing was changed).
    """

    damaged: bool
    identities: int = 0
    samples: int = 0
    identities_unreadable: int | None = 0
    samples_unreadable: int | None = 0
    samples_orphaned: int = 0
    samples_invalid: int = 0
    emptied: tuple[str, ...] = ()
    kept_as: str | None = None

    @property
    def complete(self) -> bool:
        """Nothing readable was dropped and no id was unreadable (the recovery may still have lost nothing)."""
        unreadable = (self.identities_unreadable, self.samples_unreadable)
        return all(n == 0 for n in unreadable) and not (self.samples_orphaned or self.samples_invalid)


def is_damaged(path: Path) -> bool:
    """Whether the database fails `PRAGMA quick_check` (or cannot be opened as one)."""
    store.check_header(path)
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        store.quick_check(conn, path)
    except (GalleryError, sqlite3.DatabaseError):
        return True
    finally:
        conn.close()
    return False


def _sequence(conn: sqlite3.Connection, table: str) -> int | None:
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else int(row[0])


def salvage(conn: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> TableSalvage:
    """Every readable row of `table` (by id); a full scan when it works, else one id at a time."""
    select = f"SELECT {', '.join(columns)} FROM {table}"
    try:
        return TableSalvage(conn.execute(f"{select} ORDER BY id").fetchall(), 0)
    except sqlite3.DatabaseError:
        pass
    bound = _sequence(conn, table)
    rows, unreadable, last_found, rid = [], 0, 0, 0
    while True:
        rid += 1
        if bound is not None and rid > bound:
            break
        if bound is None and rid > last_found + _MISSES_WITHOUT_BOUND:
            break
        try:
            row = conn.execute(f"{select} WHERE id = ?", (rid,)).fetchone()
        except sqlite3.DatabaseError:
            unreadable += 1
            continue
        if row is not None:
            rows.append(row)
            last_found = rid
    return TableSalvage(rows, unreadable if bound is not None else None)


def _read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, str]:
    try:
        meta = store.get_meta(conn)
    except sqlite3.DatabaseError as exc:
        raise GalleryError(
            f"{path}: the gallery's settings (model fingerprint, dimension) cannot be read ({exc}), so its "
            "embeddings cannot be recovered; restore it from a backup"
        ) from None
    if not meta.get("dim") or not meta.get("fingerprint"):
        raise GalleryError(f"{path}: the gallery's settings are incomplete; restore it from a backup")
    return meta


def _write_new(
    path: Path, meta: dict[str, str], identities: list[tuple[Any, ...]], samples: list[tuple[Any, ...]]
) -> None:
    """The recovered database at `path` (made anew), committed and checkpointed into the one file."""
    conn = store.connect(path, create=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        store.set_meta(conn, {**meta, "generation": int(meta.get("generation", "0")) + 1})
        tables = (("identities", _IDENTITY_COLUMNS, identities), ("samples", _SAMPLE_COLUMNS, samples))
        for table, columns, rows in tables:
            marks = ", ".join("?" * len(columns))
            conn.executemany(f"INSERT INTO {table}({', '.join(columns)}) VALUES ({marks})", rows)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to move into place
    finally:
        conn.close()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _companions(path: Path) -> Iterator[tuple[Path, str]]:
    """The database file and its WAL / shared-memory files, with their suffixes."""
    for suffix in ("", "-wal", "-shm"):
        yield path.with_name(path.name + suffix), suffix


def recover_gallery(directory: str | Path) -> RecoveryReport:
    """Recover the damaged gallery in `directory` in place (module docstring); a healthy one is left untouched.

    Raises:
        GalleryError: no gallery database there, a file that is not an SQLite database (its header is gone:
            only a backup helps), unreadable settings, or no identity readable; the files are left as they are.
    """
    from verify.gallery.faiss_gallery import FaissGallery, _creation_lock

    directory = Path(directory)
    path = directory / FaissGallery.DB_FILE
    if not path.is_file():
        raise GalleryError(f"{directory}: no gallery database here ({FaissGallery.DB_FILE} missing)")
    with _creation_lock(directory):  # no one opens or creates the gallery meanwhile
        if not is_damaged(path):
            return RecoveryReport(damaged=False)
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            meta = _read_meta(conn, path)
            dim = int(meta["dim"])
            idents = salvage(conn, "identities", _IDENTITY_COLUMNS)
            samples = salvage(conn, "samples", _SAMPLE_COLUMNS)
        finally:
            conn.close()
        if not idents.rows:
            raise GalleryError(
                f"{path}: no identity could be read back from the damaged gallery database; it was left as it is: "
                "restore it from a backup"
            )
        known = {row[0] for row in idents.rows}
        kept = [s for s in samples.rows if s[1] in known and isinstance(s[6], bytes) and len(s[6]) == 4 * dim]
        orphaned = sum(s[1] not in known for s in samples.rows)
        with_samples = {s[1] for s in kept}
        fresh = directory / (FaissGallery.DB_FILE + ".recovering")
        for stale, _ in _companions(fresh):
            stale.unlink(missing_ok=True)
        _write_new(fresh, meta, idents.rows, kept)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        damaged_name = f"{FaissGallery.DB_FILE}.damaged-{stamp}"
        lock_fd = os.open(directory / FaissGallery.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            with suppress(ImportError):
                import fcntl

                fcntl.flock(lock_fd, fcntl.LOCK_EX)  # no gallery process is writing
            for old, suffix in _companions(path):
                if old.exists():
                    os.replace(old, directory / (damaged_name + suffix))
            os.replace(fresh, path)
            for name in (FaissGallery.INDEX_FILE, FaissGallery.SIDECAR_FILE):
                (directory / name).unlink(missing_ok=True)
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        finally:
            os.close(lock_fd)  # closing releases the flock
    with FaissGallery.open(directory):  # rebuilds the index from the recovered database
        pass
    return RecoveryReport(
        damaged=True,
        identities=len(idents.rows),
        samples=len(kept),
        identities_unreadable=idents.unreadable,
        samples_unreadable=samples.unreadable,
        samples_orphaned=orphaned,
        samples_invalid=len(samples.rows) - orphaned - len(kept),
        emptied=tuple(sorted(str(row[1]) for row in idents.rows if row[0] not in with_samples)),
        kept_as=damaged_name,
    )
