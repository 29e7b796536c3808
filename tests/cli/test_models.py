"""``cocoseg export | predict | evaluate | leaderboard | ensemble | models`` as a user runs them."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from tests.cli.test_cli import run_cocoseg
from tests.conftest import DEMO_VAL_IMAGES
from tests.pipeline.inference.test_model_import import NCHW_CARD, conv_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(prepared_workspace, exported_models, tmp_path_factory):
    """A copy of the session workspace (runs, prepared set, exported models) the CLI may change."""
    target = tmp_path_factory.mktemp("cli-models") / "home"
    shutil.copytree(prepared_workspace.root, target, ignore=shutil.ignore_patterns("locks"))
    return target


def test_export_prints_parity_and_variant_advice(home, exported_models):
    finished = run_cocoseg("export", exported_models[0], "--evaluation-images", "8", home=home)
    assert finished.returncode == 0, finished.stderr
    assert (
        f"exported {exported_models[0]}" in finished.stdout
        and "parity: max probability difference" in finished.stdout
    )
    assert (
        "int8: mIoU" in finished.stdout and "fp16: mIoU" in finished.stdout and "for CPU" in finished.stdout
    )
    assert "Traceback" not in finished.stderr


def test_predict_writes_masks_overlays_and_coco_rle(home, exported_models, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for path in sorted(DEMO_VAL_IMAGES.glob("*.jpg"))[:3]:
        shutil.copy(path, images / path.name)
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    finished = run_cocoseg(
        "predict", exported_models[1], str(images), "--out", str(tmp_path / "out"), "--overlay", home=home
    )
    assert finished.returncode == 1  # one image could not be read: said, and the others are done
    assert (
        "3 images segmented on CPU" in finished.stdout
        and "skipped broken.jpg: corrupt or truncated" in finished.stdout
    )
    predictions = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert len(predictions["images"]) == 3
    for image in predictions["images"]:
        mask = cv2.imread(
            str(tmp_path / "out" / "masks" / image["file_name"].replace(".jpg", ".png")), cv2.IMREAD_UNCHANGED
        )
        assert mask.shape == (image["height"], image["width"]) and mask.dtype == np.uint8
        assert (tmp_path / "out" / "overlays" / image["file_name"].replace(".jpg", ".png")).is_file()
        rebuilt = np.zeros_like(mask)
        classes = {
            row["coco_ids"][0]: row["index"]
            for row in json.loads((tmp_path / "out" / "classes.json").read_text())["classes"]
            if row["coco_ids"]
        }
        for annotation in (item for item in predictions["annotations"] if item["image_id"] == image["id"]):
            segmentation = annotation["segmentation"]
            rebuilt[
                coco_mask.decode({"size": segmentation["size"], "counts": segmentation["counts"].encode()})
                > 0
            ] = classes[annotation["category_id"]]
        assert np.array_equal(rebuilt, mask)
    refused = run_cocoseg("predict", exported_models[1], str(images), "--out", str(images / "out"), home=home)
    assert refused.returncode == 3 and "must not be inside the input folder" in refused.stderr


def test_ensemble_evaluate_and_leaderboard(home, exported_models):
    created = run_cocoseg(
        "ensemble", "create", "pair", "--members", *exported_models, "--strategy", "vote", home=home
    )
    assert created.returncode == 0, created.stderr
    assert (
        "ensemble pair: vote of" in created.stdout
        and "matches the members run one by one on 100.0000% of pixels" in created.stdout
    )
    evaluated = run_cocoseg("evaluate", "pair", "--limit", "5", home=home)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "pair (fp32) on demo/val: 5 images at original resolution, label map voc21" in evaluated.stdout
    assert "mIoU" in evaluated.stdout and "person" in evaluated.stdout and "n/a" in evaluated.stdout
    board = run_cocoseg("leaderboard", "--split", "val", "--json", home=home)
    rows = json.loads(board.stdout)
    assert {"pair", *exported_models} <= {row["model"] for row in rows}
    text = run_cocoseg("leaderboard", home=home).stdout
    assert "ensemble" in text and "exported" in text


def test_models_import_list_and_delete(home, tmp_path):
    model = tmp_path / "byo.onnx"
    import onnx

    onnx.save(conv_model(), str(model))
    (tmp_path / "card.json").write_text(json.dumps(NCHW_CARD))
    imported = run_cocoseg(
        "models", "import", str(model), "--card", str(tmp_path / "card.json"), "--name", "external", home=home
    )
    assert imported.returncode == 0, imported.stderr
    listing = run_cocoseg("models", "list", home=home).stdout
    assert "external" in listing and "imported" in listing
    deleted = run_cocoseg("models", "delete", "external", home=home)
    assert deleted.returncode == 0 and "external" not in run_cocoseg("models", "list", home=home).stdout


@pytest.mark.parametrize(
    "arguments, message",
    [
        (("evaluate", "ghost"), "no model or ensemble called 'ghost'"),
        (("export", "ghost-run"), "no run called 'ghost-run'"),
        (("ensemble", "create", "x", "--members", "a"), "at least two members"),
        (("models", "import", "weights.pkl", "--card", "card.json"), "only .onnx files"),
    ],
)
def test_user_errors_exit_3_with_one_line(home, tmp_path, arguments, message):
    (tmp_path / "weights.pkl").write_bytes(b"\x80\x04")
    (tmp_path / "card.json").write_text(json.dumps(NCHW_CARD))
    arguments = tuple(
        str(tmp_path / item) if item in ("weights.pkl", "card.json") else item for item in arguments
    )
    finished = run_cocoseg(*arguments, home=home)
    assert finished.returncode == 3 and message in finished.stderr and "Traceback" not in finished.stderr
