"""The demo gallery `make run` starts with: two photos of Barack Obama and, when a signature model is installed,
a few synthetic signature writers.

Demo faces come from `assets/demo/faces/` (public-domain portraits, see PROVENANCE.md there); demo signatures
from `assets/demo/signatures/<writer>/*.png` (one folder per synthetic writer) when that folder exists. A
sub-gallery that already holds identities is left alone, so user changes survive a restart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from app.service import VerifyService
from verify.models.defaults import assets_dir

log = logging.getLogger(__name__)

DEMO_FACES = {"Barack Obama": ("obama.jpg", "obama2.jpg")}
SIGNATURE_WRITERS = 3  # writers enrolled from the demo signatures
SIGNATURE_SAMPLES = 3  # genuine samples enrolled per writer (the rest are left to try as probes)
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def default_gallery_root() -> Path:
    """`galleries/demo` under the repository (git-ignored)."""
    return Path(__file__).resolve().parents[1] / "galleries" / "demo"


def _empty(service: VerifyService, modality: str) -> bool:
    return not service.gallery(modality).identities()


def seed_faces(service: VerifyService, faces_dir: Path) -> dict[str, int]:
    """Enroll the demo faces when the face gallery is empty; returns samples enrolled per identity."""
    done: dict[str, int] = {}
    if not service.available("face") or not _empty(service, "face"):
        return done
    for name, files in DEMO_FACES.items():
        paths = [faces_dir / f for f in files if (faces_dir / f).is_file()]
        if paths:
            report = service.enroll(name, [str(p) for p in paths], "face", labels=[p.name for p in paths])
            done[name] = int(report["enrolled"])
    return done


def is_forgery(path: Path) -> bool:
    """Whether a demo signature file is a forgery (`forgery_*`, `forged_*`), never to be enrolled as a reference."""
    return path.stem.lower().startswith("forg")


def genuine_references(folder: Path, n: int = SIGNATURE_SAMPLES) -> list[Path]:
    """The first `n` genuine signatures of a demo writer's folder, in natural order (`genuine_2` before
    `genuine_10`); forgeries are left out, whatever their names sort as."""

    def natural(path: Path) -> tuple[str, int, str]:
        digits = "".join(c for c in path.stem if c.isdigit())
        return path.stem.rstrip("0123456789"), int(digits) if digits else 0, path.name

    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES]
    return sorted((p for p in files if not is_forgery(p)), key=natural)[:n]


def seed_signatures(service: VerifyService, signatures_dir: Path) -> dict[str, int]:
    """Enroll the first demo signature writers (genuine signatures only) when a signature model exists and its
    gallery is empty."""
    done: dict[str, int] = {}
    if not signatures_dir.is_dir() or not service.available("signature") or not _empty(service, "signature"):
        return done
    writers = sorted(p for p in signatures_dir.iterdir() if p.is_dir())[:SIGNATURE_WRITERS]
    for folder in writers:
        files = genuine_references(folder)
        if files:
            report = service.enroll(folder.name, [str(p) for p in files], "signature", labels=[p.name for p in files])
            done[folder.name] = int(report["enrolled"])
    return done


def seed_demo_gallery(service: VerifyService, demo_dir: Path | None = None) -> dict[str, Any]:
    """Fill empty demo sub-galleries from `demo_dir` (default `assets/demo`); returns what was enrolled."""
    demo_dir = Path(demo_dir) if demo_dir is not None else assets_dir() / "demo"
    out = {
        "face": seed_faces(service, demo_dir / "faces"),
        "signature": seed_signatures(service, demo_dir / "signatures"),
    }
    log.info("demo gallery: %s", out)
    return out
