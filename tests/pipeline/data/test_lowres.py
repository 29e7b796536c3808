"""Batch low-resolution rasteriser: pixel-centre sampling and the order-free overlap rules."""

from __future__ import annotations

import numpy as np
import pytest

from cocoseg.pipeline.data import lowres
from cocoseg.pipeline.data.labels import IGNORE_INDEX
from cocoseg.pipeline.data.lowres import LowResolutionCanvases

SQUARE = [[0.0, 0.0, 32.0, 0.0, 32.0, 32.0, 0.0, 32.0]]


def _square(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _canvas(overlap="ignore-different", crowd_ignore=True, images=1):
    return LowResolutionCanvases(images, 8, crowd_ignore, overlap)


def test_square_covers_exactly_the_centres_inside():
    canvases = _canvas()
    canvases.add_polygons(0, 3, False, _square(0, 0, 4, 2), 8, 8)  # image 8x8 -> scale 1
    canvases.add_polygons(
        0, 5, False, _square(5.6, 5.6, 6.4, 6.4), 8, 8
    )  # contains the centre 6.5? no: 6.4 < 6.5
    canvases.add_polygons(0, 6, False, _square(6.2, 0.2, 6.8, 0.8), 8, 8)  # tiny, contains centre (6.5, 0.5)
    canvases.finish()
    expected = np.zeros((8, 8), dtype=np.uint8)
    expected[0:2, 0:4] = 3
    expected[0, 6] = 6
    np.testing.assert_array_equal(canvases.canvases[0], expected)


def test_scaling_to_the_canvas():
    canvases = _canvas()
    canvases.add_polygons(0, 1, False, _square(0, 0, 320, 240), 640, 480)  # left half, top half
    canvases.finish()
    assert canvases.canvases[0, :4, :4].tolist() == [[1] * 4] * 4
    assert canvases.canvases[0].sum() == 16


def test_triangle_and_concave_polygon():
    canvases = _canvas()
    # a U shape: the notch (columns 3-4, rows 0-5) stays empty
    u_shape = [[0, 0, 3, 0, 3, 6, 5, 6, 5, 0, 8, 0, 8, 8, 0, 8]]
    canvases.add_polygons(0, 2, False, u_shape, 8, 8)
    canvases.finish()
    grid = canvases.canvases[0]
    assert (grid[:6, 3:5] == 0).all() and (grid[6:, :] == 2).all() and (grid[:, :3] == 2).all()


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_ignore_different_is_order_free(order):
    shapes = [(1, _square(0, 0, 4, 4)), (2, _square(2, 2, 6, 6))]
    canvases = _canvas()
    for index in order:
        class_index, polygons = shapes[index]
        canvases.add_polygons(0, class_index, False, polygons, 8, 8)
    canvases.finish()
    grid = canvases.canvases[0]
    assert (grid[2:4, 2:4] == IGNORE_INDEX).all()
    assert (grid[0:2, 0:4] == 1).all() and (grid[4:6, 4:6] == 2).all()


def test_same_class_overlap_is_kept_but_ignore_any_marks_it():
    for overlap, value in (("ignore-different", 1), ("ignore-any", IGNORE_INDEX)):
        canvases = _canvas(overlap)
        canvases.add_polygons(0, 1, False, _square(0, 0, 4, 4), 8, 8)
        canvases.add_polygons(0, 1, False, _square(2, 2, 6, 6), 8, 8)
        canvases.finish()
        assert (canvases.canvases[0][2:4, 2:4] == value).all()
        assert (canvases.canvases[0][0:2, 0:2] == 1).all()


def test_rings_of_one_annotation_overlapping_are_not_an_overlap():
    canvases = _canvas("ignore-any")
    canvases.add_polygons(0, 4, False, _square(0, 0, 4, 4) + _square(2, 2, 6, 6), 8, 8)
    canvases.finish()
    assert (canvases.canvases[0][2:4, 2:4] == 4).all()


def test_crowd_is_ignored_or_painted():
    for crowd_ignore, value in ((True, IGNORE_INDEX), (False, 7)):
        canvases = _canvas(crowd_ignore=crowd_ignore)
        region = np.zeros((8, 8), dtype=bool)
        region[5:, 5:] = True
        canvases.add_region(0, 7, True, region)
        canvases.add_polygons(0, 7, False, _square(4, 4, 8, 8), 8, 8)
        canvases.finish()
        assert (canvases.canvases[0][5:, 5:] == value).all()
        assert canvases.canvases[0][4, 4] == 7


def test_batches_across_flushes_equal_one_batch(monkeypatch):
    rng = np.random.default_rng(3)
    shapes = []
    for _ in range(60):
        x0, y0 = rng.uniform(0, 40, 2)
        size = rng.uniform(1, 30)
        shapes.append(
            (int(rng.integers(0, 3)), int(rng.integers(1, 4)), _square(x0, y0, x0 + size, y0 + size * 0.7))
        )
    results = []
    for batch in (1000, 7):
        monkeypatch.setattr(lowres, "BATCH_ANNOTATIONS", batch)
        canvases = LowResolutionCanvases(3, 16, True, "ignore-different")
        for image, class_index, polygons in shapes:
            canvases.add_polygons(image, class_index, False, polygons, 64, 64)
        canvases.finish()
        results.append(canvases.canvases.copy())
    np.testing.assert_array_equal(results[0], results[1])
    assert (results[0] == IGNORE_INDEX).any() and (results[0] == 1).any()


def test_area_is_unbiased_for_small_objects():
    rng = np.random.default_rng(0)
    objects = 4000
    canvases = LowResolutionCanvases(objects, 8, True, "ignore-different")
    total_area = 0.0
    for image in range(objects):  # one object per image: no overlaps
        x0, y0 = rng.uniform(0, 6, 2)
        side = rng.uniform(0.2, 1.5)
        canvases.add_polygons(image, 1, False, _square(x0, y0, x0 + side, y0 + side), 8, 8)
        total_area += side * side
    canvases.finish()
    painted = int((canvases.canvases > 0).sum())
    # centre sampling: painted pixels estimate the true area (edge-touch filling would give ~3x)
    assert abs(painted - total_area) < 0.05 * total_area
