"""Compare's pipeline on the real demo data: the image a comparison runs on, per-image mIoU, the
disagreement picture, and members against their ensemble with real exported models."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cocoseg.pipeline.data.images import UploadedImage
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.data.registry import cached_split
from cocoseg.pipeline.inference.comparison import (
    compare,
    dataset_image,
    disagreement_picture,
    image_miou,
    split_images,
    upload_image,
)
from cocoseg.pipeline.inference.uploads import store_upload
from tests.conftest import LIMIT


def test_an_upload_is_compared_without_truth_until_it_expires(workspace):
    picture = np.full((6, 9, 3), 7, np.uint8)
    key = store_upload(workspace, UploadedImage(picture, "mine.png", "PNG"))
    image, truth, name = upload_image(workspace, key)
    assert np.array_equal(image, picture) and truth is None and name == "mine.png"
    with pytest.raises(ValueError, match="upload an image first"):
        upload_image(workspace, "x" * 22)


def test_dataset_images_come_with_their_truth(workspace):
    images = split_images(workspace, "demo", "val", LIMIT)
    assert len(images) == 80 and all(name.endswith(".jpg") for _image_id, name in images)
    label_map = build_label_map("voc21", cached_split(workspace, "demo", "val", LIMIT).categories)
    image_id, file_name = images[0]
    picture, truth, name = dataset_image(workspace, "demo", "val", image_id, LIMIT, label_map)
    assert name == file_name and truth.shape == picture.shape[:2] and truth.max() < 256
    with pytest.raises(ValueError, match="no image with id -1"):
        dataset_image(workspace, "demo", "val", -1, LIMIT, label_map)


def test_image_miou_and_the_disagreement_picture():
    truth = np.array([[0, 0, 1, 1]], np.uint8)
    assert image_miou(truth, truth, 3) == 1.0
    assert image_miou(truth, np.array([[0, 0, 0, 1]], np.uint8), 3) == pytest.approx((2 / 3 + 1 / 2) / 2)
    image = np.full((1, 4, 3), 200, np.uint8)
    picture = disagreement_picture(image, np.array([[False, True, False, False]]))
    assert picture[0, 1].tolist() == [230, 40, 40] and picture[0, 0].tolist() == [164, 164, 164]


@pytest.mark.slow
def test_members_and_their_ensemble_on_a_dataset_image(prepared_workspace, exported_models, workspace):
    for name in exported_models:
        shutil.copytree(prepared_workspace.models_dir / name, workspace.models_dir / name)
    label_map = build_label_map("voc21", cached_split(workspace, "demo", "val", LIMIT).categories)
    image_id = split_images(workspace, "demo", "val", LIMIT)[0][0]
    picture, truth, _name = dataset_image(workspace, "demo", "val", image_id, LIMIT, label_map)
    result = compare(workspace, exported_models, "mean", picture, truth)
    assert list(result.masks) == [*exported_models, "ensemble"]
    assert all(mask.shape == picture.shape[:2] for mask in result.masks.values())
    assert all(0 <= iou <= 1 for iou in result.ious.values()) and result.weights == [0.5, 0.5]
    stacked = np.stack([result.masks[name] for name in exported_models])
    assert np.array_equal(result.disagreement, (stacked != stacked[0]).any(axis=0))
    without_truth = compare(workspace, exported_models, "vote", picture)
    assert set(without_truth.ious.values()) == {None} and without_truth.truth is None
