"""Face quality: size, blur and pose measured on a detected, aligned face, with thresholds to refuse it.

Measures (all cheap, from what detection and alignment already computed):
- ``face_size``: the shorter side of the detector's box, in pixels of the original image;
- ``blur``: variance of the Laplacian of the grayscale chip (low = blurred), rescaled to a 150 px chip so that
  one threshold serves every chip size;
- ``roll_deg``: angle of the line through the two eye centres (0 = level);
- ``yaw_ratio``: horizontal offset of the nose base from the eye midpoint, along the eye line, divided by the
  distance between the eyes (0 = frontal; about 0.5 is a half-profile).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from verify.errors import ConfigError, QualityError
from verify.preprocess.face_detect import FaceBox

_BLUR_REFERENCE_SIZE = 150


@dataclass(frozen=True)
class FaceQualityConfig:
    """Thresholds below (or above) which a face is refused at enrollment."""

    min_face_size: int = 60  # px, shorter box side in the original image; dlib's HOG finds ~40 px faces
    min_blur: float = 40.0  # variance of the Laplacian on a 150 px chip; sharp portraits score in the hundreds
    max_roll_deg: float = 30.0  # degrees of head tilt (eye line vs horizontal) after which alignment degrades
    max_yaw_ratio: float = 0.35  # nose offset / eye distance; ~0.35 is a strongly turned head

    def __post_init__(self) -> None:
        for name in ("min_face_size", "min_blur", "max_roll_deg", "max_yaw_ratio"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or math.isnan(value):
                raise ConfigError(f"FaceQualityConfig.{name} must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class FaceQuality:
    """What `measure_quality` found; see the module docstring for each field."""

    face_size: float
    blur: float
    roll_deg: float
    yaw_ratio: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in asdict(self).items()}


def blur_score(chip: np.ndarray) -> float:
    """Variance of the Laplacian of a chip [S, S] or [S, S, 3], as if the chip were 150 px."""
    gray = chip if chip.ndim == 2 else cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    if gray.shape[0] != _BLUR_REFERENCE_SIZE:
        size = (_BLUR_REFERENCE_SIZE, _BLUR_REFERENCE_SIZE)
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def pose_from_landmarks(landmarks: np.ndarray) -> tuple[float, float]:
    """Roll (degrees) and yaw ratio from the 5 dlib landmarks [5, 2] (x, y)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    eye_a, eye_b = pts[0:2].mean(axis=0), pts[2:4].mean(axis=0)  # image-right eye, image-left eye
    line = eye_a - eye_b
    dist = float(np.hypot(*line))
    if dist < 1e-6:
        return 0.0, float("inf")
    roll = math.degrees(math.atan2(line[1], line[0]))
    offset = float(np.dot(pts[4] - (eye_a + eye_b) / 2.0, line / dist))
    return roll, offset / dist


def measure_quality(box: FaceBox, landmarks: np.ndarray, chip: np.ndarray) -> FaceQuality:
    """Size, blur and pose of one face, from its box, 5 landmarks [5, 2] and aligned chip [S, S, 3]."""
    roll, yaw = pose_from_landmarks(landmarks)
    return FaceQuality(float(min(box.width, box.height)), blur_score(chip), roll, yaw)


def check_quality(quality: FaceQuality | dict[str, float], config: FaceQualityConfig | None = None) -> list[str]:
    """Reasons to refuse this face (empty when it passes), each naming the value, the limit and the fix."""
    cfg = config or FaceQualityConfig()
    q = quality.to_dict() if isinstance(quality, FaceQuality) else quality
    reasons = []
    if q["face_size"] < cfg.min_face_size:
        reasons.append(
            f"face too small: {q['face_size']:.0f} px < {cfg.min_face_size} px; move closer or use a larger photo"
        )
    if q["blur"] < cfg.min_blur:
        reasons.append(f"face blurred: sharpness {q['blur']:.1f} < {cfg.min_blur}; hold still, focus, add light")
    if abs(q["roll_deg"]) > cfg.max_roll_deg:
        reasons.append(f"head tilted {q['roll_deg']:.0f} deg (limit {cfg.max_roll_deg}); hold the head level")
    if abs(q["yaw_ratio"]) > cfg.max_yaw_ratio:
        reasons.append(f"head turned (yaw ratio {q['yaw_ratio']:.2f} > {cfg.max_yaw_ratio}); face the camera")
    return reasons


def require_quality(quality: FaceQuality | dict[str, float], config: FaceQualityConfig | None = None) -> None:
    """Raise `QualityError` listing every reason when the face fails `check_quality` (for enrollment)."""
    reasons = check_quality(quality, config)
    if reasons:
        raise QualityError("; ".join(reasons))
