"""COCO image + annotations -> one training example (encoded image, class-index PNG).

``build_example`` is the heavy part of preparation (decode, rasterise, resize,
encode) and runs in worker processes without TensorFlow; ``to_tf_example`` turns its
result into a ``tf.train.Example`` in the writing process. ``FEATURES`` is the one
description of the record layout that ``cocoseg.pipeline.training.input`` parses.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cocoseg.pipeline.data.geometry import resize_image, resize_mask
from cocoseg.pipeline.data.images import ImageError, read_rgb
from cocoseg.pipeline.data.labels import IGNORE_INDEX, LabelMap
from cocoseg.pipeline.data.masks import kept_area, semantic_mask
from cocoseg.pipeline.data.rendering import encode_jpeg, encode_png, mask_png

FEATURE_IMAGE = "image/encoded"
FEATURE_FORMAT = "image/format"
FEATURE_MASK = "mask/encoded"
FEATURE_ID = "image/id"
FEATURE_FILE_NAME = "image/file_name"
FEATURE_SOURCE_HEIGHT = "image/source_height"
FEATURE_SOURCE_WIDTH = "image/source_width"
FEATURE_CLASSES = "image/classes"


@dataclasses.dataclass(frozen=True)
class ExampleTask:
    """Everything a worker needs for one image (plain data: it is pickled)."""

    image: dict
    annotations: list
    path: Path
    label_map: LabelMap
    size: int
    resize: str
    encoding: str
    quality: int
    min_labelled_area: float


@dataclasses.dataclass(frozen=True)
class ExampleResult:
    """A built example, or the reason the image was skipped."""

    image_id: int
    file_name: str
    skipped: str = ""
    detail: str = ""
    image_bytes: bytes = b""
    mask_bytes: bytes = b""
    classes: tuple[int, ...] = ()
    pixel_counts: tuple[int, ...] = ()  # per mask value 0..255, only for written examples


def _encode_image(image: np.ndarray, encoding: str, quality: int) -> bytes:
    if encoding == "png":
        return encode_png(image, compression=3)
    # 4:4:4: chroma subsampling costs visible colour accuracy at 128-256 px
    return encode_jpeg(image, quality, full_chroma=True)


def encode_mask(mask: np.ndarray) -> bytes:
    """Lossless single-channel PNG of a class-index mask."""
    return mask_png(mask)


def build_example(task: ExampleTask) -> ExampleResult:
    """Decode, rasterise, resize and encode one image; never raises for bad images.

    Skip reasons: ``labelled-area`` (below the training filter), ``unreadable-image``
    (missing, corrupt, truncated), ``image-size-mismatch`` (decoded size differs from
    the annotation's width/height).
    """
    image_id, file_name = task.image["id"], task.image["file_name"]
    if task.min_labelled_area > 0 and kept_area(task.annotations, task.label_map) <= task.min_labelled_area:
        return ExampleResult(
            image_id, file_name, "labelled-area", f"kept annotations cover <= {task.min_labelled_area:g} px"
        )
    try:
        pixels = read_rgb(task.path)
    except ImageError as error:
        return ExampleResult(image_id, file_name, "unreadable-image", str(error))
    height, width = task.image["height"], task.image["width"]
    if pixels.shape[:2] != (height, width):
        return ExampleResult(
            image_id,
            file_name,
            "image-size-mismatch",
            f"file is {pixels.shape[1]}x{pixels.shape[0]}, annotations say {width}x{height}",
        )
    mask = resize_mask(semantic_mask(task.annotations, height, width, task.label_map), task.size, task.resize)
    counts = np.bincount(mask.ravel(), minlength=256)
    classes = tuple(int(value) for value in np.flatnonzero(counts) if 0 < value < IGNORE_INDEX)
    return ExampleResult(
        image_id,
        file_name,
        image_bytes=_encode_image(resize_image(pixels, task.size, task.resize), task.encoding, task.quality),
        mask_bytes=encode_mask(mask),
        classes=classes,
        pixel_counts=tuple(int(count) for count in counts),
    )
