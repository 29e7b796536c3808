"""Segmentation losses as pure functions of (labels, logits).

``labels`` are integer class indices (B, H, W) where ``ignore_index`` marks pixels that
count for nothing; ``logits`` are (B, H, W, C). Every loss averages over the valid
pixels only, so padding and crowd regions never pull the model either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from cocoseg.models.metrics import IGNORE_INDEX


def _valid(labels, num_classes: int, ignore_index: int):
    labels = ops.cast(labels, "int32")
    valid = ops.cast(ops.not_equal(labels, ignore_index), "float32")
    safe_labels = ops.where(ops.equal(labels, ignore_index), ops.zeros_like(labels), labels)
    return safe_labels, valid, ops.one_hot(safe_labels, num_classes)


def cross_entropy(
    labels, logits, ignore_index: int = IGNORE_INDEX, class_weights: Sequence[float] | None = None
):
    """Softmax cross-entropy averaged over valid pixels; with ``class_weights``, a weighted
    mean (sum of w[y] * CE over sum of w[y]), as in torch's ``weight=`` semantics."""
    num_classes = logits.shape[-1]
    _safe, valid, one_hot = _valid(labels, num_classes, ignore_index)
    per_pixel = -ops.sum(one_hot * ops.log_softmax(ops.cast(logits, "float32"), axis=-1), axis=-1)
    weights = valid
    if class_weights is not None:
        weights = weights * ops.sum(one_hot * ops.convert_to_tensor(class_weights, "float32"), axis=-1)
    return ops.sum(per_pixel * weights) / ops.maximum(ops.sum(weights), 1e-12)


def soft_dice(labels, logits, ignore_index: int = IGNORE_INDEX, smooth: float = 1.0):
    """1 - mean over classes of soft Dice (2|P.G| + s) / (|P| + |G| + s) on valid pixels."""
    num_classes = logits.shape[-1]
    _safe, valid, one_hot = _valid(labels, num_classes, ignore_index)
    probabilities = ops.softmax(ops.cast(logits, "float32"), axis=-1) * valid[..., None]
    truth = one_hot * valid[..., None]
    axes = tuple(range(len(one_hot.shape) - 1))
    intersection = ops.sum(probabilities * truth, axis=axes)
    total = ops.sum(probabilities, axis=axes) + ops.sum(truth, axis=axes)
    return 1.0 - ops.mean((2.0 * intersection + smooth) / (total + smooth))


def focal(labels, logits, ignore_index: int = IGNORE_INDEX, gamma: float = 2.0):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by (1 - p_true)^gamma."""
    num_classes = logits.shape[-1]
    _safe, valid, one_hot = _valid(labels, num_classes, ignore_index)
    log_probabilities = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    log_true = ops.sum(one_hot * log_probabilities, axis=-1)
    per_pixel = -((1.0 - ops.exp(log_true)) ** gamma) * log_true
    return ops.sum(per_pixel * valid) / ops.maximum(ops.sum(valid), 1e-12)


def cross_entropy_dice(labels, logits, ignore_index: int = IGNORE_INDEX, dice_weight: float = 1.0):
    """Cross-entropy plus ``dice_weight`` times soft Dice."""
    return cross_entropy(labels, logits, ignore_index) + dice_weight * soft_dice(labels, logits, ignore_index)


# by the names training configs use (cocoseg.pipeline.training.config.LOSS_NAMES lists the same keys)
LOSS_FUNCTIONS = {
    "cross_entropy": cross_entropy,
    "dice": soft_dice,
    "focal": focal,
    "cross_entropy_dice": cross_entropy_dice,
}
