"""Common-size geometry: the three resize modes, nearest-neighbour masks, undoing a resize."""

from __future__ import annotations

import numpy as np
import pytest

from cocoseg.pipeline.data.geometry import placement, resize_image, resize_mask, undo_mask
from cocoseg.pipeline.data.labels import IGNORE_INDEX


def _blocky_mask(height: int, width: int, block: int = 8) -> np.ndarray:
    rows = np.arange(height)[:, None] // block
    cols = np.arange(width)[None, :] // block
    return ((rows * 7 + cols * 3) % 20 + 1).astype(np.uint8)


def test_placements():
    stretch = placement(640, 480, 128, "stretch")
    assert (stretch.scale_x, stretch.scale_y, stretch.offset_x, stretch.offset_y) == (0.2, 128 / 480, 0, 0)
    letterbox = placement(640, 480, 128, "letterbox")
    assert (letterbox.resized_width, letterbox.resized_height, letterbox.offset_x, letterbox.offset_y) == (
        128,
        96,
        0,
        16,
    )
    crop = placement(640, 480, 128, "shorter-crop")
    assert (crop.resized_width, crop.resized_height, crop.offset_x, crop.offset_y) == (171, 128, -21, 0)


def test_letterbox_pads_masks_with_ignore_and_images_with_black():
    mask = _blocky_mask(100, 200)
    image = np.full((100, 200, 3), 200, np.uint8)
    boxed_mask = resize_mask(mask, 64, "letterbox")
    boxed_image = resize_image(image, 64, "letterbox")
    assert (boxed_mask[:16] == IGNORE_INDEX).all() and (boxed_mask[48:] == IGNORE_INDEX).all()
    assert (boxed_image[:16] == 0).all() and (boxed_image[20:44] == 200).all()
    assert set(np.unique(boxed_mask[16:48])) <= set(np.unique(mask))  # nearest: no new values


@pytest.mark.parametrize("mode", ["stretch", "letterbox", "shorter-crop"])
def test_mask_values_are_never_interpolated(mode):
    mask = _blocky_mask(123, 77, block=5)
    resized = resize_mask(mask, 96, mode)
    assert resized.shape == (96, 96) and resized.dtype == np.uint8
    assert set(np.unique(resized)) <= set(np.unique(mask)) | {IGNORE_INDEX}


@pytest.mark.parametrize("mode", ["stretch", "letterbox", "shorter-crop"])
def test_undo_mask_restores_the_original_geometry(mode):
    mask = _blocky_mask(256, 512, block=32)
    back = undo_mask(resize_mask(mask, 128, mode), 512, 256, mode)
    assert back.shape == (256, 512)
    covered = back != IGNORE_INDEX
    agreement = (back[covered] == mask[covered]).mean()
    assert agreement > 0.98
    if mode == "shorter-crop":
        assert (back[:, :120] == IGNORE_INDEX).all() and covered[:, 200:300].all()
    else:
        assert covered.all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="resize mode"):
        placement(10, 10, 8, "squash")
    with pytest.raises(ValueError, match="positive"):
        placement(0, 10, 8, "stretch")
