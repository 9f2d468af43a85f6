"""Maintenance of `FaissGallery`: index rebuild, re-embedding from stored images, per-identity thresholds."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from verify.errors import GalleryError, InvalidImageError, UnknownIdentityError, VerifyError
from verify.gallery import index as ix
from verify.gallery import store
from verify.gallery.samples import as_matrix, decode_image

_REEMBED_BATCH = 64


class GalleryMaintenanceMixin:
    """Maintenance methods of `FaissGallery`."""

    directory: Path
    dim: int
    fingerprint: str
    index_type: str
    _conn: sqlite3.Connection

    if TYPE_CHECKING:  # provided by FaissGallery

        def _locked(self) -> AbstractContextManager[None]: ...

        def _sync(self) -> None: ...

        def _rebuild_locked(self) -> None: ...

        def _write(self, change: Callable[[], tuple[Any, Any]], *, rebuild: bool = False) -> None: ...

    def rebuild_index(self, index_type: str | None = None) -> None:
        """Rebuild (and retrain) the index from the embeddings in SQLite, optionally with a new index type."""
        if index_type is None:
            with self._locked():
                self._sync()
                self._rebuild_locked()
            return
        ix.validate_index_type(index_type, self.dim)

        def change() -> tuple[Any, Any]:
            store.set_meta(self._conn, {"index_type": index_type})
            self.index_type = index_type
            return None, None

        self._write(change, rebuild=True)

    def set_threshold(self, name: str, threshold: float | None) -> None:
        """Set (or clear with None) the similarity threshold used by `identify` for identity `name`."""
        with self._locked():
            if store.identity_id(self._conn, name) is None:
                raise UnknownIdentityError(f"{name!r} is not enrolled in {self.directory}")
            value = None if threshold is None else float(threshold)
            self._conn.execute("UPDATE identities SET threshold = ? WHERE name = ?", (value, name))

    def _stored_images(self) -> Iterator[tuple[list[int], list[np.ndarray]]]:
        """Batches of (sample ids, decoded RGB images) of every sample, in id order."""
        rows = self._conn.execute("SELECT id, image, image_path FROM samples ORDER BY id").fetchall()
        missing = [r[0] for r in rows if r[1] is None and (r[2] is None or not Path(r[2]).is_file())]
        if missing:
            shown = ", ".join(map(str, missing[:10]))
            raise GalleryError(
                f"{self.directory}: {len(missing)} samples have no stored image (ids {shown}...); they cannot be"
                " re-embedded: remove and re-enroll them, or enroll with images kept"
            )
        for start in range(0, len(rows), _REEMBED_BATCH):
            batch = rows[start : start + _REEMBED_BATCH]
            images = []
            for sid, blob, path in batch:
                try:
                    data = bytes(blob) if blob is not None else Path(path).read_bytes()
                except OSError as exc:
                    raise InvalidImageError(f"sample {sid}: stored image {path} cannot be read: {exc}") from exc
                images.append(decode_image(data, f"sample {sid}"))
            yield [r[0] for r in batch], images

    def _embed_or_find_refused(
        self, embed_fn: Callable[[list[np.ndarray]], np.ndarray], ids: list[int], images: list[np.ndarray]
    ) -> tuple[np.ndarray | None, list[tuple[int, VerifyError]]]:
        """`embed_fn(images)`; when it refuses the batch, each image alone: (None, the refused samples)."""
        try:
            return np.asarray(embed_fn(images), dtype=np.float32), []
        except VerifyError as batch_error:
            refused = []
            for sid, image in zip(ids, images, strict=True):
                try:
                    embed_fn([image])
                except VerifyError as exc:
                    refused.append((sid, exc))
            if not refused:
                raise batch_error
            return None, refused

    def _refusal(self, refused: list[tuple[int, VerifyError]], every: bool = False) -> VerifyError:
        """One error (the first refusal's type) naming every refused sample, its identity and how to remove it;
        when the new model refused `every` sample, the model is the likely mistake, not the samples."""
        names = store.names_of(self._conn, [sid for sid, _ in refused])
        listed = "; ".join(f"sample {sid} of {names.get(sid, '?')!r}: {exc}" for sid, exc in refused[:10])
        if len(refused) > 10:
            listed += f"; and {len(refused) - 10} more"
        ids = " ".join(str(sid) for sid, _ in refused)
        if every:
            return type(refused[0][1])(
                f"{listed}; nothing was re-embedded: the model refused every sample, so it does not fit this gallery "
                "(a face model for a signature gallery, or the other way round?); re-embed with a model of the "
                "gallery's kind"
            )
        return type(refused[0][1])(
            f"{listed}; nothing was re-embedded: remove {'it' if len(refused) == 1 else 'them'} with `verify gallery"
            f" remove --sample ID` (ID: {ids}) and run reembed again"
        )

    def reembed(self, embed_fn: Callable[[list[np.ndarray]], np.ndarray], fingerprint: str) -> int:
        """Re-embed every sample from its stored image with another model, then rebuild the index.

        Args:
            embed_fn: maps decoded uint8 RGB images ([H, W] or [H, W, 3]) to float embeddings [n, D'].
            fingerprint: fingerprint of the model behind `embed_fn`; becomes the gallery's.

        Returns:
            Number of samples re-embedded. Nothing changes if any sample has no image or embedding fails.

        Raises:
            VerifyError: stored images the new model refuses (the first one's typed error), naming every refused
                sample, its identity and the command that removes it; nothing was changed.
        """
        with self._locked():
            self._sync()
            ids: list[int] = []
            chunks: list[np.ndarray] = []
            refused: list[tuple[int, VerifyError]] = []
            seen = 0
            for batch_ids, images in self._stored_images():
                seen += len(batch_ids)
                out, batch_refused = self._embed_or_find_refused(embed_fn, batch_ids, images)
                refused += batch_refused
                if out is None or refused:
                    continue
                if out.ndim != 2 or len(out) != len(images):
                    raise GalleryError(f"embed_fn returned shape {out.shape} for {len(images)} images; want [n, D]")
                ids += batch_ids
                chunks.append(as_matrix(out, out.shape[1], "re-embedded vectors"))
            if refused:
                raise self._refusal(refused, every=len(refused) == seen > 1)
            new_dim = chunks[0].shape[1] if chunks else self.dim
            vectors = np.concatenate(chunks) if chunks else np.zeros((0, new_dim), np.float32)

            def change() -> tuple[Any, Any]:
                self._conn.executemany(
                    "UPDATE samples SET embedding = ? WHERE id = ?",
                    [(v.tobytes(), sid) for sid, v in zip(ids, vectors, strict=True)],
                )
                store.set_meta(self._conn, {"fingerprint": fingerprint, "dim": new_dim})
                self.dim, self.fingerprint = new_dim, fingerprint
                return None, None

            self._write(change, rebuild=True)
        return len(ids)
