"""The "resize" preprocessor: the whole image resized to the card's input size, grey or RGB."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from verify.errors import ConfigError, InvalidImageError
from verify.preprocess.crop import Crop


def resize_image(image: np.ndarray, height: int, width: int, channels: int = 3) -> np.ndarray:
    """uint8 [H, W] or [H, W, 3|4] RGB(A) -> uint8 [height, width] (channels 1) or [height, width, 3]."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise InvalidImageError(f"expected a uint8 [H, W] or [H, W, 3] image, got {arr.dtype} {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2RGB)
    if channels == 1 and arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    elif channels == 3 and arr.ndim == 2:
        arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    h, w = arr.shape[:2]
    shrink = height < h and width < w
    out = cv2.resize(arr, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.ascontiguousarray(out)


class ResizePreprocessor:
    """``pre(image) -> Crop``: plain resize to card["input"] height x width, grey when channels == 1.

    Crop.info holds the original ``size`` as (height, width).
    """

    def __init__(self, card: dict[str, Any]) -> None:
        try:
            spec = card["input"]
            self.height, self.width = int(spec["height"]), int(spec["width"])
            self.channels = int(spec.get("channels", 3))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"model card 'input' needs integer height and width: {exc}") from exc
        if self.channels not in (1, 3) or self.height < 1 or self.width < 1:
            raise ConfigError(f"model card 'input' has channels {self.channels}, size {self.height}x{self.width}")

    def __call__(self, image: np.ndarray) -> Crop:
        out = resize_image(image, self.height, self.width, self.channels)
        return Crop(out, {"size": tuple(int(s) for s in np.shape(image)[:2])})
