"""Rendering: overlay, layers, pixel shares, PNG/JPEG encoding and COCO RLE agree with the mask."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as coco_mask

from cocoseg.pipeline.data.labels import build_label_map, is_coco_compatible
from cocoseg.pipeline.data.rendering import (
    category_of,
    coco_annotations,
    coco_categories,
    encode_jpeg,
    encode_png,
    image_png,
    mask_layer,
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


def test_mask_layer_is_transparent_on_background_and_shows_ignored_pixels_only_when_asked():
    mask = _mask()
    layer = mask_layer(mask, VOC)
    assert layer.shape == (*mask.shape, 4)
    assert layer[0, 0, 3] == 0 and layer[1, 1, 3] == 0  # ignored, background
    assert layer[6, 11, 3] == 255 and tuple(layer[6, 11, :3]) == VOC.palette[15]
    shown = mask_layer(mask, VOC, show_ignored=True)
    assert shown[0, 0, 3] == 255 and shown[1, 1, 3] == 0


@pytest.mark.parametrize("channels", [None, 3, 4])
def test_encode_png_round_trips_grey_rgb_and_rgba_exactly(channels):
    generator = np.random.default_rng(0)
    shape = (17, 23) if channels is None else (17, 23, channels)
    pixels = generator.integers(0, 256, size=shape, dtype=np.uint8)
    decoded = cv2.imdecode(np.frombuffer(encode_png(pixels), np.uint8), cv2.IMREAD_UNCHANGED)
    if channels == 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    elif channels == 4:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA)
    assert np.array_equal(decoded, pixels)


def test_encode_jpeg_keeps_colours_close_and_full_chroma_keeps_them_closer():
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    image[:, ::2] = (220, 30, 30)  # one-pixel red stripes: chroma subsampling smears them
    errors = []
    for full_chroma in (False, True):
        decoded = cv2.cvtColor(
            cv2.imdecode(np.frombuffer(encode_jpeg(image, 95, full_chroma), np.uint8), 1), cv2.COLOR_BGR2RGB
        )
        errors.append(np.abs(decoded.astype(int) - image).mean())
    assert errors[1] < errors[0]


def test_coco_predictions_number_images_and_annotations_consecutively():
    from cocoseg.pipeline.inference.batch import CocoPredictions

    predictions = CocoPredictions(VOC).add("a.jpg", _mask()).add("b.jpg", np.zeros((4, 5), np.uint8))
    coco = predictions.add("c.jpg", _mask()).to_dict()
    assert [image["id"] for image in coco["images"]] == [1, 2, 3]
    assert coco["images"][1] == {"id": 2, "file_name": "b.jpg", "height": 4, "width": 5}
    assert [annotation["id"] for annotation in coco["annotations"]] == [1, 2, 3, 4]  # two classes in a and c
    assert {annotation["image_id"] for annotation in coco["annotations"]} == {1, 3}
    assert coco["categories"] == coco_categories(VOC)


def test_predictions_of_a_coco_preset_reload_as_the_same_classes():
    """Predictions and corrections share one categories answer: COCO names for COCO presets."""
    from cocoseg.pipeline.inference.batch import CocoPredictions

    categories = CocoPredictions(VOC).add("a.jpg", _mask()).to_dict()["categories"]
    assert {"id": 5, "name": "airplane", "supercategory": "vehicle"} in categories
    assert is_coco_compatible(categories)
    assert build_label_map("voc21", categories).class_to_categories == VOC.class_to_categories
    custom = build_label_map(
        "custom", [{"id": 7, "name": "crack", "supercategory": "defect"}], names=["crack"]
    )
    assert coco_categories(custom) == [{"id": 7, "name": "crack", "supercategory": "custom"}]
