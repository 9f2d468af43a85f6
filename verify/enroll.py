"""Enrollment: images -> quality checks -> OOD gate -> embeddings -> gallery, with a reason for every refusal;
re-embedding a gallery's stored images with another model through the same gate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from verify.decision import RejectionKind
from verify.errors import QualityError, VerifyError
from verify.io import read_bytes
from verify.verifier import Verifier

if TYPE_CHECKING:
    from verify.gallery import FaissGallery

THUMBNAIL_SIDE = 96


@dataclass
class SampleOutcome:
    """What happened to one image given for enrollment."""

    source: str
    status: str  # "enrolled" | "refused" | "skipped"
    reason: str = ""
    sample_id: int | None = None
    quality: dict[str, float] = field(default_factory=dict)
    refused_by: RejectionKind | None = None  # a refusal by the pipeline (not quality, not a bad file): which part
    flagged: bool = False  # enrolled although the gate refused it (gate mode "flag"); `reason` says why


@dataclass
class EnrollReport:
    name: str
    outcomes: list[SampleOutcome]
    warnings: list[str]

    @property
    def enrolled(self) -> int:
        return sum(o.status == "enrolled" for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "enrolled": self.enrolled,
            "warnings": self.warnings,
            "samples": [o.__dict__ for o in self.outcomes],
        }


def thumbnail_png(crop: np.ndarray, modality: str, side: int = THUMBNAIL_SIDE) -> bytes:
    """A small PNG of the compared crop (signatures shown as dark ink on white)."""
    img = np.asarray(crop)
    if modality == "signature":
        img = 255 - img
    scale = side / max(img.shape[:2])
    img = cv2.resize(img, (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale))))
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img)
    return buf.tobytes() if ok else b""


def _check_quality(info: dict[str, Any]) -> None:
    """Refuse a sample whose preprocessing reported quality issues (thresholds come from the model card)."""
    issues = info.get("quality_issues") or []
    if issues:
        raise QualityError("; ".join(str(i) for i in issues))


def enroll_images(
    verifier: Verifier,
    gallery: Any,
    name: str,
    sources: Sequence[Any],
    labels: Sequence[str] | None = None,
    keep_images: bool = True,
    check_quality: bool = True,
) -> EnrollReport:
    """Enroll every acceptable image of `sources` under `name`; refused ones are reported, not raised.

    Args:
        verifier: the model pipeline (quality, OOD gate, embedding).
        gallery: an open `FaissGallery` made by the same model.
        name: the identity.
        sources: paths, bytes or arrays.
        labels: a display name per source (file names); default: the path or "image N".
        keep_images: store the original bytes so the gallery can be re-embedded by a new model.
        check_quality: refuse faces that are too small, blurred or turned away.
    """
    name = name.strip()
    if not name:
        raise VerifyError("an identity name is required")
    labels = (
        list(labels)
        if labels is not None
        else [
            str(s) if isinstance(s, str) or hasattr(s, "__fspath__") else f"image {i + 1}"
            for i, s in enumerate(sources)
        ]
    )
    outcomes: list[SampleOutcome] = []
    accepted: list[tuple[SampleOutcome, Any, bytes | None]] = []
    for src, label in zip(sources, labels, strict=True):
        try:
            probe = verifier.probe(src, name=label)
            if probe.rejection is not None:
                outcomes.append(
                    SampleOutcome(label, "refused", str(probe.rejection.error(label)), refused_by=probe.rejection.kind)
                )
                continue
            if check_quality:
                _check_quality(probe.info)
        except VerifyError as exc:
            outcomes.append(SampleOutcome(label, "refused", str(exc)))
            continue
        outcome = SampleOutcome(label, "enrolled", quality=dict(probe.info.get("quality") or {}))
        if probe.flagged:  # gate mode "flag": enrolled, and the user told why it is worth a look
            outcome.reason, outcome.flagged = f"flagged: {probe.flagged}", True
        outcomes.append(outcome)
        keep = keep_images and (isinstance(src, (str, bytes)) or hasattr(src, "__fspath__"))
        accepted.append((outcome, probe, read_bytes(src) if keep else None))
    warnings: list[str] = []
    if accepted:
        result = gallery.enroll(
            name,
            np.stack([p.embedding for _, p, _ in accepted]),
            image_hashes=[p.sha256 for _, p, _ in accepted],
            thumbnails=[thumbnail_png(p.crop, verifier.model.modality) for _, p, _ in accepted],
            images=[raw for _, _, raw in accepted] if keep_images else None,
            sources=[o.source for o, _, _ in accepted],
        )
        warnings = list(result.warnings)
        skipped = set(result.skipped)
        ids = iter(result.sample_ids)
        for pos, (outcome, _, _) in enumerate(accepted):
            if pos in skipped:
                outcome.status, outcome.reason = "skipped", "already enrolled (same image)"
            else:
                outcome.sample_id = next(ids)
    return EnrollReport(name, outcomes, warnings)


def reembed_gallery(verifier: Verifier, gallery: FaissGallery) -> int:
    """Re-embed every stored image of `gallery` with the verifier's model (after a model change), then re-index.

    Batched (`Verifier.probes`: concurrent preprocessing, one embedding pass per batch) and through the pipeline's
    gate, as enrollment (its quality checks are not repeated): an image it refuses (no face, blank page, out of
    distribution) is never embedded; the gallery then raises one typed error naming every refused sample and
    changes nothing. The CLI (`verify gallery reembed`) and the web app (a gallery of another model) both
    re-embed through here.

    Returns:
        The number of samples re-embedded; the gallery then carries the model's fingerprint.
    """

    def embed(images: list[np.ndarray]) -> np.ndarray:
        probes = verifier.probes(images, names=["stored image"] * len(images))
        refused = next((p.rejection for p in probes if p.rejection is not None), None)
        if refused is not None:
            raise refused.error("stored image")
        return np.stack([np.asarray(p.embedding) for p in probes])

    return int(gallery.reembed(embed, verifier.model.fingerprint))
