"""Changes to `FaissGallery`: enroll (with duplicate checks) and removal of samples and identities."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from verify.errors import GalleryError, UnknownIdentityError
from verify.gallery import store
from verify.gallery.samples import as_matrix, check_name, sample_fields
from verify.gallery.types import EnrollResult

_DUPLICATE_K = 64  # nearest samples looked at when checking a new sample against other identities


class GalleryChangeMixin:
    """Enrollment and removal; each change is one durable transaction (`FaissGallery._write`)."""

    directory: Path
    dim: int
    _conn: sqlite3.Connection

    if TYPE_CHECKING:  # provided by FaissGallery and GalleryQueryMixin

        def _write(self, change: Callable[[], tuple[Any, Any]], *, rebuild: bool = False) -> None: ...

        def _search_raw(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def enroll(
        self,
        name: str,
        embeddings: np.ndarray,
        *,
        image_hashes: list[str | None] | None = None,
        thumbnails: list[Any] | None = None,
        images: list[Any] | None = None,
        sources: list[str | None] | None = None,
    ) -> EnrollResult:
        """Add samples of identity `name` (created if new).

        Args:
            name: identity name.
            embeddings: [D] or [N, D] float embeddings of the model with this gallery's fingerprint.
            image_hashes: per-sample sha256 hex of the source image (computed from `images` bytes/paths if None).
            thumbnails: per-sample PNG bytes or uint8 RGB arrays, shown by UIs.
            images: per-sample kept images for `reembed`: encoded bytes, uint8 arrays (stored as PNG) or paths.
            sources: per-sample free text (file name, ...).

        Returns:
            Sample ids and warnings. A sample whose image hash is already enrolled is skipped with a warning (when
            every sample is skipped, nothing changes: no identity is left without samples);
            a sample closer to another identity (max over its samples) than to `name`'s other samples is
            enrolled with a warning naming that identity and both scores.
        """
        name = check_name(name)
        x = as_matrix(embeddings, self.dim)
        fields = sample_fields(len(x), image_hashes, thumbnails, images, sources)
        result = EnrollResult()

        def change() -> tuple[Any, Any]:
            keep = self._drop_known_hashes(fields, result)
            if not keep:  # nothing new: no identity is created without samples
                return None, None
            result.warnings += self._duplicate_warnings(name, x[keep])
            ident = store.identity_id(self._conn, name, create=True)
            assert ident is not None
            result.sample_ids = [store.insert_sample(self._conn, ident, x[i], fields[i]) for i in keep]
            return (np.array(result.sample_ids, dtype=np.int64), x[keep]), None

        self._write(change)
        return result

    def _drop_known_hashes(self, fields: list[dict[str, Any]], result: EnrollResult) -> list[int]:
        known = store.samples_with_hash(self._conn, [f.get("image_sha256") for f in fields])
        keep: list[int] = []
        for i, f in enumerate(fields):
            sha = f.get("image_sha256")
            if sha and sha in known:
                sid, owner = known[sha]
                where = f"sample {sid} of {owner!r}" if sid >= 0 else f"input {owner} of this call"
                result.warnings.append(f"input {i}: image already enrolled as {where}; skipped")
                result.skipped.append(i)
            else:
                keep.append(i)
                if sha:
                    known[sha] = (-1, str(i))
        return keep

    def remove_sample(self, sample_id: int) -> None:
        """Remove one sample; an identity left with no samples is removed too."""

        def change() -> tuple[Any, Any]:
            row = self._conn.execute("SELECT identity_id FROM samples WHERE id = ?", (int(sample_id),)).fetchone()
            if row is None:
                raise GalleryError(f"no sample with id {sample_id} in {self.directory}")
            self._conn.execute("DELETE FROM samples WHERE id = ?", (int(sample_id),))
            self._conn.execute(
                "DELETE FROM identities WHERE id = ? AND NOT EXISTS (SELECT 1 FROM samples WHERE identity_id = ?)",
                (row[0], row[0]),
            )
            return None, np.array([sample_id], dtype=np.int64)

        self._write(change)

    def remove_identity(self, name: str) -> None:
        """Remove an identity and all its samples (UnknownIdentityError if not enrolled)."""

        def change() -> tuple[Any, Any]:
            ident = store.identity_id(self._conn, name)
            if ident is None:
                raise UnknownIdentityError(f"{name!r} is not enrolled in {self.directory}")
            ids = [r[0] for r in self._conn.execute("SELECT id FROM samples WHERE identity_id = ?", (ident,))]
            self._conn.execute("DELETE FROM samples WHERE identity_id = ?", (ident,))
            self._conn.execute("DELETE FROM identities WHERE id = ?", (ident,))
            return None, np.array(ids, dtype=np.int64)

        self._write(change)

    def _duplicate_warnings(self, name: str, new: np.ndarray) -> list[str]:
        """Warnings for new samples [n, D] of `name` closer to another identity than to `name`'s other samples."""
        if not len(new):
            return []
        own = store.identity_embeddings(self._conn, [name], self.dim).get(name)
        own_old = own[1] if own else np.zeros((0, self.dim), np.float32)
        scores, ids = self._search_raw(new, _DUPLICATE_K)
        names = store.names_of(self._conn, {int(i) for i in ids.ravel() if i >= 0})
        warnings = []
        for j, e in enumerate(new):
            others_own = np.concatenate([own_old, np.delete(new, j, axis=0)])
            pairs = zip(scores[j], ids[j], strict=True)
            other = next(((names[int(i)], float(s)) for s, i in pairs if names.get(int(i), name) != name), None)
            if not len(others_own) or other is None:
                continue
            own_score = float((others_own @ e).max())
            if other[1] > own_score:
                warnings.append(
                    f"new sample {j} of {name!r} is closer to {other[0]!r} ({other[1]:.3f}) than to {name!r}'s"
                    f" other samples ({own_score:.3f}): same person, or a mislabelled sample?"
                )
        return warnings
