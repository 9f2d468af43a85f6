"""The web app's logic in plain Python over `verify/`: one method per tab, returning plain data (no Gradio).

`VerifyService` loads each model once per process (lazily, under a lock) and shares it between requests and
services; each modality has its own gallery under `gallery_root/<modality>` (a gallery is tied to one model's
fingerprint). Pipeline calls and gallery writes of one model are serialised by that model's lock (the embedding
cache of a `Verifier` is not thread-safe, and two cores gain nothing from running one model twice at once).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.batch_job import BatchJobs
from app.resources import (
    MAX_IMAGE_BYTES,
    MODALITIES,
    NO_FACE_MODEL,
    NO_SIGNATURE_MODEL,
    decode_png,
    display_crop,
    model_path,
    reliability,
    shared_verifier,
)
from verify.errors import (
    ConfigError,
    GalleryError,
    ImageTooLargeError,
    InvalidImageError,
    ModelError,
    ModelMismatchError,
    VerifyError,
)
from verify.verifier import Verifier

log = logging.getLogger(__name__)


class VerifyService:
    """Everything the UI tabs do, over the library.

    Args:
        gallery_root: folder holding one gallery per modality (`face/`, `signature/`).
        face_model: face model directory; default: the bundled one.
        signature_model: signature model directory; default: the bundled one (may be missing).
        admin_root: server folder that batch jobs may read images from (None: uploads only).
        work_dir: where batch jobs write; default: a new temporary folder.
        max_image_bytes: upload limit per image.
        reembed_on_mismatch: when a sub-gallery was embedded by another model, re-embed it from its stored
            images with the model in use (the demo gallery after a model update) instead of refusing it.
    """

    def __init__(
        self,
        gallery_root: str | Path,
        face_model: str | Path | None = None,
        signature_model: str | Path | None = None,
        *,
        admin_root: str | Path | None = None,
        work_dir: str | Path | None = None,
        max_image_bytes: int = MAX_IMAGE_BYTES,
        reembed_on_mismatch: bool = False,
    ) -> None:
        self.gallery_root = Path(gallery_root)
        self.max_image_bytes = max_image_bytes
        self.reembed_on_mismatch = reembed_on_mismatch
        self._paths: dict[str, Path | None] = {}
        self._missing: dict[str, str] = {}
        for modality, given in (("face", face_model), ("signature", signature_model)):
            self._paths[modality], self._missing[modality] = model_path(given, modality)
        self._load_lock = threading.Lock()
        self._galleries: dict[str, Any] = {}
        self._own_work_dir = work_dir is None
        work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="verify-app-"))
        self.jobs = BatchJobs(work, admin_root)

    # --- models and galleries -------------------------------------------------------------------------
    def available(self, modality: str) -> bool:
        """Whether a model is installed for `modality`."""
        return self._paths.get(modality) is not None

    def missing_reason(self, modality: str) -> str:
        """Why `modality` is unavailable ("" when it is available)."""
        return self._missing.get(modality, f"unknown modality {modality!r}")

    def verifier(self, modality: str) -> Verifier:
        """The shared `Verifier` of `modality`, loaded on first use."""
        if modality not in MODALITIES:
            raise ConfigError(f"modality must be face, signature or auto, not {modality!r}")
        path = self._paths[modality]
        if path is None:
            raise ModelError(self._missing[modality])
        return shared_verifier(path)[0]

    def gallery(self, modality: str) -> Any:
        """The open `FaissGallery` of `modality` (created empty on first use)."""
        from verify.gallery import FaissGallery

        verifier = self.verifier(modality)
        with self._load_lock:
            if modality not in self._galleries:
                model, folder = verifier.model, self.gallery_root / modality
                try:
                    gallery = FaissGallery.open_or_create(folder, dim=model.dim, fingerprint=model.fingerprint)
                except ModelMismatchError:
                    if not self.reembed_on_mismatch:
                        raise
                    gallery = FaissGallery.open(folder)
                    n = gallery.reembed(model.embed, model.fingerprint)
                    log.warning("%s: re-embedded %d samples with model %s", folder, n, model.fingerprint)
                self._galleries[modality] = gallery
            return self._galleries[modality]

    def lock(self, modality: str) -> threading.RLock:
        """The lock that serialises pipeline calls and gallery writes of `modality`."""
        path = self._paths.get(modality)
        if path is None:
            raise ModelError(self.missing_reason(modality))
        return shared_verifier(path)[1]

    def resolve_modality(self, modality: str | None, image: Any = None) -> str:
        """'face' / 'signature' as given; 'auto' as `verify.models.defaults.resolve_modality` says (else face)."""
        from verify.models.defaults import resolve_modality

        installed = [m for m in MODALITIES if self.available(m)]
        if (modality or "auto").lower() == "auto" and not installed:
            raise ModelError(NO_FACE_MODEL)
        return resolve_modality(modality, image=image, available=installed, default="face")

    def image(self, source: Any, what: str = "image") -> tuple[Any, str]:
        """Check one upload (present, not over the size limit); returns (source, label for messages)."""
        if source is None or (isinstance(source, str) and not source.strip()):
            raise InvalidImageError(f"{what}: no image given; upload one (or take a photo)")
        if isinstance(source, (str, Path)):
            path = Path(source)
            label = path.name
            if path.is_file() and path.stat().st_size > self.max_image_bytes:
                raise ImageTooLargeError(
                    f"{label}: {path.stat().st_size / 2**20:.1f} MB, over the upload limit of "
                    f"{self.max_image_bytes / 2**20:.0f} MB"
                )
            return str(path), label
        return source, what

    def check_upload(self, source: Any, what: str = "image") -> str:
        """Why an upload cannot be used ("" when it decodes): checked as soon as it arrives."""
        from verify.io import load_image

        if source is None or source == "":
            return ""
        try:
            src, label = self.image(source, what)
            load_image(src, name=label)
        except VerifyError as exc:
            return str(exc)
        return ""

    def model_info(self, modality: str) -> dict[str, Any]:
        """Name, fingerprint, threshold and its source, p(match) and OOD-gate availability of a model."""
        if not self.available(modality):
            return {"modality": modality, "installed": False, "message": self._missing[modality]}
        verifier = self.verifier(modality)
        card = verifier.model.card
        return {
            "modality": modality,
            "installed": True,
            "name": card.get("name", ""),
            "fingerprint": verifier.model.fingerprint,
            "dim": verifier.model.dim,
            "threshold": verifier.threshold,
            "threshold_source": verifier.threshold_source,
            "p_match": verifier.probability(float(verifier.threshold or 0.0)) is not None,
            "ood_gate": verifier.ood is not None,
            "reliability": self.reliability(modality),
        }

    def reliability(self, modality: str) -> dict[str, Any] | None:
        """The measured error rates of the model in use (signatures; None without a report)."""
        if not self.available(modality):
            return None
        verifier = self.verifier(modality)
        return reliability(self._paths[modality], verifier.model.card, verifier.threshold)

    # --- tabs ---------------------------------------------------------------------------------------------
    def verify(self, image_a: Any, image_b: Any, modality: str = "auto") -> dict[str, Any]:
        """1:1: are these two images the same person? Decision fields + display crops [A, B]."""
        a, label_a = self.image(image_a, "image A")
        b, label_b = self.image(image_b, "image B")
        modality = self.resolve_modality(modality, a)
        verifier = self.verifier(modality)
        with self.lock(modality):
            decision = verifier.match(a, b, names=[label_a, label_b])
        out = decision.to_dict()
        out["modality"] = modality
        out["crops"] = [display_crop(c, modality) for c in decision.crops]
        out["reliability"] = self.reliability(modality) if modality == "signature" else None
        return out

    def enroll(
        self, name: str, images: list[Any], modality: str = "face", labels: list[str] | None = None
    ) -> dict[str, Any]:
        """Enroll images under `name`; per-sample outcomes (why refused) and the identity's samples after."""
        from verify.enroll import enroll_images

        name = (name or "").strip()
        if not name:
            raise ConfigError("type the person's name before enrolling")
        checked = [self.image(src, f"image {i + 1}") for i, src in enumerate(images or []) if src is not None]
        if not checked:
            raise InvalidImageError("no images given: upload one or more images of the person")
        modality = self.resolve_modality(modality, checked[0][0])
        verifier, gallery = self.verifier(modality), self.gallery(modality)
        with self.lock(modality):
            report = enroll_images(
                verifier, gallery, name, [s for s, _ in checked], labels=labels or [lab for _, lab in checked]
            )
        out = report.to_dict()
        out["modality"] = modality
        sent = [o.source for o in report.outcomes if o.status != "refused"]  # what the gallery was given, in order
        out["warnings"] = [_name_inputs(w, sent) for w in report.warnings] + self._also_matches(
            modality, name, [o for o in report.outcomes if o.sample_id is not None]
        )
        out["identity_samples"] = self.samples(modality, name) if report.enrolled or self._known(modality, name) else []
        return out

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

    def identify(self, image: Any, modality: str = "auto", k: int = 5) -> dict[str, Any]:
        """1:N open set: the best identity above the threshold, else 'unknown'; top-k with thumbnails."""
        src, label = self.image(image, "image")
        modality = self.resolve_modality(modality, src)
        verifier, gallery = self.verifier(modality), self.gallery(modality)
        k = max(1, min(int(k), 50))
        with self.lock(modality):
            decision = verifier.identify(src, gallery, k=k, name=label)
        out = decision.to_dict()
        out["modality"] = modality
        out["crops"] = [display_crop(c, modality) for c in decision.crops]
        threshold = float(decision.threshold or 0.0)
        embedding = None if decision.decision == "rejected" else verifier.probe(src, name=label).embedding
        for cand in out["candidates"]:
            cand["above_threshold"] = cand["score"] >= threshold
            cand["thumbnail"] = self._first_thumbnail(modality, cand["identity"])
            cand["references"] = [] if embedding is None else self._references(modality, cand["identity"], embedding)
        out["reliability"] = self.reliability(modality) if modality == "signature" else None
        return out

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

    def batch(
        self,
        pairs_csv: Any,
        images_zip: Any = None,
        images_folder: str | None = None,
        modality: str = "auto",
        progress: bool = False,
    ) -> dict[str, Any]:
        """Score a pairs (or claims) CSV against a zip of images or an allowed server folder.

        Returns:
            summary (dict), rows (pandas DataFrame), csv (Path), report (Path or None), report_text (str).
        """
        out = self.jobs.run(self, pairs_csv, images_zip, images_folder, modality, progress)
        out["reliability"] = self.reliability(out["summary"]["modality"])
        return out

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

    def close(self) -> None:
        """Close the galleries and remove the work folder it made (the service is unusable afterwards)."""
        with self._load_lock:
            for gallery in self._galleries.values():
                gallery.close()
            self._galleries.clear()
        if self._own_work_dir:
            shutil.rmtree(self.jobs.work_dir, ignore_errors=True)


def _name_inputs(warning: str, sources: list[str]) -> str:
    """The gallery's warnings count inputs from 0 ("input 1: ...", "new sample 0 of ..."): name the files."""

    def name(m: re.Match[str]) -> str:
        i = int(m.group(2))
        return sources[i] if 0 <= i < len(sources) else f"image {i + 1}"

    warning = re.sub(
        r"image already enrolled as input (\d+) of this call",
        lambda m: f"the same image as {sources[int(m.group(1))] if int(m.group(1)) < len(sources) else 'another'}",
        warning,
    )
    return re.sub(r"\b(input|new sample) (\d+)(?: of '[^']*')?", name, warning)


__all__ = ["MODALITIES", "NO_SIGNATURE_MODEL", "VerifyError", "VerifyService"]
