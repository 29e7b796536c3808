"""Uncertainty scores against hand-computed arrays."""

import math

import numpy as np
import pytest

from cocoseg.pipeline.inference.uncertainty import (
    class_weights,
    image_scores,
    pixel_bald,
    pixel_disagreement,
    pixel_entropy,
    pixel_margin,
    pixel_rarity,
    spread_over_image,
    uncertainty_picture,
)


def _constant(distribution, height=2, width=3):
    return np.broadcast_to(
        np.asarray(distribution, dtype=np.float32), (height, width, len(distribution))
    ).copy()


def _one_hot(labels, classes):
    return np.eye(classes, dtype=np.float32)[np.asarray(labels)]


def test_uniform_probabilities_give_the_maximum_entropy_and_margin():
    scores = image_scores(_constant([0.25] * 4))
    assert scores["entropy"] == pytest.approx(1.0)
    assert scores["margin"] == pytest.approx(1.0)


def test_one_hot_probabilities_give_zero():
    scores = image_scores(_one_hot([[0, 1], [2, 1]], 3))
    assert scores["entropy"] == pytest.approx(0.0, abs=1e-6)
    assert scores["margin"] == pytest.approx(0.0, abs=1e-6)


def test_entropy_and_margin_of_a_hand_computed_pixel():
    pixel = _constant([0.5, 0.3, 0.2], 1, 1)
    expected = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)) / math.log(3)
    assert pixel_entropy(pixel)[0, 0] == pytest.approx(expected, rel=1e-5)
    assert pixel_margin(pixel)[0, 0] == pytest.approx(1 - (0.5 - 0.3), rel=1e-5)


def test_two_members_that_disagree_everywhere_give_disagreement_and_bald_of_one():
    first, second = _one_hot([[0, 0], [1, 1]], 2), _one_hot([[1, 1], [0, 0]], 2)
    assert pixel_disagreement([first, second]).all()
    scores = image_scores((first + second) / 2, members=[first, second])
    assert scores["disagreement"] == pytest.approx(1.0)
    assert scores["bald"] == pytest.approx(1.0)


def test_members_that_agree_give_zero_disagreement_even_when_unsure():
    unsure = _constant([0.5, 0.5])
    scores = image_scores(unsure, members=[unsure, unsure.copy()])
    assert scores["disagreement"] == 0.0
    assert scores["bald"] == pytest.approx(0.0, abs=1e-6)
    assert scores["entropy"] == pytest.approx(1.0)


def test_bald_of_members_half_sure():
    sure, unsure = _constant([1.0, 0.0], 1, 1), _constant([0.5, 0.5], 1, 1)
    # mean (0.75, 0.25): H = 0.8113 bits; members' entropies 0 and 1 bit -> 0.8113 - 0.5
    assert pixel_bald([sure, unsure])[0, 0] == pytest.approx(0.8113 - 0.5, abs=1e-3)


def test_scores_only_count_pixels_inside_the_region():
    probabilities = np.concatenate([_constant([0.5, 0.5], 1, 2), _one_hot([[0, 0]], 2)], axis=0)
    region = np.array([[False, False], [True, True]])
    assert image_scores(probabilities, region=region)["entropy"] == pytest.approx(0.0, abs=1e-6)
    assert image_scores(probabilities)["entropy"] == pytest.approx(0.5)


def test_ensemble_scores_are_none_for_a_single_model_and_rarity_without_weights():
    scores = image_scores(_constant([0.6, 0.4]))
    assert scores["disagreement"] is None and scores["bald"] is None and scores["rarity"] is None


def test_median_frequency_weights_favour_rare_and_absent_classes():
    weights = class_weights([900, 90, 10, 0])
    # shares 0.9, 0.09, 0.01; median 0.09 -> 0.1, 1, 9; absent -> the top weight 10
    assert weights == pytest.approx([0.1, 1.0, 9.0, 10.0])
    assert class_weights([0, 0]) == pytest.approx([1.0, 1.0])


def test_rarity_counts_unsure_pixels_of_rare_classes_most():
    weights = np.array([0.1, 10.0], dtype=np.float32)
    common = _constant([0.6, 0.4], 1, 1)
    rare = _constant([0.4, 0.6], 1, 1)
    assert pixel_rarity(rare, weights)[0, 0] == pytest.approx(pixel_entropy(rare)[0, 0])
    assert pixel_rarity(common, weights)[0, 0] == pytest.approx(pixel_entropy(common)[0, 0] / 100)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="classes >= 2"):
        pixel_entropy(np.ones((2, 2, 1)))
    with pytest.raises(ValueError, match="class weights"):
        pixel_rarity(_constant([0.5, 0.5]), np.ones(3))
    with pytest.raises(ValueError, match="region"):
        image_scores(_constant([0.5, 0.5]), region=np.ones((5, 5), dtype=bool))


def test_uncertainty_picture_is_dark_where_sure_and_grey_outside():
    entropy = np.array([[0.0, 1.0, 0.5]], dtype=np.float32)
    picture = uncertainty_picture(entropy, region=np.array([[True, True, False]]))
    assert picture.shape == (1, 3, 3) and picture.dtype == np.uint8
    assert picture[0, 0].sum() < picture[0, 1].sum()
    assert tuple(picture[0, 2]) == (128, 128, 128)


def test_a_map_is_spread_over_its_images_own_range_inside_the_region():
    entropy = np.linspace(0.2, 0.4, 101, dtype=np.float32).reshape(1, 101)
    region = np.ones_like(entropy, dtype=bool)
    spread = spread_over_image(entropy, region)
    assert spread.min() == 0.0 and spread.max() == 1.0  # 2nd..98th percentile -> 0..1, clipped
    assert spread[0, 50] == pytest.approx(0.5, abs=1e-5)
    region[0, 90:] = False  # outside the region counts for nothing: the 98th percentile falls lower
    assert (spread_over_image(entropy, region)[0, 88:] == 1.0).all()
    flat = np.full((2, 3), 0.7, np.float32)
    assert np.array_equal(spread_over_image(flat, np.ones((2, 3), bool)), flat)  # nothing to spread
    assert np.array_equal(spread_over_image(entropy, np.zeros_like(region)), entropy)
