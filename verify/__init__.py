"""siamese-verify: do these two inputs belong to the same person? Faces and handwritten signatures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from verify.models.base import Embedder


def load_model(path: Any) -> Embedder:
    """Load a model directory (model.json card + weights) as an `Embedder`; no other argument is needed."""
    from verify.models.loading import load_model as _load

    return _load(path)


__all__ = ["__version__", "load_model"]
