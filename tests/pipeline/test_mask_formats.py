"""Prediction outputs: overlay, pixel shares, class-index PNG and COCO RLE agree with the mask."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as coco_mask

from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.inference.rendering import (
    category_of,
    coco_annotations,
    coco_categories,
    image_png,
    mask_png,
    overlay,
    pixel_shares,
)

VOC = build_label_map("voc21")


def _mask() -> np.ndarray:
    mask = np.zeros((40, 60), dtype=np.uint8)
    mask[5:15, 10:30] = 15  # person
    mask[20:35, 40:55] = 7  # car
    mask[0, 0] = 255
    return mask


def test_overlay_paints_classes_and_leaves_background_and_ignore():
    image = np.full((40, 60, 3), 100, dtype=np.uint8)
    mask = _mask()
    blended = overlay(image, mask, VOC, opacity=1.0)
    assert tuple(blended[10, 20]) == VOC.palette[15] and tuple(blended[25, 45]) == VOC.palette[7]
    assert tuple(blended[30, 5]) == (100, 100, 100) and tuple(blended[0, 0]) == (100, 100, 100)
    assert np.array_equal(overlay(image, mask, VOC, opacity=0.0), image)
    with pytest.raises(ValueError, match="sizes differ"):
        overlay(image[:10], mask, VOC)


def test_pixel_shares_count_predicted_pixels():
    rows = pixel_shares(_mask(), VOC)
    assert [row["name"] for row in rows] == ["background", "car", "person"]
    assert sum(row["pixels"] for row in rows) == 40 * 60 - 1
    assert sum(row["share"] for row in rows) == pytest.approx(1.0)
    assert rows[2]["pixels"] == 200 and rows[2]["color"] == list(VOC.palette[15])


def test_pngs_are_lossless():
    mask = _mask()
    assert np.array_equal(cv2.imdecode(np.frombuffer(mask_png(mask), np.uint8), cv2.IMREAD_UNCHANGED), mask)
    image = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    decoded = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(image_png(image), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    assert np.array_equal(decoded, image)


def test_coco_annotations_decode_to_the_mask_with_coco_ids():
    mask = _mask()
    annotations = coco_annotations(mask, VOC, image_id=9, first_id=100)
    assert [annotation["id"] for annotation in annotations] == [100, 101]
    by_category = {annotation["category_id"]: annotation for annotation in annotations}
    assert set(by_category) == {1, 3}  # COCO ids of person and car
    person = by_category[1]
    assert person["image_id"] == 9 and person["area"] == 200.0 and person["bbox"] == [10.0, 5.0, 20.0, 10.0]
    decoded = coco_mask.decode(
        {"size": person["segmentation"]["size"], "counts": person["segmentation"]["counts"].encode()}
    )
    assert np.array_equal(decoded, (mask == 15).astype(np.uint8))
    assert {category["id"] for category in coco_categories(VOC)} == {
        category_of(VOC, index) for index in range(1, 21)
    }


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_rle_round_trip_rebuilds_every_class(height, width, seed):
    mask = np.random.default_rng(seed).integers(0, 4, (height, width)).astype(np.uint8)
    rebuilt = np.zeros_like(mask)
    classes = {category_of(VOC, index): index for index in range(21)}
    for annotation in coco_annotations(mask, VOC):
        region = coco_mask.decode(
            {
                "size": annotation["segmentation"]["size"],
                "counts": annotation["segmentation"]["counts"].encode(),
            }
        )
        assert annotation["area"] == region.sum()
        rebuilt[region > 0] = classes[annotation["category_id"]]
    assert np.array_equal(rebuilt, mask)
