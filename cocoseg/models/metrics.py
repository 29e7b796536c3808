"""IoU metrics from one confusion matrix, with an ignore index.

Every number derives from the accumulated confusion matrix (rows: truth, columns:
prediction), so per-class IoU, mean IoU and pixel accuracy always agree. Classes that
appear neither in the truth nor in the predictions have no IoU (NaN) and are left out
of the mean.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

IGNORE_INDEX = 255


def confusion_matrix(labels, predictions, num_classes: int, ignore_index: int = IGNORE_INDEX):
    """(C, C) int counts of (truth, prediction) over pixels whose label is not ignored."""
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    predictions = ops.reshape(ops.cast(predictions, "int32"), (-1,))
    valid = ops.logical_and(ops.not_equal(labels, ignore_index), ops.less(labels, num_classes))
    index = ops.where(valid, labels * num_classes + predictions, ops.zeros_like(labels))
    counts = ops.bincount(index, weights=ops.cast(valid, "int32"), minlength=num_classes * num_classes)
    return ops.reshape(counts, (num_classes, num_classes))


def per_class_iou(matrix) -> np.ndarray:
    """IoU per class from a confusion matrix (NaN for classes absent from truth and predictions)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / union, np.nan)


def mean_iou(matrix) -> float:
    """Mean of the defined per-class IoUs."""
    values = per_class_iou(matrix)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


class MeanIoU(keras.metrics.Metric):
    """Streaming mean IoU over argmax predictions, ignoring ``ignore_index`` pixels."""

    def __init__(
        self, num_classes: int, ignore_index: int = IGNORE_INDEX, name: str = "mean_iou", **kwargs
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = self.add_variable(
            shape=(num_classes, num_classes), initializer="zeros", dtype="int64", name="confusion"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        predictions = ops.argmax(y_pred, axis=-1)
        self.matrix.assign_add(
            ops.cast(confusion_matrix(y_true, predictions, self.num_classes, self.ignore_index), "int64")
        )

    def result(self):
        matrix = ops.cast(self.matrix, "float32")
        true_positive = ops.diagonal(matrix)
        union = ops.sum(matrix, axis=0) + ops.sum(matrix, axis=1) - true_positive
        defined = ops.cast(union > 0, "float32")
        iou = true_positive / ops.maximum(union, 1.0)
        return ops.sum(iou * defined) / ops.maximum(ops.sum(defined), 1.0)

    def reset_state(self):
        self.matrix.assign(ops.zeros_like(self.matrix))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "ignore_index": self.ignore_index}
