"""The unit every dataset loader returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})


@dataclass(frozen=True)
class Sample:
    """One image of one identity.

    Attributes:
        path: the image file.
        identity: the person (face) or writer (signature) it belongs to.
        kind: "genuine" for the identity's own samples, "skilled" for skilled forgeries of it.
    """

    path: Path
    identity: str
    kind: str = "genuine"


def is_image_file(path: Path) -> bool:
    """True for a visible regular file with an image extension."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()
