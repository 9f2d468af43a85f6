"""`root/<identity>/<image>` folders: the plainest labelled layout (also what `verify enroll` takes)."""

from __future__ import annotations

import os
from pathlib import Path

from verify.data.sample import IMAGE_EXTENSIONS, Sample, is_image_file
from verify.errors import DatasetError


def load_identity_folders(root: str | os.PathLike[str], *, min_per_identity: int = 1) -> list[Sample]:
    """List the images of `root/<identity>/<image>`, sorted by identity then file name.

    Args:
        root: a folder with one sub-folder per identity; files directly in `root` and hidden entries are ignored.
        min_per_identity: identities with fewer images are left out (2 for pair-based training).

    Raises:
        DatasetError: `root` is not a folder, or no identity has enough images.
    """
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f"{base}: not a folder; expected <root>/<identity>/<image>")
    samples: list[Sample] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.iterdir() if is_image_file(p))
        if len(files) >= min_per_identity:
            samples.extend(Sample(path=f, identity=folder.name) for f in files)
    if not samples:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise DatasetError(
            f"{base}: no identity folder with at least {min_per_identity} image(s); "
            f"expected <root>/<identity>/<image> with extensions {exts}"
        )
    return samples
