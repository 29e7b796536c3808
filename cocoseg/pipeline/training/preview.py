"""Augmentation preview: N augmented versions of one example, and a PNG grid of them.

The example is built exactly as preparation builds it (``prepare.examples.build_example``)
and augmented by the same function training uses, so what the preview shows is what
the model will see. Works before the set is prepared.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from cocoseg.pipeline.core.tf_runtime import tensorflow
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.data.labels import LabelMap
from cocoseg.pipeline.data.rendering import overlay
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.examples import build_example
from cocoseg.pipeline.prepare.plan import plan
from cocoseg.pipeline.prepare.sets import PrepareError
from cocoseg.pipeline.training.augment import augment
from cocoseg.pipeline.training.config import AugmentConfig

DEFAULT_AUGMENTATION = AugmentConfig()
PREVIEW_OPACITY = 0.55


def augmented_examples(
    workspace: Workspace,
    config: PrepareConfig,
    split: str,
    index: int,
    count: int,
    max_bytes: int,
    seed: int = 0,
    augment_config: AugmentConfig = DEFAULT_AUGMENTATION,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], LabelMap, str]:
    """``count`` augmentations of image number ``index`` of ``split``.

    Returns:
        ([(image RGB uint8, mask uint8), ...], label map, the image's file name).

    Raises:
        PrepareError: the split or index does not exist, or the image cannot be read.
    """
    if not 1 <= count <= 64:
        raise PrepareError(f"count: show 1-64 augmentations, got {count}")
    plan_ = plan(workspace, dataclasses.replace(config, splits=(split,)), max_bytes)
    tasks = plan_.splits[0].tasks
    if not 0 <= index < len(tasks):
        raise PrepareError(f"index: {split} has {len(tasks)} valid images (0-{len(tasks) - 1}), got {index}")
    result = build_example(dataclasses.replace(tasks[index], min_labelled_area=0.0))
    if result.skipped:
        raise PrepareError(f"{result.file_name}: {result.detail}")
    tf = tensorflow()
    image = tf.io.decode_image(result.image_bytes, channels=3, expand_animations=False)
    mask = tf.io.decode_png(result.mask_bytes, channels=1)[..., 0]
    pairs = []
    for variant in range(count):
        augmented_image, augmented_mask = augment(
            image, mask, tf.constant([seed, variant], dtype=tf.int64), augment_config
        )
        pairs.append((augmented_image.numpy(), augmented_mask.numpy()))
    return pairs, plan_.label_map, result.file_name


def preview_grid(
    pairs: list[tuple[np.ndarray, np.ndarray]], label_map: LabelMap, columns: int = 4, gap: int = 4
) -> np.ndarray:
    """An RGB grid: each cell shows the augmented image and its mask overlay side by side."""
    cells = [
        np.concatenate(
            [
                image,
                np.full((image.shape[0], gap, 3), 255, np.uint8),
                overlay(image, mask, label_map, PREVIEW_OPACITY),
            ],
            axis=1,
        )
        for image, mask in pairs
    ]
    height, width = cells[0].shape[:2]
    rows = -(-len(cells) // columns)
    grid = np.full(
        (rows * (height + gap) - gap, min(columns, len(cells)) * (width + gap) - gap, 3), 255, np.uint8
    )
    for position, cell in enumerate(cells):
        row, column = divmod(position, columns)
        grid[
            row * (height + gap) : row * (height + gap) + height,
            column * (width + gap) : column * (width + gap) + width,
        ] = cell
    return grid


def preview_thumbnails(
    workspace: Workspace,
    config: PrepareConfig,
    split: str,
    index: int,
    seed: int,
    strengths: AugmentConfig,
    count: int,
    height: int,
    max_bytes: int,
) -> tuple[list[bytes], str]:
    """``count`` augmentations of one image as small JPEGs (each the picture beside its mask overlay) and its
    file name.

    Shrunk to ``height`` pixels so a page receives kilobytes, not the full-size grid.
    """
    from cocoseg.pipeline.data.rendering import image_jpeg

    pairs, label_map, file_name = augmented_examples(
        workspace, config, split, index, count, max_bytes, seed, strengths
    )
    pictures = []
    for pair in pairs:
        cell = preview_grid([pair], label_map, columns=1)
        if cell.shape[0] > height:
            width = round(cell.shape[1] * height / cell.shape[0])
            cell = cv2.resize(cell, (width, height), interpolation=cv2.INTER_AREA)
        pictures.append(image_jpeg(cell, quality=85))
    return pictures, file_name
