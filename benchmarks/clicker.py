"""The robot annotator of the interactive-segmentation literature, and the IoU it is judged by.

The first click goes to the object's pixel farthest from its boundary; each next click goes to
the pixel farthest from the boundary of the errors, positive when it lies in a missed part of
the object (false negative), negative when it lies in a wrongly included part (false
positive). "Largest error region" is measured, as in the reference evaluation code (Xu et al.
2016; RITM, Sofiiuk et al. 2022), by that distance, i.e. the radius of the largest disc that
fits in the region, not by its pixel count: a thin sliver along the boundary is large in area
but cannot be clicked in its middle. The image border counts as a boundary (the masks are
padded with zeros), and ties go to the first pixel in row order, so the clicks are reproducible.
"""

from __future__ import annotations

import cv2
import numpy as np


def _farthest_from_boundary(region: np.ndarray) -> tuple[float, int, int]:
    """(distance, x, y) of the pixel of ``region`` farthest from its edge; distance 0 when empty."""
    padded = np.pad(region.astype(np.uint8), 1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    index = int(np.argmax(distance))
    y, x = divmod(index, region.shape[1])
    return float(distance[y, x]), x, y


def next_click(truth: np.ndarray, prediction: np.ndarray | None) -> tuple[int, int, bool] | None:
    """The robot's next click ``(x, y, positive)`` for the current ``prediction``; None when no error is left.

    Args:
        truth: the object's ground-truth mask, bool (H, W).
        prediction: the current mask, bool (H, W), or None before the first click.
    """
    truth = truth.astype(bool)
    prediction = np.zeros_like(truth) if prediction is None else prediction.astype(bool)
    missed_distance, missed_x, missed_y = _farthest_from_boundary(truth & ~prediction)
    extra_distance, extra_x, extra_y = _farthest_from_boundary(prediction & ~truth)
    if max(missed_distance, extra_distance) == 0:
        return None
    if missed_distance > extra_distance:
        return missed_x, missed_y, True
    return extra_x, extra_y, False


def iou(truth: np.ndarray, prediction: np.ndarray) -> float:
    """Intersection over union of two bool masks; 1.0 when both are empty."""
    truth, prediction = truth.astype(bool), prediction.astype(bool)
    union = int(np.count_nonzero(truth | prediction))
    return 1.0 if union == 0 else int(np.count_nonzero(truth & prediction)) / union


def clicks_to_reach(ious: list[float], threshold: float, max_clicks: int) -> int:
    """Number of clicks (1-based) after which IoU first reaches ``threshold``; ``max_clicks`` when never.

    ``ious[k]`` is the IoU after ``k + 1`` clicks, as in the literature's NoC@85 / NoC@90.
    """
    for index, value in enumerate(ious[:max_clicks]):
        if value >= threshold:
            return index + 1
    return max_clicks
