"""The `Crop` type: what every preprocessor returns and every embedder takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Crop:
    """A preprocessed input, ready for the network.

    Attributes:
        image: uint8 array, [H, W] for grayscale models or [H, W, 3] RGB, at the model's input size.
        info: what preprocessing found (e.g. ``faces_found``, ``box``, ``quality``), shown to users.
    """

    image: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
