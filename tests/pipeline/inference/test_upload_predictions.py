"""One upload through a real exported model, the downloads built from the kept mask, and what the
Segment page lists of a model's variants."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from cocoseg.pipeline.data.images import UploadedImage, read_rgb
from cocoseg.pipeline.inference.model_store import ModelEntry, ModelError
from cocoseg.pipeline.inference.upload_predictions import file_stem, predict_upload, result_download
from cocoseg.pipeline.inference.uploads import DISPLAY_SIDE, load_result, store_upload
from tests.conftest import DEMO_VAL_IMAGES


def _png(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("holiday photo.jpg", "holiday_photo"),
        ("archive.tar.png", "archive_tar"),
        ("<img src=x>.png", "_img_src_x_"),
        (".png", "upload"),
        ("x" * 80 + ".jpg", "x" * 60),
    ],
)
def test_download_names_keep_only_safe_characters(name, stem):
    assert file_stem(name) == stem


def test_variant_summaries_read_the_card_and_tolerate_missing_fields():
    card = {
        "kind": "imported",
        "variants": {
            "fp16": {"file": "model.fp16.onnx", "sha256": "b"},
            "int8": {
                "file": "model.int8.onnx",
                "sha256": "a",
                "device": "CPU",
                "miou_delta_points": -0.4,
                "recommended": True,
            },
        },
    }
    int8, fp16 = ModelEntry(Path("model"), card).variant_summaries()
    assert (int8.name, int8.device, int8.miou_delta_points, int8.recommended) == ("int8", "CPU", -0.4, True)
    assert (fp16.name, fp16.device, fp16.miou_delta_points, fp16.recommended) == ("fp16", "?", None, True)
    assert ModelEntry(Path("model"), {"kind": "imported"}).variant_summaries() == []


@pytest.fixture
def served_model(prepared_workspace, exported_models, workspace) -> str:
    name = exported_models[0]
    shutil.copytree(prepared_workspace.models_dir / name, workspace.models_dir / name)
    return name


@pytest.mark.slow
def test_an_upload_is_segmented_kept_and_downloaded(workspace, served_model):
    picture = read_rgb(sorted(DEMO_VAL_IMAGES.glob("*.jpg"))[0])
    wide = np.concatenate([picture, picture, picture], axis=1)  # wider than the display size
    key = store_upload(workspace, UploadedImage(wide, "wide photo.jpg", "JPEG"))
    shown = predict_upload(workspace, key, served_model, "int8")
    height, width = wide.shape[:2]
    assert shown.mask.shape == (height, width) and shown.variant == "int8" and shown.provider == "CPU"
    assert np.array_equal(load_result(workspace, key, served_model, "int8"), shown.mask)
    layer = _png(shown.layer_png)
    assert layer.shape[1] == DISPLAY_SIDE and layer.shape[2] == 4 and layer.shape[0] < height
    assert sum(row["share"] for row in shown.shares) == pytest.approx(1.0)
    assert shown.total_seconds >= shown.inference_seconds > 0

    mask = result_download(workspace, key, served_model, "int8", "mask", 0.5)
    assert mask.file_name == "wide_photo.mask.png" and np.array_equal(_png(mask.content), shown.mask)
    overlay = result_download(workspace, key, served_model, "int8", "overlay", 0.5)
    assert overlay.file_name == "wide_photo.overlay.png" and _png(overlay.content).shape == (height, width, 3)
    coco = result_download(workspace, key, served_model, "int8", "coco", 0.5)
    payload = json.loads(coco.content)
    assert coco.file_name == "wide_photo.coco.json" and payload["images"][0]["file_name"] == "wide photo.jpg"
    assert len(payload["annotations"]) == len([row for row in shown.shares if row["index"] > 0])
    assert result_download(workspace, key, served_model, "fp32", "mask", 0.5) is None  # never predicted
    with pytest.raises(ValueError, match="unknown download"):
        result_download(workspace, key, served_model, "int8", "zip", 0.5)


@pytest.mark.slow
def test_expired_uploads_and_unknown_models(workspace, served_model):
    assert predict_upload(workspace, "x" * 22, served_model) is None
    assert result_download(workspace, "x" * 22, served_model, "fp32", "mask", 0.5) is None
    key = store_upload(workspace, UploadedImage(np.zeros((8, 8, 3), np.uint8), "a.png", "PNG"))
    with pytest.raises(ModelError, match="no model or ensemble called"):
        predict_upload(workspace, key, "missing")
