"""SQLite side of the gallery: schema, meta table, and the queries the gallery needs.

Embeddings are stored as float32 bytes in `samples.embedding`: they are the source of truth, so the FAISS index
can always be rebuilt from this file. The connection runs in WAL mode with `synchronous=FULL`; it is shared by
threads (`check_same_thread=False`) and every use is guarded by the gallery's lock. An existing database is
checked before use (SQLite header, `PRAGMA quick_check`); the schema is written only when creating one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from verify.errors import GalleryError

FORMAT_VERSION = 1
BUSY_TIMEOUT_S = 60.0
_HEADER = b"SQLite format 3\x00"
_RECREATE = "delete the gallery folder's files to start a new, empty gallery"


def _repair(path: Path) -> str:
    """What to do about a damaged database, most careful first."""
    return (
        f"restore it from a backup, copy what can still be read into a new one with `verify gallery recover "
        f"--gallery {path.parent}`, or {_RECREATE}"
    )


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    threshold REAL
);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    image_sha256 TEXT,
    thumbnail BLOB,
    image BLOB,
    image_path TEXT,
    embedding BLOB NOT NULL,
    enrolled_at TEXT NOT NULL,
    source TEXT
);
CREATE INDEX IF NOT EXISTS samples_identity ON samples(identity_id);
CREATE INDEX IF NOT EXISTS samples_sha ON samples(image_sha256);
"""


def now() -> str:
    """Current UTC time, ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_header(path: Path) -> None:
    """Refuse a file that is not an SQLite database: empty (0 bytes), truncated below its header, or another
    kind of file. Raises GalleryError."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise GalleryError(f"{path}: cannot be read ({exc.strerror})") from None
    if not head:
        raise GalleryError(f"{path}: empty file (0 bytes), not a gallery; {_RECREATE}")
    if len(head) < 100 or not head.startswith(_HEADER):
        raise GalleryError(
            f"{path}: not an SQLite gallery database (damaged header or another file); restore it from a backup,"
            f" or {_RECREATE}"
        )


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """Open the database in autocommit mode; transactions are explicit `BEGIN IMMEDIATE`.

    With `create`, a missing database is made and the schema written. Without, the file must exist and pass
    `check_header` and `PRAGMA quick_check`. Raises GalleryError (never a raw sqlite3 error) otherwise.
    """
    if not create:
        if not path.is_file():
            raise GalleryError(f"{path}: no such gallery database")
        check_header(path)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        if not create:
            quick_check(conn, path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        if create:
            conn.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise GalleryError(
                f"{path}: database is locked by another process (waited {BUSY_TIMEOUT_S:.0f} s)"
            ) from None
        raise GalleryError(f"{path}: damaged gallery database ({exc}); {_repair(path)}") from None
    except GalleryError:
        conn.close()
        raise
    return conn


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database failing `PRAGMA quick_check` (damaged pages): nothing is read from or written into it."""
    problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)").fetchall()]
    if problems != ["ok"]:
        raise GalleryError(
            f"{path}: damaged gallery database (integrity check: {' '.join(problems[0].split())}); {_repair(path)}"
        )


def get_meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def set_meta(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
    conn.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(k, str(v)) for k, v in values.items()],
    )


def generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    return int(row[0]) if row else 0


def identity_id(conn: sqlite3.Connection, name: str, *, create: bool = False) -> int | None:
    """Row id of an identity; with `create`, insert it when missing."""
    row = conn.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
    if row:
        return int(row[0])
    if not create:
        return None
    cur = conn.execute("INSERT INTO identities(name, created) VALUES (?, ?)", (name, now()))
    return int(cur.lastrowid or 0)


def insert_sample(conn: sqlite3.Connection, ident: int, embedding: np.ndarray, fields: dict[str, Any]) -> int:
    """Insert one sample; `fields` may hold image_sha256, thumbnail, image, image_path, source."""
    cur = conn.execute(
        "INSERT INTO samples(identity_id, image_sha256, thumbnail, image, image_path, embedding, enrolled_at,"
        " source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ident,
            fields.get("image_sha256"),
            fields.get("thumbnail"),
            fields.get("image"),
            fields.get("image_path"),
            np.ascontiguousarray(embedding, dtype=np.float32).tobytes(),
            now(),
            fields.get("source"),
        ),
    )
    return int(cur.lastrowid or 0)


def _stack(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), np.float32)
    if any(b is None or len(b) != 4 * dim for b in blobs):
        raise GalleryError(
            f"a stored embedding is not {dim} float32 values: the gallery database is damaged; restore it from a backup"
        )
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim).copy()


def all_embeddings(conn: sqlite3.Connection, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """All samples ordered by id. Returns (ids int64 [N], embeddings float32 [N, D])."""
    rows = conn.execute("SELECT id, embedding FROM samples ORDER BY id").fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    return ids, _stack([r[1] for r in rows], dim)


def sample_ids(conn: sqlite3.Connection) -> np.ndarray:
    """All sample ids, sorted int64 [N]."""
    return np.array([r[0] for r in conn.execute("SELECT id FROM samples ORDER BY id")], dtype=np.int64)


def identity_embeddings(
    conn: sqlite3.Connection, names: Iterable[str], dim: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Embeddings of the named identities. Returns name -> (ids [n], embeddings [n, D])."""
    names = list(names)
    if not names:
        return {}
    marks = ",".join("?" * len(names))
    rows = conn.execute(
        "SELECT i.name, s.id, s.embedding FROM samples s JOIN identities i ON s.identity_id = i.id"
        f" WHERE i.name IN ({marks}) ORDER BY s.id",
        names,
    ).fetchall()
    grouped: dict[str, tuple[list[int], list[bytes]]] = {}
    for name, sid, blob in rows:
        grouped.setdefault(name, ([], []))[0].append(sid)
        grouped[name][1].append(blob)
    return {n: (np.array(i, dtype=np.int64), _stack(b, dim)) for n, (i, b) in grouped.items()}


def names_of(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, str]:
    """Identity name of each sample id."""
    ids = [int(i) for i in ids]
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = conn.execute(
        f"SELECT s.id, i.name FROM samples s JOIN identities i ON s.identity_id = i.id WHERE s.id IN ({marks})",
        ids,
    ).fetchall()
    return {int(sid): name for sid, name in rows}


def thresholds(conn: sqlite3.Connection, names: Iterable[str]) -> dict[str, float]:
    """Per-identity thresholds that are set, for the given names."""
    names = list(names)
    if not names:
        return {}
    marks = ",".join("?" * len(names))
    rows = conn.execute(
        f"SELECT name, threshold FROM identities WHERE threshold IS NOT NULL AND name IN ({marks})", names
    ).fetchall()
    return {name: float(t) for name, t in rows}


def samples_with_hash(conn: sqlite3.Connection, hashes: Iterable[str | None]) -> dict[str, tuple[int, str]]:
    """Already-enrolled image hashes. Returns sha256 -> (sample id, identity name)."""
    hashes = sorted({h for h in hashes if h})
    if not hashes:
        return {}
    marks = ",".join("?" * len(hashes))
    rows = conn.execute(
        "SELECT s.image_sha256, s.id, i.name FROM samples s JOIN identities i ON s.identity_id = i.id"
        f" WHERE s.image_sha256 IN ({marks})",
        hashes,
    ).fetchall()
    return {h: (int(sid), name) for h, sid, name in rows}
