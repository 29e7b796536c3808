"""Bring an image and its class mask to a common square size, the same way everywhere.

Preparation writes training data with these functions and inference (ONNX Runtime)
pre-processes uploads with them, so a model never sees a different geometry than it
was trained on. Images are resized with area/linear interpolation, masks with
nearest-neighbour only; pixels that do not come from the image are 255 in the mask.

Modes:
    stretch: resize to size x size, ignoring the aspect ratio.
    letterbox: fit the longer side, pad the rest (image 0, mask 255), centred.
    shorter-crop: fit the shorter side, then crop the centre square.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from cocoseg.pipeline.data.labels import IGNORE_INDEX

RESIZE_MODES = ("stretch", "letterbox", "shorter-crop")


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the resized image sits in the square: scale factors, offsets and its size.

    ``offset_x/offset_y`` are negative for a crop (the square starts inside the image)
    and positive for letterbox padding. ``undo_mask`` uses this to map a predicted mask
    back to the original image.
    """

    scale_x: float
    scale_y: float
    resized_width: int
    resized_height: int
    offset_x: int
    offset_y: int


def placement(width: int, height: int, size: int, mode: str) -> Placement:
    """Compute how an image of ``width`` x ``height`` maps into a ``size`` square."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    if width < 1 or height < 1 or size < 1:
        raise ValueError(f"image {width}x{height} and size {size} must be positive")
    if mode == "stretch":
        return Placement(size / width, size / height, size, size, 0, 0)
    scale = size / max(width, height) if mode == "letterbox" else size / min(width, height)
    resized_width = max(1, round(width * scale))
    resized_height = max(1, round(height * scale))
    return Placement(
        scale,
        scale,
        resized_width,
        resized_height,
        _centre_offset(resized_width, size),
        _centre_offset(resized_height, size),
    )


def _centre_offset(resized: int, size: int) -> int:
    """Offset that centres ``resized`` in ``size``: padding (>= 0) or a crop (< 0), rounded down in
    magnitude.
    """
    return (size - resized) // 2 if resized <= size else -((resized - size) // 2)


def _place(resized: np.ndarray, where: Placement, size: int, fill) -> np.ndarray:
    """Put ``resized`` into a size x size canvas at the placement's offset (pad or crop)."""
    canvas = np.full((size, size) + resized.shape[2:], fill, dtype=resized.dtype)
    source_x, source_y = max(0, -where.offset_x), max(0, -where.offset_y)
    target_x, target_y = max(0, where.offset_x), max(0, where.offset_y)
    width = min(size - target_x, resized.shape[1] - source_x)
    height = min(size - target_y, resized.shape[0] - source_y)
    canvas[target_y : target_y + height, target_x : target_x + width] = resized[
        source_y : source_y + height, source_x : source_x + width
    ]
    return canvas


def resize_image(image: np.ndarray, size: int, mode: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> (size, size, 3); area interpolation when shrinking."""
    height, width = image.shape[:2]
    where = placement(width, height, size, mode)
    shrinking = where.resized_width * where.resized_height < width * height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(image, (where.resized_width, where.resized_height), interpolation=interpolation)
    return _place(resized, where, size, 0)


def resize_mask(mask: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Class-index uint8 (H, W) -> (size, size), nearest-neighbour, padding = 255."""
    height, width = mask.shape[:2]
    where = placement(width, height, size, mode)
    resized = cv2.resize(mask, (where.resized_width, where.resized_height), interpolation=cv2.INTER_NEAREST)
    return _place(resized, where, size, IGNORE_INDEX)


def undo_mask(mask: np.ndarray, width: int, height: int, mode: str) -> np.ndarray:
    """A (size, size) predicted mask back to the original ``width`` x ``height``, nearest-neighbour.

    Pixels the square never covered (cropped away by ``shorter-crop``) become 255.
    """
    size = mask.shape[0]
    where = placement(width, height, size, mode)
    covered = np.full((where.resized_height, where.resized_width), IGNORE_INDEX, dtype=mask.dtype)
    source_x, source_y = max(0, where.offset_x), max(0, where.offset_y)
    target_x, target_y = max(0, -where.offset_x), max(0, -where.offset_y)
    span_x = min(where.resized_width - target_x, size - source_x)
    span_y = min(where.resized_height - target_y, size - source_y)
    covered[target_y : target_y + span_y, target_x : target_x + span_x] = mask[
        source_y : source_y + span_y, source_x : source_x + span_x
    ]
    return cv2.resize(covered, (width, height), interpolation=cv2.INTER_NEAREST)
