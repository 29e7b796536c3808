"""Property tests (RELIABILITY.md C.51-52): polygon -> mask -> RLE -> mask is exact, and
load(save(load(x))) == load(x) with the original, non-contiguous ids."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pycocotools import mask as mask_utils

from cocoseg.pipeline.data.coco import load_coco, save_coco, validate_coco
from cocoseg.pipeline.data.masks import instance_mask
from cocoseg.pipeline.data.validation import check_rle, check_segmentation, decode_rle_string, polygon_area

MAX_BYTES = 16 * 1024 * 1024
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run_lengths(mask: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts: column-major runs, starting with a run of zeros."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return [int(count) for count in counts]


def encode(mask: np.ndarray) -> dict:
    """pycocotools RLE of a binary mask; pycocotools needs Fortran order."""
    fortran = np.asfortranarray(mask.astype(np.uint8))
    assert fortran.flags.f_contiguous
    return mask_utils.encode(fortran)


# ---------------------------------------------------------------------------
# 51: polygon -> mask -> RLE -> mask
# ---------------------------------------------------------------------------


@st.composite
def convex_polygons(draw):
    """(height, width, flat polygon): the convex hull of random points inside the image, positive area."""
    height = draw(st.integers(2, 48))
    width = draw(st.integers(2, 48))
    coordinate = st.floats(0, 1, allow_nan=False, allow_infinity=False)
    points = draw(st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=12))
    array = np.array([[x * (width - 1), y * (height - 1)] for x, y in points], dtype=np.float32)
    array = np.round(array, 2)
    hull = cv2.convexHull(array)
    assume(len(hull) >= 3 and cv2.contourArea(hull) > 0.5)
    polygon = [float(value) for value in hull.reshape(-1)]
    return height, width, polygon


@st.composite
def boxes_and_triangles(draw):
    height = draw(st.integers(2, 48))
    width = draw(st.integers(2, 48))
    x0 = draw(st.integers(0, width - 2))
    y0 = draw(st.integers(0, height - 2))
    x1 = draw(st.integers(x0 + 1, width))
    y1 = draw(st.integers(y0 + 1, height))
    if draw(st.booleans()):
        polygon = [x0, y0, x1, y0, x1, y1, x0, y1]
    else:
        polygon = [x0, y0, x1, y0, x0, y1]
    return height, width, [float(value) for value in polygon]


@SETTINGS
@given(st.one_of(convex_polygons(), boxes_and_triangles()))
def test_polygon_mask_rle_round_trip(case):
    height, width, polygon = case
    # the validator accepts every valid polygon without a finding
    assert check_segmentation([polygon], height, width) == []
    assert polygon_area(polygon) == pytest.approx(
        cv2.contourArea(np.array(polygon, dtype=np.float32).reshape(-1, 2)), rel=1e-4, abs=1e-3
    )
    # project rasteriser == pycocotools' own path
    mask = instance_mask([polygon], height, width)
    reference = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([polygon], height, width)))
    assert mask.shape == (height, width) and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, reference)
    assert set(np.unique(mask).tolist()) <= {0, 1}
    # mask -> RLE -> mask is exact
    rle = encode(mask)
    assert rle["size"] == [height, width]
    decoded = mask_utils.decode(rle)
    assert decoded.flags.f_contiguous
    np.testing.assert_array_equal(decoded, mask)
    assert int(mask_utils.area(rle)) == int(mask.sum())
    # the COCO JSON forms of that RLE pass the validator and rasterise back to the same mask
    string_form = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    list_form = {"size": [height, width], "counts": run_lengths(mask)}
    assert decode_rle_string(string_form["counts"]) == list_form["counts"]
    assert check_rle(string_form, height, width) == []
    assert check_rle(list_form, height, width) == []
    np.testing.assert_array_equal(instance_mask(json.loads(json.dumps(string_form)), height, width), mask)
    np.testing.assert_array_equal(instance_mask(list_form, height, width), mask)


@SETTINGS
@given(
    hnp.arrays(
        np.uint8,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
        elements=st.integers(0, 1),
    )
)
def test_any_binary_mask_round_trips_and_needs_fortran_order(mask):
    height, width = mask.shape
    rle = encode(mask)
    np.testing.assert_array_equal(mask_utils.decode(rle), mask)
    counts = rle["counts"].decode("ascii")
    assert decode_rle_string(counts) == run_lengths(mask)
    assert sum(decode_rle_string(counts)) == height * width
    assert check_rle({"size": [height, width], "counts": counts}, height, width) == []
    if height > 1 and width > 1:
        # a C-ordered mask is refused by pycocotools: encoding must go through asfortranarray
        c_ordered = np.ascontiguousarray(mask)[:, :, None]
        assert not c_ordered.flags.f_contiguous
        with pytest.raises(ValueError, match="Fortran"):
            mask_utils.encode(c_ordered)


# ---------------------------------------------------------------------------
# 52: load(save(load(x))) == load(x)
# ---------------------------------------------------------------------------

names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)


@st.composite
def coco_datasets(draw):
    """Small valid COCO dicts with random, non-contiguous ids (some warnings allowed)."""
    image_ids = draw(st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=4, unique=True))
    images = []
    for index, image_id in enumerate(image_ids):
        images.append(
            {
                "id": image_id,
                "file_name": f"{draw(st.sampled_from(['', 'sub/']))}img_{index}_{image_id}.jpg",
                "width": draw(st.integers(4, 64)),
                "height": draw(st.integers(4, 64)),
            }
        )
    category_ids = draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=5, unique=True))
    categories = [{"id": cid, "name": draw(names), "supercategory": draw(names)} for cid in category_ids]
    annotation_ids = draw(st.lists(st.integers(1, 2**40), min_size=0, max_size=8, unique=True))
    annotations = []
    for ann_id in annotation_ids:
        image = draw(st.sampled_from(images))
        width, height = image["width"], image["height"]
        x0 = draw(st.integers(0, width - 2))
        y0 = draw(st.integers(0, height - 2))
        x1 = draw(st.integers(x0 + 1, width))
        y1 = draw(st.integers(y0 + 1, height))
        item = {"id": ann_id, "image_id": image["id"], "category_id": draw(st.sampled_from(category_ids))}
        if draw(st.booleans()):
            mask = np.zeros((height, width), dtype=np.uint8)
            mask[y0:y1, x0:x1] = 1
            rle = encode(mask)
            item["segmentation"] = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
            item["iscrowd"] = 1
        else:
            offset = draw(st.sampled_from([0.0, 0.25, 0.5]))
            item["segmentation"] = [[x0 + offset, y0, x1, y0, x1, y1 - offset, x0, y1]]
            if draw(st.booleans()):
                item["iscrowd"] = 0
        item["bbox"] = [x0, y0, x1 - x0, y1 - y0]
        if draw(st.booleans()):  # area missing: recomputed by the first load
            item["area"] = float((x1 - x0) * (y1 - y0))
        annotations.append(item)
    data = {"images": images, "annotations": annotations, "categories": categories}
    if draw(st.booleans()):
        data = {"info": {"description": draw(names), "year": 2017}, **data, "licenses": []}
    return data


@SETTINGS
@given(coco_datasets())
def test_load_save_load_is_idempotent_and_keeps_ids(data):
    first = validate_coco(data)
    assert first.report.errors == 0, dict(first.report.counts)
    assert set(first.report.counts) <= {"area-missing", "duplicate-category-name"}
    assert [image["id"] for image in first.images] == [image["id"] for image in data["images"]]
    assert [ann["id"] for ann in first.annotations] == [ann["id"] for ann in data["annotations"]]
    assert [cat["id"] for cat in first.categories] == [cat["id"] for cat in data["categories"]]
    assert all(isinstance(ann["area"], float) for ann in first.annotations)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "saved.json"
        save_coco(path, first)
        second = load_coco(path, None, MAX_BYTES)
        assert second.images == first.images
        assert second.annotations == first.annotations
        assert second.categories == first.categories
        assert (
            second.extra
            == first.extra
            == {k: v for k, v in data.items() if k not in ("images", "annotations", "categories")}
        )
        assert "area-missing" not in second.report.counts
        assert second.report.errors == 0
        assert second.report.totals == first.report.totals
        again = Path(folder) / "again.json"
        save_coco(again, second)
        assert again.read_bytes() == path.read_bytes()
    # masks from the reloaded dataset are those of the original
    for before, after in zip(first.annotations, second.annotations):
        image = first.image_by_id[before["image_id"]]
        np.testing.assert_array_equal(
            instance_mask(before["segmentation"], image["height"], image["width"]),
            instance_mask(after["segmentation"], image["height"], image["width"]),
        )
