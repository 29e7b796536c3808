"""The Explore page's image browser on the real demo data: filtering and paging the stats' image
index, cached thumbnails, and one image's detail."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from cocoseg.pipeline.data.coco import load_coco
from cocoseg.pipeline.data.labels import IGNORE_INDEX, build_label_map
from cocoseg.pipeline.data.stats import split_stats
from cocoseg.pipeline.data.thumbnails import (
    PAGE_SIZE,
    THUMBNAIL_SIDE,
    filter_images,
    image_detail,
    image_page,
    split_image_detail,
    thumbnail,
    thumbnails_of,
)
from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON, LIMIT

INDEX = {
    "ids": [11, 12, 13, 14],
    "files": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
    "classes": [[1], [1, 2], [], [2]],
}


def test_filter_images_any_or_all_of_the_classes():
    assert filter_images(INDEX, []) == [0, 1, 2, 3]
    assert filter_images(INDEX, [1, 2]) == [0, 1, 3]
    assert filter_images(INDEX, [1, 2], match_all=True) == [1]
    assert filter_images(INDEX, [7]) == []


def test_image_page_slices_and_clamps():
    first = image_page(INDEX, [], page=0, page_size=3)
    assert first.images == [(11, "a.jpg"), (12, "b.jpg"), (13, "c.jpg")]
    assert (first.number, first.pages, first.total) == (0, 2, 4)
    past_the_end = image_page(INDEX, [], page=9, page_size=3)
    assert past_the_end.images == [(14, "d.jpg")] and past_the_end.number == 1
    none = image_page(INDEX, [7], page=3, page_size=3)
    assert (none.images, none.number, none.pages, none.total) == ([], 0, 1, 0)


def test_image_page_of_the_demo_split(workspace):
    index = split_stats(workspace, "demo", "val", LIMIT, "coco80")["image_index"]
    everything = image_page(index, [])
    assert everything.total == 80 and everything.pages == 7 and len(everything.images) == PAGE_SIZE
    people = image_page(index, [1], page=1)  # coco80 class 1 is person
    assert (people.total, people.pages, people.number) == (49, 5, 1)


def test_thumbnails_are_small_cached_jpegs_and_unreadable_files_are_none(workspace, tmp_path):
    name = sorted(path.name for path in DEMO_VAL_IMAGES.glob("*.jpg"))[0]
    shutil.copy(DEMO_VAL_IMAGES / name, tmp_path / name)
    (tmp_path / "broken.jpg").write_bytes(b"not a picture")
    data = thumbnail(workspace, tmp_path / name)
    picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert data[:3] == b"\xff\xd8\xff" and max(picture.shape[:2]) == THUMBNAIL_SIDE
    assert thumbnail(workspace, tmp_path / name) == data
    found, broken, missing = thumbnails_of(workspace, tmp_path, [name, "broken.jpg", "missing.jpg"])
    assert found == data and broken is None and missing is None


def test_image_detail_counts_the_mask_and_draws_outlines(workspace):
    coco = load_coco(DEMO_VAL_JSON, DEMO_VAL_IMAGES, LIMIT)
    label_map = build_label_map("coco80", coco.categories)
    image_id = next(image["id"] for image in coco.images if coco.annotations_by_image[image["id"]])
    detail = image_detail(coco, image_id, label_map)
    counts = np.bincount(detail.mask.ravel(), minlength=256)
    assert detail.mask.shape == (detail.height, detail.width) == detail.picture.shape[:2]
    assert detail.outlines.shape == (detail.height, detail.width, 4) and detail.outlines[..., 3].any()
    assert detail.present and all(row["pixels"] == counts[row["index"]] for row in detail.present)
    assert detail.ignored == counts[IGNORE_INDEX] and detail.annotations == len(
        coco.annotations_by_image[image_id]
    )
    assert detail.file_name == coco.image_by_id[image_id]["file_name"]
    with pytest.raises(KeyError):
        image_detail(coco, -1, label_map)


def test_split_image_detail_uses_the_label_map_of_the_statistics(workspace):
    index = split_stats(workspace, "demo", "val", LIMIT, "voc21")["image_index"]
    image_id = image_page(index, [15]).images[0][0]  # voc21 class 15 is person
    detail = split_image_detail(workspace, "demo", "val", image_id, LIMIT, "voc21")
    assert detail.label_map.num_classes == 21 and "person" in {row["name"] for row in detail.present}
