"""Gallery of enrolled identities: SQLite metadata and embeddings, a FAISS inner-product index on top.

Scores are cosine similarities of L2-normalised embeddings (larger = more alike).
"""

from __future__ import annotations

from verify.gallery.durable import CRASH_ENV
from verify.gallery.faiss_gallery import FaissGallery
from verify.gallery.types import EnrollResult, Hit, IdentifyResult, IdentityInfo, SampleInfo

__all__ = ["CRASH_ENV", "EnrollResult", "FaissGallery", "Hit", "IdentifyResult", "IdentityInfo", "SampleInfo"]
