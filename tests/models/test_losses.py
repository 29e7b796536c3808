"""Losses against tiny hand-computed arrays (the metrics: test_metrics.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cocoseg.pipeline.core.tf_runtime import tensorflow

tensorflow()  # quiet import before keras pulls TensorFlow in

from cocoseg.models.losses import cross_entropy, cross_entropy_dice, focal, soft_dice  # noqa: E402

# one row of three pixels, two classes; the last pixel is ignored
LABELS = np.array([[[0, 1, 255]]])
LOGITS = np.array([[[[2.0, 0.0], [0.0, 1.0], [9.0, -9.0]]]], dtype=np.float32)


def _log_softmax(row):
    row = np.asarray(row, dtype=np.float64)
    return row - np.log(np.exp(row).sum())


def test_cross_entropy_ignores_255():
    expected = -(_log_softmax([2, 0])[0] + _log_softmax([0, 1])[1]) / 2
    assert float(cross_entropy(LABELS, LOGITS)) == pytest.approx(expected, rel=1e-6)


def test_weighted_cross_entropy_is_a_weighted_mean():
    weights = [1.0, 3.0]
    expected = -(1 * _log_softmax([2, 0])[0] + 3 * _log_softmax([0, 1])[1]) / 4
    assert float(cross_entropy(LABELS, LOGITS, class_weights=weights)) == pytest.approx(expected, rel=1e-6)


def test_soft_dice_by_hand():
    p0 = np.exp(_log_softmax([2, 0]))
    p1 = np.exp(_log_softmax([0, 1]))
    # class 0: truth [1, 0], probabilities [p0[0], p1[0]]; class 1: truth [0, 1]
    dice0 = (2 * p0[0] + 1) / (p0[0] + p1[0] + 1 + 1)
    dice1 = (2 * p1[1] + 1) / (p0[1] + p1[1] + 1 + 1)
    assert float(soft_dice(LABELS, LOGITS)) == pytest.approx(1 - (dice0 + dice1) / 2, rel=1e-6)
    perfect = np.array([[[[20.0, -20.0], [-20.0, 20.0], [0.0, 0.0]]]], dtype=np.float32)
    assert float(soft_dice(LABELS, perfect)) == pytest.approx(0.0, abs=1e-6)


def test_focal_reduces_to_cross_entropy_at_gamma_zero_and_down_weights_easy_pixels():
    assert float(focal(LABELS, LOGITS, gamma=0.0)) == pytest.approx(
        float(cross_entropy(LABELS, LOGITS)), rel=1e-6
    )
    log_true = [_log_softmax([2, 0])[0], _log_softmax([0, 1])[1]]
    expected = -sum((1 - math.exp(value)) ** 2 * value for value in log_true) / 2
    assert float(focal(LABELS, LOGITS)) == pytest.approx(expected, rel=1e-6)
    assert float(cross_entropy_dice(LABELS, LOGITS)) == pytest.approx(
        float(cross_entropy(LABELS, LOGITS)) + float(soft_dice(LABELS, LOGITS)), rel=1e-6
    )


def test_all_ignored_gives_zero_not_nan():
    assert float(cross_entropy(np.full((1, 1, 3), 255), LOGITS)) == 0.0


def test_loss_names_match_the_training_config():
    from cocoseg.models.losses import LOSS_FUNCTIONS
    from cocoseg.pipeline.training.config import LOSS_NAMES

    assert tuple(LOSS_FUNCTIONS) == LOSS_NAMES
