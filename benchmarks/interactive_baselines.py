"""The issue's naive click-to-mask baselines, as a first implementation would write them (issue 17).

``benchmarks/interactive.py`` measures cocoseg's tools against these in the same run:

* GrabCut from the ground truth's box on the whole image (5 rounds), each click a dot of radius 3
  set to sure object / sure background in GrabCut's own mask, then 5 more rounds;
* scikit-image's random walker, the image border as background, each click a labelled dot of
  radius 3 (the direct solver: on a 320 px picture it is faster than the default conjugate
  gradient and gives the same labels).
"""

from __future__ import annotations

import cv2
import numpy as np

DOT_RADIUS = 3


def _dot(mask: np.ndarray, click: tuple[int, int, bool], values: tuple[int, int]) -> None:
    cv2.circle(mask, (click[0], click[1]), DOT_RADIUS, values[0] if click[2] else values[1], -1)


class BaselineGrabCut:
    """Naive GrabCut from a box: the whole image, GrabCut's own 4-state mask kept between clicks."""

    def __init__(self, image: np.ndarray, box: tuple[int, int, int, int]) -> None:
        self.image = np.ascontiguousarray(image)
        self.state = np.zeros(image.shape[:2], np.uint8)
        self.models = np.zeros((1, 65)), np.zeros((1, 65))
        x0, y0, x1, y1 = box
        self.state[y0:y1, x0:x1] = cv2.GC_PR_FGD
        try:
            cv2.grabCut(
                self.image, self.state, (x0, y0, x1 - x0, y1 - y0), *self.models, 5, cv2.GC_INIT_WITH_RECT
            )
        except cv2.error:  # a box over the whole picture (no background to learn) or of a few pixels
            pass

    def mask(self) -> np.ndarray:
        return np.isin(self.state, (cv2.GC_FGD, cv2.GC_PR_FGD))

    def click(self, click: tuple[int, int, bool]) -> np.ndarray:
        _dot(self.state, click, (cv2.GC_FGD, cv2.GC_BGD))
        try:
            cv2.grabCut(self.image, self.state, None, *self.models, 5, cv2.GC_INIT_WITH_MASK)
        except cv2.error:  # one side has too few pixels to learn its colours
            pass
        return self.mask()


def baseline_random_walker(image: np.ndarray, clicks: list) -> np.ndarray:
    """scikit-image's random walker: the border is background, each click a labelled dot."""
    from skimage.segmentation import random_walker

    labels = np.zeros(image.shape[:2], np.int32)
    labels[[0, -1], :] = labels[:, [0, -1]] = 2
    for click in clicks:
        _dot(labels, click, (1, 2))
    if not (labels == 1).any():
        return np.zeros(labels.shape, bool)
    return random_walker(image, labels, beta=130, mode="bf", channel_axis=-1) == 1
