"""The Gallery tab's part of `VerifyService`: identities and samples with thumbnails, removal, statistics; and
the gallery look-ups of the other tabs (references beside an identification, enrollment's "also matches")."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from app.resources import decode_png
from verify.errors import ConfigError, GalleryError

if TYPE_CHECKING:
    from verify.gallery import FaissGallery
    from verify.verifier import Verifier


class GalleryTabMixin:
    """Gallery methods of `VerifyService` (which provides the models, galleries and locks they use)."""

    if TYPE_CHECKING:  # provided by VerifyService

        def gallery(self, modality: str) -> FaissGallery: ...

        def lock(self, modality: str) -> threading.RLock: ...

        def resolve_modality(self, modality: str | None, image: Any = None) -> str: ...

        def model_info(self, modality: str) -> dict[str, Any]: ...

        def verifier(self, modality: str) -> Verifier: ...

    def gallery_list(self, modality: str = "face") -> list[dict[str, Any]]:
        """Identities with sample counts, creation time, own threshold and one thumbnail each."""
        modality = self.resolve_modality(modality)
        return [
            {
                "name": info.name,
                "samples": info.n_samples,
                "created": info.created,
                "threshold": info.threshold,
                "thumbnail": self._first_thumbnail(modality, info.name),
            }
            for info in self.gallery(modality).identities()
        ]

    def samples(self, modality: str, name: str) -> list[dict[str, Any]]:
        """The samples of one identity with their thumbnails (RGB arrays)."""
        gallery = self.gallery(self.resolve_modality(modality))
        return [
            {
                "sample_id": s.sample_id,
                "source": s.source or "",
                "enrolled_at": s.enrolled_at,
                "thumbnail": decode_png(gallery.thumbnail(s.sample_id)) if s.has_thumbnail else None,
            }
            for s in gallery.samples(name)
        ]

    def remove_identity(self, modality: str, name: str, confirm: str) -> dict[str, Any]:
        """Remove an identity and all its samples; `confirm` must repeat the name (a deliberate step)."""
        modality = self.resolve_modality(modality)
        name = (name or "").strip()
        if not name:
            raise ConfigError("choose the identity to remove")
        if (confirm or "").strip() != name:
            raise ConfigError(f"to remove {name!r}, type its name exactly in the box 'type its name here'")
        gallery = self.gallery(modality)
        with self.lock(modality):
            n = len(gallery.samples(name))
            gallery.remove_identity(name)
        return {"removed_identity": name, "removed_samples": n, "modality": modality}

    def remove_sample(self, modality: str, sample_id: int | str | None, confirm: bool) -> dict[str, Any]:
        """Remove one sample by id; `confirm` must be True."""
        modality = self.resolve_modality(modality)
        try:
            sid = int(str(sample_id).split()[0].lstrip("#"))
        except (ValueError, IndexError) as exc:
            raise ConfigError(f"choose a sample to remove (got {sample_id!r})") from exc
        if not confirm:
            raise ConfigError(f"tick 'yes, remove this sample' to remove sample #{sid}")
        gallery = self.gallery(modality)
        with self.lock(modality):
            gallery.remove_sample(sid)
        return {"removed_sample": sid, "modality": modality}

    def stats(self, modality: str = "face") -> dict[str, Any]:
        """Gallery statistics and the model in use."""
        modality = self.resolve_modality(modality)
        info = self.model_info(modality)
        if not info["installed"]:
            return {"model": info, "gallery": None}
        gallery = {k: v for k, v in self.gallery(modality).stats().items() if k not in ("directory", "path")}
        return {"model": info, "gallery": gallery}

    def _references(self, modality: str, name: str, embedding: np.ndarray) -> list[dict[str, Any]]:
        """Every enrolled sample of `name` with its similarity to `embedding` [D] and its thumbnail."""
        gallery = self.gallery(modality)
        try:
            samples, stored = gallery.samples(name), gallery.embeddings(name)
        except GalleryError:
            return []
        scores = stored @ np.asarray(embedding, dtype=np.float32).ravel()
        return [
            {
                "sample_id": s.sample_id,
                "score": float(score),
                "thumbnail": decode_png(gallery.thumbnail(s.sample_id)) if s.has_thumbnail else None,
            }
            for s, score in zip(samples, scores, strict=False)
        ]

    def _first_thumbnail(self, modality: str, name: str) -> np.ndarray | None:
        gallery = self.gallery(modality)
        try:
            samples = gallery.samples(name)
        except GalleryError:
            return None
        return next((decode_png(gallery.thumbnail(s.sample_id)) for s in samples if s.has_thumbnail), None)

    def _also_matches(self, modality: str, name: str, outcomes: list[Any]) -> list[str]:
        """A warning per new sample that matches another enrolled identity (one person under two names?)."""
        if not outcomes:
            return []
        gallery, threshold = self.gallery(modality), float(self.verifier(modality).threshold)
        ids = [s.sample_id for s in gallery.samples(name)]
        embeddings = gallery.embeddings(name)
        warnings = []
        for outcome in outcomes:
            if outcome.sample_id not in ids:
                continue
            hits = gallery.search(embeddings[ids.index(outcome.sample_id)], k=10)[0]
            other = next((h for h in hits if h.name != name), None)
            if other is not None and other.score >= threshold:
                warnings.append(
                    f"{outcome.source} also matches **{other.name}** (similarity {other.score:.3f}, a match from "
                    f"{threshold:.3f}): the same person under two names? If so, remove one of them (Gallery tab)."
                )
        return warnings

    def _known(self, modality: str, name: str) -> bool:
        return any(i.name == name for i in self.gallery(modality).identities())
