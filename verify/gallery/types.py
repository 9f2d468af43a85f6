"""Plain result records of the gallery: hits, identities, samples, enrollment and identification results."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hit:
    """One sample found by a search.

    Attributes:
        name: the identity the sample belongs to.
        sample_id: the sample's id (the FAISS id and the SQLite row id).
        score: cosine similarity with the query (larger = more alike).
    """

    name: str
    sample_id: int
    score: float


@dataclass(frozen=True)
class IdentityInfo:
    """An enrolled identity.

    Attributes:
        name: unique name.
        n_samples: number of enrolled samples.
        created: creation time, ISO 8601 UTC.
        threshold: per-identity similarity threshold, or None to use the global one.
    """

    name: str
    n_samples: int
    created: str
    threshold: float | None = None


@dataclass(frozen=True)
class SampleInfo:
    """One enrolled sample (its embedding stays in the gallery; ask `FaissGallery.embeddings` for it).

    Attributes:
        sample_id: the sample's id.
        name: the identity it belongs to.
        image_sha256: hex digest of the source image bytes, or None.
        enrolled_at: enrollment time, ISO 8601 UTC.
        source: free text (file name, camera, ...), or None.
        has_thumbnail: a PNG thumbnail is stored.
        has_image: the image (bytes or a path) is stored, so the sample can be re-embedded.
    """

    sample_id: int
    name: str
    image_sha256: str | None
    enrolled_at: str
    source: str | None
    has_thumbnail: bool
    has_image: bool


@dataclass
class EnrollResult:
    """What `FaissGallery.enroll` did.

    Attributes:
        sample_ids: ids of the samples added, in input order (skipped inputs have none).
        warnings: human-readable warnings (possible duplicates or mislabelled samples, skipped images).
        skipped: input positions that were not enrolled (image already enrolled).
    """

    sample_ids: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class IdentifyResult:
    """Open-set identification answer.

    Attributes:
        name: the best identity, or None for "unknown" (best score below its threshold, or empty gallery).
        score: the best identity's score (cosine similarity), or -inf for an empty gallery.
        candidates: up to k (name, score) pairs, best first, one score per identity.
    """

    name: str | None
    score: float
    candidates: list[tuple[str, float]]
