"""The two modalities, and deciding 'face' or 'signature' for an input when the user did not say."""

from __future__ import annotations

from typing import Any, Literal

from verify.errors import VerifyError
from verify.io import load_image

Modality = Literal["face", "signature"]
MODALITIES: tuple[Modality, ...] = ("face", "signature")
# What `--modality` and the app accept; `verify.models.defaults.resolve_modality` says what "auto" means.
MODALITY_CHOICES: tuple[str, ...] = ("auto", *MODALITIES)


def guess_modality(source: Any) -> Modality:
    """'face' when a face detector finds a face in the image, else 'signature'."""
    from verify.preprocess.face_detect import detect_faces

    try:
        image = load_image(source, mode="rgb")
    except VerifyError:
        return "signature"
    return "face" if detect_faces(image) else "signature"
