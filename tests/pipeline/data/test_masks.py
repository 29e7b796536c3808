"""Semantic masks against a reference composed from pycocotools annToMask on the real demo data."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO

from cocoseg.pipeline.data.coco import load_coco
from cocoseg.pipeline.data.labels import IGNORE_INDEX, build_label_map
from cocoseg.pipeline.data.masks import colorize, kept_area, semantic_mask
from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON


@pytest.fixture(scope="module")
def reference_coco() -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(DEMO_VAL_JSON))


@pytest.fixture(scope="module")
def dataset():
    return load_coco(DEMO_VAL_JSON, DEMO_VAL_IMAGES, 1024**3)


def _reference_default(coco: COCO, image_id: int, label_map) -> np.ndarray:
    """Default protocol from first principles: crowd -> 255, two different classes -> 255."""
    info = coco.imgs[image_id]
    covered: dict[int, np.ndarray] = {}
    crowd = np.zeros((info["height"], info["width"]), dtype=bool)
    for annotation in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=None)):
        class_index = label_map.class_of(annotation["category_id"])
        if class_index == 0:
            continue
        binary = coco.annToMask(annotation).astype(bool)
        if annotation["iscrowd"]:
            crowd |= binary
        else:
            covered[class_index] = covered.get(class_index, np.zeros_like(binary)) | binary
    classes_here = (
        sum(mask.astype(np.int32) for mask in covered.values())
        if covered
        else np.zeros(crowd.shape, np.int32)
    )
    reference = np.zeros(crowd.shape, dtype=np.uint8)
    for class_index, binary in covered.items():
        reference[binary & (classes_here == 1)] = class_index
    reference[classes_here > 1] = IGNORE_INDEX
    reference[crowd] = IGNORE_INDEX
    return reference


def _reference_torchvision(coco: COCO, image_id: int, label_map) -> np.ndarray:
    """voc21 the way torchvision's COCO reference builds targets: max class, >1 instance -> 255."""
    info = coco.imgs[image_id]
    masks, classes = [], []
    for annotation in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=None)):
        class_index = label_map.class_of(annotation["category_id"])
        if class_index:
            masks.append(coco.annToMask(annotation))
            classes.append(class_index)
    if not masks:
        return np.zeros((info["height"], info["width"]), dtype=np.uint8)
    stack = np.stack(masks)
    target = (stack * np.asarray(classes, dtype=np.uint8)[:, None, None]).max(axis=0)
    target[stack.sum(axis=0) > 1] = IGNORE_INDEX
    return target


def test_default_protocol_matches_reference_on_every_demo_image(dataset, reference_coco):
    label_map = build_label_map("coco80", dataset.categories)
    ignored_somewhere = False
    for image in dataset.images:
        ours = semantic_mask(
            dataset.annotations_by_image[image["id"]], image["height"], image["width"], label_map
        )
        np.testing.assert_array_equal(
            ours, _reference_default(reference_coco, image["id"], label_map), err_msg=image["file_name"]
        )
        ignored_somewhere |= bool((ours == IGNORE_INDEX).any())
    assert ignored_somewhere  # the demo has crowd regions and overlaps, so the rule was exercised


def test_voc21_matches_torchvision_protocol(dataset, reference_coco):
    label_map = build_label_map("voc21", dataset.categories)
    for image in dataset.images:
        ours = semantic_mask(
            dataset.annotations_by_image[image["id"]], image["height"], image["width"], label_map
        )
        np.testing.assert_array_equal(
            ours, _reference_torchvision(reference_coco, image["id"], label_map), err_msg=image["file_name"]
        )


def test_larger_first_keeps_small_objects_on_top(dataset, reference_coco):
    label_map = build_label_map("coco80", dataset.categories).with_protocol(overlap="larger-first")
    image = max(dataset.images, key=lambda item: len(dataset.annotations_by_image[item["id"]]))
    annotations = dataset.annotations_by_image[image["id"]]
    ours = semantic_mask(annotations, image["height"], image["width"], label_map)
    reference = np.zeros_like(ours)
    instances = sorted((a for a in annotations if not a["iscrowd"]), key=lambda a: -a["area"])
    for annotation in instances:
        reference[reference_coco.annToMask(annotation).astype(bool)] = label_map.class_of(
            annotation["category_id"]
        )
    for annotation in annotations:
        if annotation["iscrowd"]:
            reference[reference_coco.annToMask(annotation).astype(bool)] = IGNORE_INDEX
    np.testing.assert_array_equal(ours, reference)
    assert IGNORE_INDEX not in np.unique(ours) or any(a["iscrowd"] for a in annotations)


def test_uncompressed_and_compressed_rle_give_the_same_mask(dataset):
    from pycocotools import mask as mask_utils

    label_map = build_label_map("coco80", dataset.categories)
    crowd = next(
        a for a in dataset.annotations if a["iscrowd"] and isinstance(a["segmentation"]["counts"], list)
    )
    image = dataset.image_by_id[crowd["image_id"]]
    height, width = image["height"], image["width"]
    compressed = mask_utils.frPyObjects(crowd["segmentation"], height, width)
    as_string = {
        **crowd,
        "segmentation": {"size": compressed["size"], "counts": compressed["counts"].decode("ascii")},
    }
    painted = label_map.with_protocol(crowd="paint")
    first = semantic_mask([crowd], height, width, painted)
    second = semantic_mask([as_string], height, width, painted)
    np.testing.assert_array_equal(first, second)
    assert (first == label_map.class_of(crowd["category_id"])).sum() == int(mask_utils.area(compressed))


def test_categories_outside_the_label_map_are_background(dataset):
    label_map = build_label_map("custom", dataset.categories, ["dog"])
    for image in dataset.images:
        values = set(
            np.unique(
                semantic_mask(
                    dataset.annotations_by_image[image["id"]], image["height"], image["width"], label_map
                )
            )
        )
        assert values <= {0, 1, IGNORE_INDEX}


def test_colorize_and_kept_area(dataset):
    label_map = build_label_map("voc21", dataset.categories)
    mask = np.array([[0, 15], [255, 1]], dtype=np.uint8)
    picture = colorize(mask, label_map)
    assert picture.shape == (2, 2, 3)
    assert tuple(picture[0, 1]) == label_map.palette[15] and tuple(picture[1, 0]) == (255, 255, 255)
    annotations = [
        {"category_id": 1, "area": 600.0},
        {"category_id": 10, "area": 5000.0},
        {"category_id": 3, "area": 500.0},
    ]
    assert kept_area(annotations, label_map) == 1100.0
