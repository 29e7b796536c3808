"""COCO instances -> one class-index ``uint8`` mask per image.

Instance masks come from pycocotools' rasteriser (polygons, uncompressed and
compressed RLE) so cocoseg's masks match what every other COCO tool computes. How
instances combine is the label map's protocol:

* ``crowd="ignore"``: crowd regions (and ``ignore: 1`` annotations) become 255;
* ``overlap="ignore-different"`` (default): pixels covered by instances of two
  different classes become 255; the result does not depend on annotation order;
* ``overlap="ignore-any"`` (voc21): pixels covered by two or more kept instances
  become 255 whatever their classes;
* ``overlap="larger-first"``: instances are painted largest first, so smaller
  objects stay visible on top; crowd regions (if ignored) are laid over last.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from cocoseg.pipeline.data.labels import IGNORE_INDEX, LabelMap


def instance_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Binary ``uint8`` mask (H, W) of one validated COCO segmentation."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
    return mask_utils.decode(rle)


def is_crowd(annotation: dict) -> bool:
    """Crowd regions and annotations flagged ``ignore`` are handled alike."""
    return annotation.get("iscrowd", 0) == 1 or bool(annotation.get("ignore", 0))


def paint_instance(mask: np.ndarray, region: np.ndarray, class_index: int, overlap: str) -> None:
    """Paint one instance's boolean ``region`` into ``mask`` under an order-free overlap rule.

    ``ignore-different``: free pixels take the class; pixels of another class (or
    already ignored) become 255. ``ignore-any``: any already painted pixel becomes 255.
    """
    current = mask[region]
    if overlap == "ignore-any":
        mask[region] = np.where(current == 0, class_index, IGNORE_INDEX)
    else:
        mask[region] = np.where((current == 0) | (current == class_index), class_index, IGNORE_INDEX)


def semantic_mask(annotations: Iterable[dict], height: int, width: int, label_map: LabelMap) -> np.ndarray:
    """Class-index mask (H, W) ``uint8`` of one image's validated annotations.

    Annotations of categories the label map does not keep are background; the label
    map's protocol decides crowd and overlap handling (see the module docstring).
    """
    mask = np.zeros((height, width), dtype=np.uint8)
    kept = [(annotation, label_map.class_of(annotation["category_id"])) for annotation in annotations]
    kept = [(annotation, class_index) for annotation, class_index in kept if class_index > 0]
    ignore_crowd = label_map.crowd == "ignore"
    crowds = [annotation for annotation, _class in kept if ignore_crowd and is_crowd(annotation)]
    instances = [
        (annotation, class_index)
        for annotation, class_index in kept
        if not (ignore_crowd and is_crowd(annotation))
    ]
    if label_map.overlap == "larger-first":
        instances.sort(key=lambda pair: -float(pair[0].get("area", 0.0)))
        for annotation, class_index in instances:
            mask[instance_mask(annotation["segmentation"], height, width) > 0] = class_index
    else:
        for annotation, class_index in instances:
            paint_instance(
                mask,
                instance_mask(annotation["segmentation"], height, width) > 0,
                class_index,
                label_map.overlap,
            )
    for annotation in crowds:
        mask[instance_mask(annotation["segmentation"], height, width) > 0] = IGNORE_INDEX
    return mask


def colorize(
    mask: np.ndarray, label_map: LabelMap, ignore_colour: tuple[int, int, int] = (255, 255, 255)
) -> np.ndarray:
    """RGB (H, W, 3) picture of a class-index mask with the label map's palette."""
    lookup = np.zeros((256, 3), dtype=np.uint8)
    lookup[: label_map.num_classes] = np.array(label_map.palette, dtype=np.uint8)
    lookup[IGNORE_INDEX] = ignore_colour
    return lookup[mask]


def kept_area(annotations: Iterable[dict], label_map: LabelMap) -> float:
    """Sum of ``area`` of the annotations the label map keeps (voc21's training filter)."""
    return float(
        sum(
            annotation.get("area", 0.0)
            for annotation in annotations
            if label_map.class_of(annotation["category_id"]) > 0
        )
    )
