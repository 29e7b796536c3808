"""The small copy of an image that click-to-mask tools work on, and the per-image cache that keeps it.

A ``WorkingCopy`` holds the picture scaled so its longer side is ``WORKING_SIDE``, a
smoothed copy for the magic wand and, made on first use, the colour gradient (watershed) and
SLIC superpixels: what every click on the same image would otherwise recompute. It converts
points and masks between the image and the copy. ``InteractiveCache`` keeps a few of them by
a key the caller gives (dataset, split, file), checks each hit against a fingerprint of the
pixels, so two different images never share an entry even under one key, and is safe to
share between threads: entries are read-only once made.
"""

from __future__ import annotations

import collections
import hashlib
import threading

import cv2
import numpy as np

# See cocoseg.pipeline.annotation.interactive: COCO's pictures (up to 640 px) are worked on as they are;
# larger ones are scaled down so a click's windows stay small. (At 400 px, grabcut_box needed 8.51 / 8.00
# clicks for 85 % IoU on 80 demo train / 50 val instances against 7.9 / 7.9 at 640.) Smaller ones are
# scaled up: the tools' sizes in pixels (the smoothing, the nudge, the windows) were measured at this
# scale. grabcut_box NoC@85 with the demo's pictures scaled to 320 px (80 train / 50 val instances, three
# draws): 8.30 / 8.49 worked on as they are, scaled up to 640 7.83 / 7.39 (bilinear, kept) or 7.51 / 7.52
# (pixel area: blocks, whose edges the tools followed on synthetic pictures scaled up 4x); val scaled
# up to 960: 8.49.
WORKING_SIDE = 640
# One SLIC superpixel per this many working pixels (~11 px across): small enough to follow object edges,
# large enough that a stroke snaps to something.
SUPERPIXEL_AREA = 120
SUPERPIXEL_COMPACTNESS = 10.0
# Gaussian smoothing before SLIC: without it, pixel noise fragments every superpixel and SLIC's
# connectivity pass merges the fragments into one.
SUPERPIXEL_SMOOTHING = 1.0
# Bilinear: Lanczos gained grabcut_box 0.06-0.18 clicks at 320 px but cost clicks 0.57 (BENCHMARKS).
UPSCALING = cv2.INTER_LINEAR


def fingerprint(image: np.ndarray) -> tuple:
    """The image's shape and a digest of its pixels."""
    return image.shape, hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).digest()


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class WorkingCopy:
    """One image prepared for click-to-mask tools (see the module docstring)."""

    def __init__(self, image: np.ndarray, side: int = WORKING_SIDE, digest: tuple | None = None) -> None:
        height, width = image.shape[:2]
        scale = side / max(height, width)
        self.image_shape = height, width
        self.shape = max(2, round(height * scale)), max(2, round(width * scale))
        self.fingerprint = digest or fingerprint(image)
        if self.shape == self.image_shape:
            working = image.copy()
        else:
            smaller = self.shape[1] < width
            interpolation = cv2.INTER_AREA if smaller else UPSCALING
            working = cv2.resize(image, self.shape[::-1], interpolation=interpolation)
        self.working = _read_only(working)
        # The median keeps edges and removes the JPEG and sensor noise a colour tolerance trips on.
        self.smoothed = _read_only(cv2.medianBlur(working, 5))
        self._superpixels: np.ndarray | None = None
        self._gradient: np.ndarray | None = None
        self._lock = threading.Lock()

    def superpixels(self) -> np.ndarray:
        """SLIC labels (h, w) int32 of the working copy, computed on first use."""
        with self._lock:
            if self._superpixels is None:
                from skimage.segmentation import slic

                area = SUPERPIXEL_AREA * self.enlargement**2  # a scaled-up copy has no finer detail
                count = max(16, int(self.shape[0] * self.shape[1] // area))
                labels = slic(
                    self.working,
                    n_segments=count,
                    compactness=SUPERPIXEL_COMPACTNESS,
                    sigma=SUPERPIXEL_SMOOTHING,
                    start_label=0,
                    channel_axis=-1,
                )
                self._superpixels = _read_only(labels.astype(np.int32))
            return self._superpixels

    def gradient(self) -> np.ndarray:
        """Colour gradient magnitude (h, w) float32 of the smoothed copy (Sobel in Lab), on first use."""
        with self._lock:
            if self._gradient is None:
                lab = cv2.cvtColor(self.smoothed, cv2.COLOR_RGB2LAB).astype(np.float32)
                across = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3)
                down = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3)
                self._gradient = _read_only(np.sqrt((across**2 + down**2).sum(axis=2)))
            return self._gradient

    @property
    def enlargement(self) -> float:
        """Working pixels per image pixel along a side when the copy is scaled up, else 1.

        What is measured in the picture's own detail (a superpixel's size) is that much larger on the copy.
        """
        return max(1.0, self.shape[1] / self.image_shape[1])

    @property
    def has_superpixels(self) -> bool:
        return self._superpixels is not None

    def to_working_points(self, points) -> list[tuple[int, int]]:
        """Image (x, y) -> working pixels (column, row), inside the copy."""
        height, width = self.shape
        x_scale, y_scale = width / self.image_shape[1], height / self.image_shape[0]
        return [(min(int(x * x_scale), width - 1), min(int(y * y_scale), height - 1)) for x, y in points]

    def to_working_length(self, length: float) -> int:
        """A length in image pixels -> working pixels (at least 1)."""
        return max(1, round(length * self.shape[1] / self.image_shape[1]))

    def to_working(self, mask: np.ndarray) -> np.ndarray:
        """A bool mask at image size -> the working size: a working pixel is in when half of it is."""
        return _resized_mask(mask, self.shape)

    def to_image(self, mask: np.ndarray) -> np.ndarray:
        """A bool mask at working size -> the image's size: an image pixel is in when half of it is."""
        return _resized_mask(mask, self.image_shape)


def _resized_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool mask at ``shape``: shrunk, a pixel is in when half its area is; grown, nearest neighbour."""
    if mask.shape == shape:
        return mask.copy()
    if shape[1] < mask.shape[1]:
        shrunk = cv2.resize(mask.astype(np.float32), shape[::-1], interpolation=cv2.INTER_AREA)
        return shrunk >= 0.5
    return cv2.resize(mask.astype(np.uint8), shape[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)


class InteractiveCache:
    """Working copies of the last ``max_images`` images, by the caller's key, checked by fingerprint.

    GrabCut's colour models are not kept: they describe one object, and two tabs drawing two
    objects on one image would mix them.
    """

    def __init__(self, max_images: int = 8) -> None:
        self.max_images = max_images
        self._entries: collections.OrderedDict[str, WorkingCopy] = collections.OrderedDict()
        self._lock = threading.Lock()

    def working_copy(self, key: str, image: np.ndarray) -> WorkingCopy:
        """The working copy of ``image`` under ``key``: the kept one if its pixels match, else a new one."""
        digest = fingerprint(image)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.fingerprint == digest:
                self._entries.move_to_end(key)
                return entry
        entry = WorkingCopy(image, digest=digest)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_images:
                self._entries.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
