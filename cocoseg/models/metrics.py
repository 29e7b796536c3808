"""Segmentation metrics from one confusion matrix, in NumPy only.

Training's validation and every evaluation accumulate one confusion matrix (rows: truth,
columns: prediction, plus a last "no prediction" column for pixels the model did not
cover, which count as misses of their true class) and derive every number from it, so
per-class IoU, mIoU and pixel accuracy always agree. No Keras here: the web process
scores masks with these functions and never imports TensorFlow.

The rule for a class absent from both the truth and the prediction: it has no IoU or
Dice (NaN in these arrays, None in stored JSON, shown as "n/a") and is left out of every
mean. When no class is defined at all (no labelled pixel), the means are None as well;
training, whose history stores a number per epoch, records 0.0 there.
"""

from __future__ import annotations

import math

import numpy as np

# The mask value that counts for nothing (crowd regions, overlaps, padding): losses skip it,
# metrics leave it out. The one definition; cocoseg.pipeline.data.labels exposes it to the pipeline.
IGNORE_INDEX = 255


def empty_matrix(num_classes: int) -> np.ndarray:
    """A (C, C+1) zero matrix: rows truth, columns prediction, the last one "no prediction"."""
    return np.zeros((num_classes, num_classes + 1), dtype=np.int64)


def accumulate(
    matrix: np.ndarray, truth: np.ndarray, prediction: np.ndarray, ignore_index: int = IGNORE_INDEX
) -> None:
    """Add the pixels of ``truth`` and ``prediction`` (same shape) to a matrix from ``empty_matrix``.

    Truth pixels equal to ``ignore_index`` (or outside the classes) are skipped; a
    prediction outside the classes (255: not covered) lands in the last column.
    """
    num_classes = matrix.shape[0]
    if truth.shape != prediction.shape:
        raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} differ in size")
    truth = truth.ravel().astype(np.int64)
    prediction = prediction.ravel().astype(np.int64)
    valid = (truth != ignore_index) & (truth < num_classes)
    columns = np.where(prediction < num_classes, prediction, num_classes)[valid]
    counts = np.bincount(
        truth[valid] * (num_classes + 1) + columns, minlength=num_classes * (num_classes + 1)
    )
    matrix += counts.reshape(num_classes, num_classes + 1)


def _counts(matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, truth pixels, predicted pixels) per class of a (C, C) or (C, C+1) matrix."""
    matrix = np.asarray(matrix, dtype=np.float64)
    num_classes = matrix.shape[0]
    predicted = matrix[:, :num_classes]
    return np.diag(predicted), matrix.sum(axis=1), predicted.sum(axis=0)


def per_class_iou(matrix) -> np.ndarray:
    """IoU per class, tp / (truth + predicted - tp); NaN for a class absent from both."""
    true_positive, truth, predicted = _counts(matrix)
    union = truth + predicted - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / union, np.nan)


def per_class_dice(matrix) -> np.ndarray:
    """Dice per class, 2 tp / (truth + predicted); NaN for a class absent from both."""
    true_positive, truth, predicted = _counts(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(truth + predicted > 0, 2 * true_positive / (truth + predicted), np.nan)


def _defined_mean(values: np.ndarray) -> float | None:
    defined = np.isfinite(values)
    return float(np.mean(values[defined])) if defined.any() else None


def mean_iou(matrix) -> float | None:
    """Mean of the defined per-class IoUs; None when no class is defined."""
    return _defined_mean(per_class_iou(matrix))


def mean_dice(matrix) -> float | None:
    """Mean of the defined per-class Dice scores; None when no class is defined."""
    return _defined_mean(per_class_dice(matrix))


def pixel_accuracy(matrix) -> float | None:
    """Share of the labelled pixels predicted right; None without labelled pixels."""
    true_positive, truth, _predicted = _counts(matrix)
    total = truth.sum()
    return float(true_positive.sum() / total) if total else None


def frequency_weighted_iou(matrix) -> float | None:
    """Per-class IoU weighted by each class's share of the labelled pixels; None without any."""
    iou = per_class_iou(matrix)
    _true_positive, truth, _predicted = _counts(matrix)
    total = truth.sum()
    if not total:
        return None
    defined = np.isfinite(iou)
    return float(np.sum(truth[defined] / total * iou[defined]))


def or_none(values) -> list[float | None]:
    """Per-class values as JSON can store them: NaN (undefined) becomes None."""
    return [None if math.isnan(value) else float(value) for value in values]
