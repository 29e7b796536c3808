"""Write a dataset's semantic masks as one class-index PNG per image, plus classes.json.

The format other tools ask for: ``<out>/<image file name with .png>`` holding the class
index of every pixel at the image's own size (255 = ignore), and ``classes.json``
with names, palette colours and the COCO ids behind each class. Every file is
written atomically, so an interrupted export never leaves a truncated PNG.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from cocoseg.pipeline.core.workspace import atomic_write_bytes, atomic_write_json, check_relative_path
from cocoseg.pipeline.data.coco import CocoDataset
from cocoseg.pipeline.data.labels import LabelMap
from cocoseg.pipeline.data.masks import semantic_mask
from cocoseg.pipeline.data.rendering import mask_png

logger = logging.getLogger(__name__)


class ExportError(ValueError):
    """The export cannot start (clashing names, output inside the inputs...)."""


@dataclasses.dataclass(frozen=True)
class ExportSummary:
    written: int
    skipped_images: int
    output: Path


def mask_file_name(file_name: str) -> str:
    """``dir/000123.jpg`` -> ``dir/000123.png`` (checked: no '..', not absolute)."""
    relative = Path(check_relative_path(file_name))
    return str(relative.with_suffix(".png"))


def export_masks(
    dataset: CocoDataset,
    label_map: LabelMap,
    output: Path,
    progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """Write every valid image's mask and ``classes.json`` into ``output``.

    Raises:
        ExportError: two images would write the same PNG (``a.jpg`` and ``a.png``).
    """
    output = Path(output)
    names = [mask_file_name(image["file_name"]) for image in dataset.images]
    clashes = sorted(name for name, count in collections.Counter(names).items() if count > 1)
    if clashes:
        raise ExportError(f"images would share mask file names: {', '.join(clashes[:5])}")
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_json(output / "classes.json", label_map.to_dict())
    for done, (image, name) in enumerate(zip(dataset.images, names), start=1):
        mask = semantic_mask(
            dataset.annotations_by_image[image["id"]], image["height"], image["width"], label_map
        )
        atomic_write_bytes(output / name, mask_png(mask))
        if progress:
            progress(done, len(dataset.images))
    skipped = dataset.report.totals.get("images", len(dataset.images)) - len(dataset.images)
    logger.info(
        "wrote %d masks to %s (%d images left out by validation)", len(dataset.images), output, skipped
    )
    return ExportSummary(len(dataset.images), skipped, output)
