"""Face preprocessing: detect -> pick one face -> 5-point align -> quality, as one callable image -> Crop.

The parts live in `face_detect` (FaceBox, detect_faces), `face_align` (align_face, landmarks) and
`face_quality` (FaceQualityConfig, check_quality); they are re-exported here so callers import one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from verify.errors import ConfigError, NoFaceError
from verify.preprocess.crop import Crop
from verify.preprocess.face_align import (
    align_face,
    canonical_landmarks,
    detect_landmarks,
    map_points,
    similarity_to_chip,
)
from verify.preprocess.face_detect import DETECTORS, SELECTIONS, FaceBox, as_rgb, detect_faces, select_face
from verify.preprocess.face_quality import (
    FaceQuality,
    FaceQualityConfig,
    check_quality,
    measure_quality,
    require_quality,
)

NO_FACE_HINT = "use a photo with one frontal, well-lit face, at least ~80 px wide (move closer or use a larger photo)"


class FacePreprocessor:
    """A decoded image -> an aligned face `Crop`, configured by a model card.

    Reads ``card["input"]`` (height == width: the chip size; channels 3, or 1 for a grayscale chip) and
    ``card["preprocessing"]``: detector ("hog"|"haar"), padding (0.25), upsample (1), upsample_fallback (none:
    when set, a search at `upsample` that finds no face is repeated at this larger upsample, so a fast coarse
    search serves most photos and small faces are still found), select ("largest"|"central"), max_side (800:
    detection working size), and an optional "quality" dict of
    `FaceQualityConfig` fields. Quality problems are reported in ``Crop.info`` (``quality_issues``), not
    raised: enrollment code calls `require_quality(crop.info["quality"])`.
    """

    def __init__(self, card: Mapping[str, Any]) -> None:
        inp = card.get("input") or {}
        pre = card.get("preprocessing") or {}
        self.size = int(inp.get("height", 150))
        if int(inp.get("width", self.size)) != self.size:
            raise ConfigError(f"face chips are square; card input is {inp.get('height')}x{inp.get('width')}")
        self.channels = int(inp.get("channels", 3))
        if self.channels not in (1, 3):
            raise ConfigError(f"face input channels must be 1 or 3, got {self.channels}")
        self.detector = str(pre.get("detector", "hog"))
        self.select = str(pre.get("select", "largest"))
        if self.detector not in DETECTORS or self.select not in SELECTIONS:
            raise ConfigError(f"face preprocessing: detector in {DETECTORS}, select in {SELECTIONS}; got {pre}")
        self.padding = float(pre.get("padding", 0.25))
        self.upsample = int(pre.get("upsample", 1))
        fallback = pre.get("upsample_fallback")
        self.upsample_fallback = None if fallback is None else int(fallback)
        if self.upsample_fallback is not None and self.upsample_fallback <= self.upsample:
            raise ConfigError(f"upsample_fallback must exceed upsample ({self.upsample}), got {fallback}")
        self.max_side = int(pre.get("max_side", 800))
        self.quality_config = FaceQualityConfig(**(pre.get("quality") or {}))

    def __call__(self, image: np.ndarray) -> Crop:
        """Args: image uint8 [H, W] or [H, W, 3] RGB. Returns a Crop with image [S, S, 3] (or [S, S]).

        Raises:
            NoFaceError: no face was found.
        """
        rgb = as_rgb(image)
        boxes = detect_faces(rgb, self.detector, self.upsample, self.max_side)
        if not boxes and self.upsample_fallback is not None:
            boxes = detect_faces(rgb, self.detector, self.upsample_fallback, self.max_side)
        if not boxes:
            raise NoFaceError(f"no face found in the {rgb.shape[1]}x{rgb.shape[0]} image; {NO_FACE_HINT}")
        box = select_face(boxes, rgb.shape, self.select)
        chip, landmarks = align_face(rgb, box, self.size, self.padding)
        quality = measure_quality(box, landmarks, chip)
        info: dict[str, Any] = {
            "faces_found": len(boxes),
            "box": box.to_dict(),
            "landmarks": np.round(landmarks, 1).tolist(),
            "quality": quality.to_dict(),
            "quality_issues": check_quality(quality, self.quality_config),
        }
        if len(boxes) > 1:
            which = "largest" if self.select == "largest" else "most central"
            info["note"] = f"{len(boxes)} faces found, used the {which}"
        if self.channels == 1:
            chip = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
        return Crop(image=chip, info=info)


__all__ = [
    "NO_FACE_HINT",
    "FaceBox",
    "FacePreprocessor",
    "FaceQuality",
    "FaceQualityConfig",
    "align_face",
    "as_rgb",
    "canonical_landmarks",
    "check_quality",
    "detect_faces",
    "detect_landmarks",
    "map_points",
    "measure_quality",
    "require_quality",
    "select_face",
    "similarity_to_chip",
]
