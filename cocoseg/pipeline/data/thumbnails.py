"""What the Explore page shows of single images: thumbnails, mask overlays, instance outlines.

Thumbnails are cached in the workspace by file path, size and mtime, so paging through a
split decodes each image once. The detail view renders the label map's semantic mask
and every instance's outline at the image's own resolution.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cocoseg.pipeline.core.cache import CACHE_EXPIRE_SECONDS, open_cache
from cocoseg.pipeline.data.coco import CocoDataset
from cocoseg.pipeline.data.images import read_rgb
from cocoseg.pipeline.data.labels import IGNORE_INDEX, LabelMap
from cocoseg.pipeline.data.masks import instance_mask, is_crowd, semantic_mask
from cocoseg.pipeline.data.rendering import encode_jpeg

THUMBNAIL_SIDE = 160


def thumbnail(workspace, path: Path, side: int = THUMBNAIL_SIDE) -> bytes:
    """A JPEG no larger than ``side`` on its longer side (cached).

    Raises:
        ImageError: the file is missing or not a readable image.
    """
    status = Path(path).stat()
    key = ("thumbnail", str(Path(path).resolve()), status.st_size, status.st_mtime_ns, side)
    with open_cache(workspace, "thumbnails") as cache:
        data = cache.get(key)
        if data is None:
            picture = read_rgb(path)
            scale = side / max(picture.shape[:2])
            if scale < 1:
                picture = cv2.resize(
                    picture,
                    (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale))),
                    interpolation=cv2.INTER_AREA,
                )
            data = encode_jpeg(picture, quality=80)
            cache.set(key, data, expire=CACHE_EXPIRE_SECONDS)
    return data


def filter_images(index: dict, classes: list[int], match_all: bool = False) -> list[int]:
    """Positions in the stats' image index whose images contain any (or all) of ``classes``."""
    if not classes:
        return list(range(len(index["ids"])))
    wanted = set(classes)
    test = wanted.issubset if match_all else (lambda present: not wanted.isdisjoint(present))
    return [position for position, present in enumerate(index["classes"]) if test(set(present))]


def outline_layer(
    annotations: list[dict], height: int, width: int, label_map: LabelMap, thickness: int = 2
) -> np.ndarray:
    """RGBA: each kept instance's outline in its class colour (crowd regions dashed white)."""
    layer = np.zeros((height, width, 4), dtype=np.uint8)
    for annotation in annotations:
        class_index = label_map.class_of(annotation["category_id"])
        if class_index == 0:
            continue
        region = instance_mask(annotation["segmentation"], height, width)
        contours, _hierarchy = cv2.findContours(
            region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        colour = (255, 255, 255, 255) if is_crowd(annotation) else (*label_map.palette[class_index], 255)
        cv2.drawContours(layer, contours, -1, tuple(int(value) for value in colour), thickness)
    return layer


def image_detail(coco: CocoDataset, image_id: int, label_map: LabelMap) -> dict:
    """Picture, semantic mask, outline layer and the classes present (with pixel counts) of one image."""
    record = coco.image_by_id[image_id]
    picture = read_rgb(coco.image_path(record))
    annotations = coco.annotations_by_image[image_id]
    mask = semantic_mask(annotations, picture.shape[0], picture.shape[1], label_map)
    counts = np.bincount(mask.ravel(), minlength=256)
    present = [
        {
            "index": index,
            "name": label_map.class_names[index],
            "color": list(label_map.palette[index]),
            "pixels": int(counts[index]),
            "instances": sum(
                1 for annotation in annotations if label_map.class_of(annotation["category_id"]) == index
            ),
        }
        for index in range(1, label_map.num_classes)
        if counts[index]
    ]
    return {
        "record": record,
        "picture": picture,
        "mask": mask,
        "outlines": outline_layer(annotations, *picture.shape[:2], label_map),
        "present": present,
        "ignored": int(counts[IGNORE_INDEX]),
        "annotations": len(annotations),
    }
