"""The web app's logic in plain Python over `verify/`: one method per tab, returning plain data (no Gradio).

`VerifyService` loads each model once per process (lazily, under a lock) and shares it between requests and
services; each modality has its own gallery under `gallery_root/<modality>` (a gallery is tied to one model's
fingerprint). Pipeline calls and gallery writes of one model are serialised by that model's lock (the embedding
cache of a `Verifier` is not thread-safe, and two cores gain nothing from running one model twice at once).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from app.batch_job import BatchJobs
from app.gallery_tab import GalleryTabMixin
from app.resources import (
    MAX_IMAGE_BYTES,
    MODALITIES,
    NO_FACE_MODEL,
    NO_SIGNATURE_MODEL,
    display_crop,
    model_path,
    reliability,
    shared_verifier,
)
from app.wording import name_inputs, reembed_refusal
from verify.decision import GateMode
from verify.errors import (
    ConfigError,
    ImageTooLargeError,
    InvalidImageError,
    ModelError,
    ModelMismatchError,
    VerifyError,
)
from verify.verifier import Verifier

log = logging.getLogger(__name__)


def _gate_mode(compare_anyway: bool) -> GateMode:
    """The tabs' "compare anyway" box as a gate mode: answer what the gate refuses, flagged, or reject it."""
    return "flag" if compare_anyway else "reject"


class VerifyService(GalleryTabMixin):
    """Everything the UI tabs do, over the library.

    Args:
        gallery_root: folder holding one gallery per modality (`face/`, `signature/`).
        face_model: face model directory; default: the bundled one.
        signature_model: signature model directory; default: the bundled one (may be missing).
        admin_root: server folder that batch jobs may read images from (None: uploads only).
        work_dir: where batch jobs write; default: a new temporary folder.
        max_image_bytes: upload limit per image.
        reembed_on_mismatch: when a sub-gallery was embedded by another model, re-embed it from its stored
            images with the model in use (the demo gallery after a model update) instead of refusing it; gated as
            `verify gallery reembed` (`verify.enroll.reembed_gallery`): refused images fail it, changing nothing.
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

    def verifier(self, modality: str, gate_mode: GateMode = "reject") -> Verifier:
        """The shared `Verifier` of `modality` (with `gate_mode`), loaded on first use."""
        if modality not in MODALITIES:
            raise ConfigError(f"modality must be face, signature or auto, not {modality!r}")
        path = self._paths[modality]
        if path is None:
            raise ModelError(self._missing[modality])
        return shared_verifier(path, gate_mode)[0]

    def gallery(self, modality: str) -> Any:
        """The open `FaissGallery` of `modality` (created empty on first use)."""
        from verify.enroll import reembed_gallery
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
                    try:
                        with self.lock(modality):  # the verifier's cache is not thread-safe
                            n = reembed_gallery(verifier, gallery)
                    except VerifyError as exc:
                        gallery.close()
                        raise reembed_refusal(modality, exc) from exc
                    except BaseException:
                        gallery.close()
                        raise
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
    def verify(
        self, image_a: Any, image_b: Any, modality: str = "auto", compare_anyway: bool = False
    ) -> dict[str, Any]:
        """1:1: are these two images the same person? Decision fields + display crops [A, B]. With
        `compare_anyway`, an image the OOD gate refuses is compared and flagged (gate mode "flag")."""
        a, label_a = self.image(image_a, "image A")
        b, label_b = self.image(image_b, "image B")
        modality = self.resolve_modality(modality, a)
        verifier = self.verifier(modality, _gate_mode(compare_anyway))
        with self.lock(modality):
            decision = verifier.match(a, b, names=[label_a, label_b])
        out = decision.to_dict()
        out["modality"] = modality
        out["crops"] = [display_crop(c, modality) for c in decision.crops]
        out["reliability"] = self.reliability(modality) if modality == "signature" else None
        return out

    def enroll(
        self,
        name: str,
        images: list[Any],
        modality: str = "face",
        labels: list[str] | None = None,
        enroll_anyway: bool = False,
    ) -> dict[str, Any]:
        """Enroll images under `name`; per-sample outcomes (why refused) and the identity's samples after. With
        `enroll_anyway`, an image the OOD gate refuses is enrolled and flagged in the report (gate mode "flag"):
        a signer whose hand the gate takes for print can then be identified."""
        from verify.enroll import enroll_images

        name = (name or "").strip()
        if not name:
            raise ConfigError("type the person's name before enrolling")
        checked = [self.image(src, f"image {i + 1}") for i, src in enumerate(images or []) if src is not None]
        if not checked:
            raise InvalidImageError("no images given: upload one or more images of the person")
        modality = self.resolve_modality(modality, checked[0][0])
        verifier, gallery = self.verifier(modality, _gate_mode(enroll_anyway)), self.gallery(modality)
        with self.lock(modality):
            report = enroll_images(
                verifier, gallery, name, [s for s, _ in checked], labels=labels or [lab for _, lab in checked]
            )
        out = report.to_dict()
        out["modality"] = modality
        sent = [o.source for o in report.outcomes if o.status != "refused"]  # what the gallery was given, in order
        out["warnings"] = [name_inputs(w, sent) for w in report.warnings] + self._also_matches(
            modality, name, [o for o in report.outcomes if o.sample_id is not None]
        )
        out["identity_samples"] = self.samples(modality, name) if report.enrolled or self._known(modality, name) else []
        return out

    def identify(self, image: Any, modality: str = "auto", k: int = 5, compare_anyway: bool = False) -> dict[str, Any]:
        """1:N open set: the best identity above the threshold, else 'unknown'; top-k with thumbnails. With
        `compare_anyway`, an image the OOD gate refuses is searched for and flagged (gate mode "flag")."""
        src, label = self.image(image, "image")
        modality = self.resolve_modality(modality, src)
        verifier, gallery = self.verifier(modality, _gate_mode(compare_anyway)), self.gallery(modality)
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

    def batch(
        self,
        pairs_csv: Any,
        images_zip: Any = None,
        images_folder: str | None = None,
        modality: str = "auto",
        progress: bool = False,
        compare_anyway: bool = False,
    ) -> dict[str, Any]:
        """Score a pairs (or claims) CSV against a zip of images or an allowed server folder; with
        `compare_anyway`, rows whose images the OOD gate refuses are scored and flagged (gate mode "flag").

        Returns:
            summary (dict), rows (pandas DataFrame), csv (Path), report (Path or None), report_text (str).
        """
        out = self.jobs.run(self, pairs_csv, images_zip, images_folder, modality, progress, _gate_mode(compare_anyway))
        out["reliability"] = self.reliability(out["summary"]["modality"])
        return out

    def close(self) -> None:
        """Close the galleries and remove the work folder it made (the service is unusable afterwards)."""
        with self._load_lock:
            for gallery in self._galleries.values():
                gallery.close()
            self._galleries.clear()
        if self._own_work_dir:
            shutil.rmtree(self.jobs.work_dir, ignore_errors=True)


__all__ = ["MODALITIES", "NO_SIGNATURE_MODEL", "VerifyError", "VerifyService"]
