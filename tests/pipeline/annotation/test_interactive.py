"""Click-to-mask methods on synthetic pictures whose answer is known, bad input, and the per-image cache."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.clicker import iou, next_click
from cocoseg.pipeline.annotation import interactive, interactors
from cocoseg.pipeline.annotation.interactive import (
    CLICKS,
    GRABCUT_BOX,
    MAGIC_WAND,
    MAX_CLICKS,
    MODEL_REGIONS,
    SUPERPIXEL_SNAP,
    InteractiveCache,
    InteractiveError,
    Stroke,
    edit_model_region,
    paint_result,
    segment,
)
from cocoseg.pipeline.annotation.working_copy import WorkingCopy


def _noisy(shape: tuple[int, int], low: int, high: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, (*shape, 3)).astype(np.uint8)


def _disc_picture(height: int = 180, width: int = 240):
    """A bright noisy disc on darker noise, and its mask."""
    truth = np.zeros((height, width), np.uint8)
    cv2.circle(truth, (width // 2 + 10, height // 2), min(height, width) // 4, 1, -1)
    truth = truth.astype(bool)
    picture = _noisy((height, width), 40, 110)
    picture[truth] = _noisy((height, width), 150, 230, seed=1)[truth]
    return picture, truth


def _robot(picture, truth, method, clicks_allowed, **options):
    """IoU after each of the robot's clicks."""
    clicks, mask, ious = [], None, []
    for _ in range(clicks_allowed):
        click = next_click(truth, mask)
        if click is None:
            break
        clicks.append(click)
        mask = segment(picture, clicks, previous_mask=mask, method=method, **options).mask
        ious.append(iou(truth, mask))
    return ious, mask


def test_clicks_find_a_disc_on_noise_within_three_clicks():
    picture, truth = _disc_picture()
    ious, mask = _robot(picture, truth, CLICKS, 3, cache=InteractiveCache(), image_key="disc")
    assert max(ious) >= 0.95 and mask.shape == truth.shape and mask.dtype == bool


def test_each_click_refines_the_previous_mask_and_replaying_gives_the_same_mask():
    picture, truth = _disc_picture()
    first = next_click(truth, None)
    one = segment(picture, [first]).mask
    second = (first[0] + 70, first[1], False)  # background, right of the disc
    stepped = segment(picture, [first, second], previous_mask=one).mask
    replayed = segment(picture, [first, second]).mask
    assert np.array_equal(stepped, replayed) and not stepped[second[1], second[0]]


def test_a_box_around_a_square_gives_the_square():
    truth = np.zeros((160, 200), bool)
    truth[40:120, 60:150] = True
    picture = _noisy(truth.shape, 40, 110)
    picture[truth] = _noisy(truth.shape, 150, 230, seed=1)[truth]
    result = segment(picture, box=(50, 30, 160, 130), method=GRABCUT_BOX)
    assert iou(truth, result.mask) >= 0.9 and result.seconds > 0 and result.note is None


def striped_picture(height: int = 240, width: int = 320) -> np.ndarray:
    """Black and white stripes one pixel wide: no colour says where an object is.

    (With two-pixel stripes a box's cut kept half the stripes and agreed with the box's ellipse just
    above ``interactors.BOX_AGREEMENT``; one-pixel stripes keep it far under: IoU 0.27.)
    """
    picture = np.zeros((height, width, 3), np.uint8)
    picture[:, ::2] = 255
    return picture


def test_a_box_whose_cut_is_not_believed_says_its_mask_is_the_boxs_ellipse():
    picture, box = striped_picture(), (120, 80, 200, 160)
    result = segment(picture, box=box, method=GRABCUT_BOX)
    # The ellipse is drawn on the working copy (twice the picture's size) and scaled back.
    copy = WorkingCopy(picture)
    (x0, y0), (x1, y1) = copy.to_working_points([box[:2], box[2:]])
    outside = np.ones(copy.shape, bool)
    outside[y0:y1, x0:x1] = False
    ellipse = copy.to_image(interactors.inscribed_ellipse(copy.shape, (x0, y0, x1, y1)) & ~outside)
    assert np.array_equal(result.mask, ellipse) and result.note == interactive.ELLIPSE_NOTE
    # The note is about the box's guess: the clicks that correct it carry none.
    corrected = segment(picture, [(160, 120, False)], box, result.mask, GRABCUT_BOX)
    assert corrected.note is None and not corrected.mask[120, 160]


def test_a_box_keeps_a_thin_dim_part_that_reaches_its_side():
    # GrabCut alone cuts off a leg whose colour lies between the body's and the background's; the box
    # reaches down to the leg's foot, so every row of the box must hold some of the object.
    truth = np.zeros((200, 240), bool)
    truth[30:110, 70:170] = True
    leg = np.zeros_like(truth)
    leg[110:150, 118:121] = True
    truth |= leg
    picture = _noisy(truth.shape, 40, 110)
    picture[truth] = _noisy(truth.shape, 150, 230, seed=1)[truth]
    picture[leg] = _noisy(truth.shape, 100, 140, seed=2)[leg]
    mask = segment(picture, box=(70, 30, 170, 150), method=GRABCUT_BOX).mask
    assert mask[30:150].any(axis=1).all() and iou(leg, mask & leg.any(axis=1)[:, None]) >= 0.5
    assert iou(truth, mask) >= 0.95


def test_grabcut_colour_models_are_read_as_opencv_packs_them():
    # One component (weight 1, mean (10, 20, 30), covariance 4 I, which the reader regularises by 0.001 I):
    # the log of a Gaussian density without its (2 pi)^(3/2) factor, which both sides of a ratio share.
    model = np.zeros((1, 65))
    model[0, 0] = 1.0
    model[0, 5:8] = (10, 20, 30)
    model[0, 20:29] = (4 * np.eye(3)).ravel()
    pixels = np.array([[10, 20, 30], [12, 20, 30], [10, 26, 34]], np.uint8)
    variance = 4.001
    squared = np.array([0.0, 4.0, 36.0 + 16.0]) / variance
    expected = -0.5 * squared - 1.5 * np.log(variance)
    assert np.allclose(interactors.colour_log_likelihood(model, pixels), expected, atol=1e-6)


def test_a_small_box_on_look_alike_colours_still_gives_an_object_inside_the_box():
    # The same noise inside and outside: GrabCut alone finds no object (it lost half the demo's boxes).
    picture = _noisy((240, 320), 0, 255)
    box = (150, 100, 170, 124)
    mask = segment(picture, box=box, method=GRABCUT_BOX).mask
    inside = np.zeros(mask.shape, bool)
    inside[100:124, 150:170] = True
    assert mask.sum() >= 0.5 * inside.sum() and not (mask & ~inside).any()


def test_the_same_box_gives_the_same_mask_whatever_opencvs_random_state():
    # GrabCut's k-means start draws from OpenCV's generator; on this picture four states gave four masks
    # (up to 155 pixels apart) before the cut seeded it.
    picture = _noisy((120, 160), 0, 255)
    picture[30:90, 40:120] //= 2
    masks = []
    for state in (1, 2, 3, 4):
        cv2.setRNGSeed(state)
        masks.append(segment(picture, box=(30, 20, 130, 100), method=GRABCUT_BOX).mask)
    assert all(np.array_equal(mask, masks[0]) for mask in masks)


@pytest.mark.parametrize("size", [(960, 1280), (120, 160)])
def test_pictures_are_cut_on_a_working_copy_640_wide_and_answered_at_their_own_size(size):
    picture, truth = _disc_picture(*size)
    cache = InteractiveCache()
    result = segment(picture, [next_click(truth, None)], cache=cache, image_key="picture")
    assert result.mask.shape == size and iou(truth, result.mask) >= 0.9
    assert cache.working_copy("picture", picture).shape == (480, 640)


@pytest.mark.parametrize("correction_side", [100_000, 120])
def test_a_far_click_fills_its_gap_whether_or_not_the_window_is_cut_on_a_smaller_copy(
    monkeypatch, correction_side
):
    # The disc's right half is missing; the robot's click lands ~60 px from the mask, so the correction's
    # window is ~500 px across: cut as it is, or on a copy 120 px across (as far clicks are, for speed).
    monkeypatch.setattr(interactors, "CORRECTION_SIDE", correction_side)
    picture, truth = _disc_picture(480, 640)
    previous = truth.copy()
    previous[:, 330:] = False
    click = next_click(truth, previous)
    result = segment(picture, [click], previous_mask=previous, method=CLICKS).mask
    assert iou(truth, result) >= 0.97 and iou(truth, previous) < 0.6
    assert not (previous & ~result).any()  # a positive click only adds
    # No seam left along the old edge (x = 330): ~100 pixels of the disc's rim there are missed either way,
    # 544 when the copy's cut was compared with the mask on the copy.
    assert np.count_nonzero((truth & ~result)[:, 326:336]) <= 150


def test_a_boxs_mask_has_no_holes_or_islands_where_the_colours_speckle():
    # A square with background-coloured speckles inside it, and an object-coloured patch in the box's
    # corner that does not touch the square: GrabCut takes the patch and leaves the speckles out.
    truth = np.zeros((160, 200), bool)
    truth[40:120, 60:150] = True
    picture = _noisy(truth.shape, 40, 110)
    picture[truth] = _noisy(truth.shape, 150, 230, seed=1)[truth]
    speckles = np.zeros_like(truth)
    speckles[60:100:6, 80:130:6] = True
    speckles = cv2.dilate(speckles.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    picture[speckles] = _noisy(truth.shape, 40, 110, seed=3)[speckles]
    patch = np.zeros_like(truth)
    patch[32:37, 52:57] = True
    picture[patch] = _noisy(truth.shape, 150, 230, seed=4)[patch]
    mask = segment(picture, box=(50, 30, 160, 130), method=GRABCUT_BOX).mask
    assert mask[speckles].all() and not mask[patch].any() and iou(truth, mask) >= 0.95
    assert np.array_equal(interactors.filled_holes(truth & ~speckles), truth)


def test_a_positive_click_fills_holes_but_not_one_a_negative_click_made():
    picture, truth = _disc_picture()
    previous = truth.copy()
    previous[:, 160:] = False  # the disc's right rim is missing...
    hole = np.zeros_like(truth)
    cv2.circle(hole, (130, 90), 4, 1, -1)
    previous[hole] = False  # ...and there is a hole in its middle, 30 px from the rim
    click = next_click(truth, previous)
    assert click[2] and click[0] >= 160
    filled = segment(picture, [click], previous_mask=previous, method=CLICKS).mask
    # One click fills the hole and most of the rim (a second would take the rest).
    assert filled[hole].all() and iou(truth, filled) >= 0.94 and iou(truth, previous) < 0.9
    kept = segment(picture, [(130, 90, False), click], previous_mask=previous, method=CLICKS).mask
    assert not kept[hole].any() and kept[:, 160:].sum() == filled[:, 160:].sum()


def test_a_positive_click_outside_the_box_is_kept_and_nothing_else_leaves_the_box():
    truth = np.zeros((160, 220), bool)
    truth[40:120, 60:150] = True
    picture = _noisy(truth.shape, 40, 110)
    picture[truth] = _noisy(truth.shape, 150, 230, seed=1)[truth]
    box = (50, 30, 160, 130)
    boxed = segment(picture, box=box, method=GRABCUT_BOX).mask
    click = (185, 80, True)  # 35 px right of the object, outside the box
    mask = segment(picture, [click], box, boxed, GRABCUT_BOX).mask
    outside = np.ones(truth.shape, bool)
    outside[30:130, 50:160] = False
    distance = np.hypot(*np.meshgrid(np.arange(220) - 185, np.arange(160) - 80))
    # Outside the box only the click's own mark: its sure disc and the tidying stay inside.
    assert mask[80, 185] and not (mask & outside & (distance > interactive.SEED_RADIUS + 0.5)).any()


def test_a_click_on_the_border_of_a_picture_wide_object_changes_only_its_corner():
    picture = _noisy((120, 160), 60, 200)
    previous = np.ones((120, 160), bool)
    previous[-3:, :3] = False  # the only pixels outside the object are in the far corner
    mask = segment(picture, [(159, 0, False)], previous_mask=previous, method=CLICKS).mask
    removed = previous & ~mask
    # The border bounds the click's error: the corner goes, not a disc reaching the far corner.
    assert not mask[0, 159] and 1 <= removed.sum() <= 25 and not removed[10:, :].any()


def test_smoothing_changes_only_the_pixels_it_is_told_are_near():
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:30] = True
    mask[5, 5] = mask[20, 35] = True  # two lone pixels: a median of 3 drops both
    near = np.zeros_like(mask)
    near[:, :20] = True
    result = interactors.smoothed(mask, 3, near)
    assert not result[5, 5] and result[20, 35]
    # The square's corners lose a pixel near the left only (a corner has 4 of 9 neighbours set).
    assert not result[10, 10] and not result[29, 10] and result[10, 29] and result[29, 29]
    assert np.array_equal(result[11:29, 11:29], mask[11:29, 11:29])


def test_the_magic_wand_fills_a_flat_region_and_a_negative_click_takes_it_back():
    picture = np.full((120, 160, 3), (30, 90, 200), np.uint8)
    region = np.zeros((120, 160), bool)
    region[20:70, 30:110] = True
    picture[region] = (200, 180, 40)
    filled = segment(picture, [(50, 40, True)], method=MAGIC_WAND)
    assert iou(region, filled.mask) >= 0.99
    emptied = segment(
        picture, [(50, 40, True), (60, 50, False)], previous_mask=filled.mask, method=MAGIC_WAND
    )
    assert not emptied.mask.any()


def test_superpixel_snap_follows_the_edge_a_stroke_crosses():
    picture = _noisy((120, 160), 20, 60)
    picture[:, 80:] = _noisy((120, 160), 180, 230, seed=1)[:, 80:]
    stroke = Stroke(((64.0, 20.0), (64.0, 100.0)), radius=18)  # its brush reaches 3 px over the edge
    mask = segment(picture, strokes=[stroke], method=SUPERPIXEL_SNAP).mask
    assert mask[20:100, 60:79].mean() > 0.95  # snapped out to the edge...
    assert not mask[:, 82:].any()  # ...and back from over it (SLIC may place the edge a pixel off)


def test_model_regions_accept_reject_and_relabel_one_component():
    prediction = np.zeros((60, 80), np.uint8)
    prediction[5:20, 5:25] = 1
    prediction[30:50, 5:25] = 1  # a second region of class 1, not connected to the first
    prediction[30:50, 40:70] = 2
    first = segment(
        np.zeros((60, 80, 3), np.uint8), [(10, 10, True)], method=MODEL_REGIONS, prediction=prediction
    )
    assert first.label == 1 and first.mask.sum() == 15 * 20 and first.mask[10, 10] and not first.mask[40, 10]
    both = segment(
        np.zeros((60, 80, 3), np.uint8),
        [(10, 10, True), (50, 40, True), (10, 10, False)],
        method=MODEL_REGIONS,
        prediction=prediction,
    )
    assert both.mask.sum() == 20 * 30 and both.mask[40, 50]
    layer = np.zeros_like(prediction)
    accepted, region = edit_model_region(layer, prediction, 50, 40, "accept", class_index=3)
    assert region.sum() == 20 * 30 and (accepted[region] == 2).all() and not accepted[~region].any()
    relabelled, _ = edit_model_region(accepted, prediction, 50, 40, "relabel", class_index=3)
    assert (relabelled[region] == 3).all()
    rejected, _ = edit_model_region(relabelled, prediction, 50, 40, "reject", class_index=3)
    assert not rejected.any() and (relabelled[region] == 3).all()  # the input is never changed


def test_a_result_is_painted_into_a_class_layer():
    layer = np.zeros((4, 4), np.uint8)
    layer[0] = 5
    before = np.zeros((4, 4), bool)
    before[1] = True
    layer[1] = 2
    after = np.zeros((4, 4), bool)
    after[2] = True
    painted = paint_result(layer, before, after, 2)
    assert (painted[0] == 5).all() and (painted[1] == 0).all() and (painted[2] == 2).all()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"box": (10, 10, 10, 50), "method": GRABCUT_BOX}, "no area"),
        ({"clicks": [(500, 10, True)]}, "outside the 160x120 image"),
        ({"clicks": [(5, 5, True)] * (MAX_CLICKS + 1)}, "start a new object"),
        ({"clicks": [(5, 5, "yes")]}, "positive true or false"),
        ({"method": GRABCUT_BOX}, "drag a rectangle"),
        ({"clicks": [(5, 5, True)], "method": "lasso"}, "choose one of"),
        ({"clicks": [(5, 5, True)], "method": MODEL_REGIONS}, "pre-fill the image"),
        ({"clicks": [(5, 5, True)], "previous_mask": np.zeros((10, 10), bool)}, "must be 120x160"),
        ({"clicks": [(5, 5, True)], "image_key": None}, "needs the image's key"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_changes(arguments, message):
    picture = _noisy((120, 160), 0, 255)
    original = picture.copy()
    previous = np.zeros((120, 160), bool)
    previous[10:20, 10:20] = True
    cache = InteractiveCache()
    arguments = {"previous_mask": previous, "cache": cache, "image_key": "picture"} | arguments
    kept = arguments["previous_mask"].copy()
    with pytest.raises(InteractiveError, match=message) as raised:
        segment(picture, **arguments)
    assert "\n" not in str(raised.value) and isinstance(raised.value, ValueError)
    assert np.array_equal(picture, original) and np.array_equal(arguments["previous_mask"], kept)
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (None, "no image is open"),
        (np.zeros((20, 20, 3), np.float32), "RGB uint8"),
        (np.zeros((20, 20), np.uint8), "RGB uint8"),
    ],
)
def test_a_missing_or_malformed_image_is_refused(image, message):
    with pytest.raises(InteractiveError, match=message):
        segment(image, [(1, 1, True)])


def test_two_images_never_share_cache_entries_even_under_one_key():
    cache = InteractiveCache(max_images=2)
    first, second = _noisy((50, 60), 0, 255, seed=1), _noisy((50, 60), 0, 255, seed=2)
    copy = cache.working_copy("same", first)
    assert cache.working_copy("same", first) is copy  # a hit
    other = cache.working_copy("same", second)
    assert other is not copy and np.array_equal(other.working, WorkingCopy(second).working)
    assert cache.working_copy("other", first) is not other
    cache.working_copy("third", second)
    assert len(cache) == 2 and "same" not in cache  # the oldest went first
    with pytest.raises(ValueError):
        other.working[0, 0] = 1  # entries are read-only: no call can change another's pixels


def test_superpixels_are_computed_once_per_image():
    cache = InteractiveCache()
    picture = _noisy((60, 80), 0, 255)
    segment(picture, [(10, 10, True)], method=SUPERPIXEL_SNAP, cache=cache, image_key="p")
    copy = cache.working_copy("p", picture)
    labels = copy.superpixels()
    segment(picture, [(30, 30, True)], method=SUPERPIXEL_SNAP, cache=cache, image_key="p")
    assert copy.superpixels() is labels and interactive.METHODS.keys() >= {CLICKS, MAGIC_WAND}
