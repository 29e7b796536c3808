"""IoU metrics from one confusion matrix against tiny hand-computed arrays (no TensorFlow)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from cocoseg.models.metrics import (
    IGNORE_INDEX,
    accumulate,
    empty_matrix,
    frequency_weighted_iou,
    mean_dice,
    mean_iou,
    or_none,
    per_class_dice,
    per_class_iou,
    pixel_accuracy,
)


def test_confusion_matrix_and_iou_by_hand():
    labels = np.array([0, 0, 1, 1, 2, 255])
    predictions = np.array([0, 1, 1, 1, 0, 2])
    matrix = empty_matrix(3)
    accumulate(matrix, labels, predictions)
    # the 255 pixel is left out; nothing was uncovered, so the "no prediction" column stays empty
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0]]
    # IoU = tp / (row sum + column sum - tp): class 0 1/(2+2-1), class 1 2/(2+3-2), class 2 0/(1+0-0)
    np.testing.assert_allclose(per_class_iou(matrix), [1 / 3, 2 / 3, 0.0])
    assert mean_iou(matrix) == pytest.approx(1 / 3)
    assert pixel_accuracy(matrix) == pytest.approx(3 / 5)
    # a square (C, C) matrix, without the "no prediction" column, gives the same numbers
    np.testing.assert_allclose(per_class_iou(matrix[:, :3]), [1 / 3, 2 / 3, 0.0])


def test_dice_and_frequency_weighting_by_hand():
    matrix = np.array([[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_allclose(per_class_dice(matrix), [2 / 4, 4 / 5, 0.0])
    assert mean_dice(matrix) == pytest.approx((1 / 2 + 4 / 5) / 3)
    assert frequency_weighted_iou(matrix) == pytest.approx(2 / 5 * 1 / 3 + 2 / 5 * 2 / 3)


def test_a_class_absent_from_truth_and_prediction_has_no_iou_and_stays_out_of_the_means():
    matrix = empty_matrix(3)
    accumulate(matrix, np.array([0, 0, 1]), np.array([0, 1, 1]))
    iou = per_class_iou(matrix)
    assert iou[:2].tolist() == [0.5, 0.5] and math.isnan(iou[2]) and math.isnan(per_class_dice(matrix)[2])
    assert mean_iou(matrix) == pytest.approx(0.5)  # not (0.5 + 0.5 + 0) / 3, nor 1 for "nothing to miss"
    assert or_none(iou) == [0.5, 0.5, None]


def test_no_labelled_pixel_leaves_every_mean_undefined():
    matrix = empty_matrix(2)
    accumulate(matrix, np.full(4, IGNORE_INDEX), np.array([0, 1, 1, 0]))
    assert not matrix.any() and np.isnan(per_class_iou(matrix)).all()
    assert (mean_iou(matrix), mean_dice(matrix), pixel_accuracy(matrix), frequency_weighted_iou(matrix)) == (
        None,
        None,
        None,
        None,
    )


def test_the_pipeline_and_the_losses_share_one_ignore_index():
    from cocoseg.pipeline.data import labels

    assert labels.IGNORE_INDEX is IGNORE_INDEX == 255


def test_the_metrics_import_no_keras():
    """The web process scores masks (Compare, evaluations) with these functions."""
    code = (
        "import sys, cocoseg.models.metrics, cocoseg.pipeline.data.labels; "
        "sys.exit(int('keras' in sys.modules or 'tensorflow' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
