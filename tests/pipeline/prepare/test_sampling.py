"""Repeat-factor sampling against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cocoseg.pipeline.prepare.sampling import (
    SamplingConfig,
    class_repeat_factors,
    image_repeat_factors,
    sampling_summary,
)


def test_class_factors_by_hand():
    factors = class_repeat_factors([100, 50, 5, 0], 100, SamplingConfig("repeat-factor", 0.1))
    assert factors.tolist() == pytest.approx([1.0, 1.0, math.sqrt(0.1 / 0.05), 1.0])
    assert class_repeat_factors([100, 50, 5, 0], 100, SamplingConfig("none")).tolist() == [1.0] * 4


def test_image_factor_is_the_max_of_its_classes():
    factors = np.array([1.0, 1.0, 2.0, 3.0])
    assert image_repeat_factors([(1,), (1, 2), (2, 3), ()], factors).tolist() == [1.0, 2.0, 3.0, 1.0]


def test_summary_before_and_after():
    classes = [(1,), (1,), (1,), (1, 2)]
    pixels = np.array([[0, 10, 0], [0, 10, 0], [0, 10, 0], [0, 10, 5]])
    summary = sampling_summary(classes, pixels, 3, SamplingConfig("repeat-factor", 0.5))
    # f(2) = 0.25 -> r = sqrt(2); the last image carries class 2
    assert summary["before"]["images"] == [0.0, 4.0, 1.0]
    assert summary["after"]["images"] == pytest.approx([0.0, 3 + math.sqrt(2), math.sqrt(2)])
    assert summary["after"]["pixels"][2] == pytest.approx(5 * math.sqrt(2))
    assert summary["after"]["epoch_images"] == pytest.approx(3 + math.sqrt(2))
    rare_share_before = summary["before"]["images"][2] / sum(summary["before"]["images"])
    rare_share_after = summary["after"]["images"][2] / sum(summary["after"]["images"])
    assert rare_share_after > rare_share_before


@pytest.mark.parametrize("method, threshold", [("lvis", 0.1), ("repeat-factor", 0.0), ("repeat-factor", 2.0)])
def test_config_is_validated(method, threshold):
    with pytest.raises(ValueError):
        SamplingConfig(method, threshold)
