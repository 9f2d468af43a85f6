"""siamese-verify: do these two inputs belong to the same person? Faces and handwritten signatures."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# OpenMP threads that spin while waiting starve everything else on a small, shared CPU: with torch at 2 threads,
# PASSIVE took batch-1 embedding from 5.5 to 137 images/s on a busy 2-core machine (bench/bench_embed.py).
# Set before torch loads its OpenMP runtime; a value the user exported wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

if TYPE_CHECKING:
    from verify.models.base import Embedder


def load_model(path: Any) -> Embedder:
    """Load a model directory (model.json card + weights) as an `Embedder`; no other argument is needed."""
    from verify.models.loading import load_model as _load

    return _load(path)


__all__ = ["__version__", "load_model"]
