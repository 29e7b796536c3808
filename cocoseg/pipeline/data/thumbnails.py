"""What the Explore page shows of single images: pages of thumbnails, mask overlays, instance outlines.

Thumbnails are cached in the workspace by file path, size and mtime, so paging through a
split decodes each image once. Filtering and paging read only the statistics' image index
(``cocoseg.pipeline.data.stats``). The detail view renders the label map's semantic mask
and every instance's outline at the image's own resolution.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from cocoseg.pipeline.core.cache import CACHE_EXPIRE_SECONDS, open_cache
from cocoseg.pipeline.data.coco import CocoDataset
from cocoseg.pipeline.data.images import ImageError, read_rgb
from cocoseg.pipeline.data.labels import IGNORE_INDEX, LabelMap, label_map_from_dict
from cocoseg.pipeline.data.masks import instance_mask, is_crowd, semantic_mask
from cocoseg.pipeline.data.registry import cached_split
from cocoseg.pipeline.data.rendering import encode_jpeg
from cocoseg.pipeline.data.stats import split_stats

THUMBNAIL_SIDE = 160
PAGE_SIZE = 12


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


@dataclasses.dataclass(frozen=True)
class ImagePage:
    """One page of a filtered image list.

    Attributes:
        images: (image id, file name) of the images on this page, in file order.
        number: this page, from 0 (a page past the end is the last page).
        pages: how many pages the filtered list fills (at least 1).
        total: how many images passed the filter.
    """

    images: list[tuple[int, str]]
    number: int
    pages: int
    total: int


def image_page(
    index: dict, classes: list[int], match_all: bool = False, page: int = 0, page_size: int = PAGE_SIZE
) -> ImagePage:
    """Page ``page`` of the images in the stats' image index that contain any (or all) of ``classes``."""
    positions = filter_images(index, classes, match_all)
    pages = max(1, -(-len(positions) // page_size))
    number = min(max(page or 0, 0), pages - 1)
    chosen = positions[number * page_size : (number + 1) * page_size]
    return ImagePage(
        [(index["ids"][position], index["files"][position]) for position in chosen],
        number,
        pages,
        len(positions),
    )


def thumbnails_of(workspace, folder: Path, names: list[str]) -> list[bytes | None]:
    """The thumbnails of ``names`` in ``folder``; None for a file that is missing or unreadable."""
    pictures = []
    for name in names:
        try:
            pictures.append(thumbnail(workspace, Path(folder) / name))
        except (ImageError, OSError, ValueError):
            pictures.append(None)
    return pictures


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


@dataclasses.dataclass(frozen=True)
class ImageDetail:
    """One image with its masks, at its own resolution.

    Attributes:
        record: the image's COCO record.
        picture: RGB pixels.
        mask: the label map's semantic mask (255 = ignored).
        outlines: RGBA layer of every kept instance's outline.
        present: per foreground class in the mask: index, name, color, pixels, instances.
        ignored: ignored pixels.
        annotations: the image's annotations, crowd included.
        label_map: the label map the mask and outlines use.
    """

    record: dict
    picture: np.ndarray
    mask: np.ndarray
    outlines: np.ndarray
    present: list[dict]
    ignored: int
    annotations: int
    label_map: LabelMap

    @property
    def file_name(self) -> str:
        return self.record["file_name"]

    @property
    def width(self) -> int:
        return self.picture.shape[1]

    @property
    def height(self) -> int:
        return self.picture.shape[0]


def image_detail(coco: CocoDataset, image_id: int, label_map: LabelMap) -> ImageDetail:
    """Picture, semantic mask, outline layer and the classes present (with pixel counts) of one image.

    Raises:
        KeyError: no image with this id; ImageError: its file cannot be read.
    """
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
    return ImageDetail(
        record,
        picture,
        mask,
        outline_layer(annotations, *picture.shape[:2], label_map),
        present,
        int(counts[IGNORE_INDEX]),
        len(annotations),
        label_map,
    )


def split_image_detail(
    workspace, dataset: str, split: str, image_id: int, max_bytes: int, label_preset: str | None = None
) -> ImageDetail:
    """``image_detail`` of one image of a registered split, in the label map of the split's cached
    statistics (so the detail's colours and names match the charts beside it)."""
    label_map = label_map_from_dict(
        split_stats(workspace, dataset, split, max_bytes, label_preset)["label_map"]
    )
    return image_detail(cached_split(workspace, dataset, split, max_bytes), image_id, label_map)
