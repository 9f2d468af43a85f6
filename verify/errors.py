"""Typed errors of the library.

Every error names the bad value and, where there is one, the fix. The CLI turns a `VerifyError` into exit code 2
with one line on stderr, the web UI into a `gr.Error`, the batch job into a per-row `error` column.
"""

from __future__ import annotations


class VerifyError(Exception):
    """Base class of every error the library raises on user input or user files."""


class InvalidImageError(VerifyError):
    """An input that cannot be used as an image: unreadable, empty, not an image, too small, too large."""


class ImageTooLargeError(InvalidImageError):
    """An image over the pixel or byte limit (decompression-bomb guard)."""


class NoFaceError(VerifyError):
    """No face was found in an image given to a face model."""


class QualityError(VerifyError):
    """A sample refused at enrollment for low quality (too small, blurred, extreme pose)."""


class OutOfDistributionError(VerifyError):
    """An input rejected by the out-of-distribution gate (not a face / not a signature)."""


class DatasetError(VerifyError):
    """A dataset folder, pairs file or CSV that does not have the expected layout."""


class ConfigError(VerifyError):
    """An invalid configuration value."""


class ModelError(VerifyError):
    """A model file that cannot be loaded: missing, corrupt, or its card does not match its weights."""


class ModelMismatchError(ModelError):
    """Embeddings or a gallery made by a different model than the one in use."""


class WeightsUnavailableError(ModelError):
    """Pretrained weights could not be fetched or found."""


class GalleryError(VerifyError):
    """A gallery that cannot be opened or changed as asked (unknown identity, corrupt files, ...)."""


class UnknownIdentityError(GalleryError):
    """An identity name that is not enrolled in the gallery."""
