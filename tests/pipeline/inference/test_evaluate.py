"""Evaluation metrics from one confusion matrix, checked against scikit-learn, and the leaderboard."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix
from sklearn.metrics import jaccard_score

from cocoseg.models.metrics import accumulate, empty_matrix
from cocoseg.pipeline.data.images import read_rgb
from cocoseg.pipeline.data.masks import semantic_mask
from cocoseg.pipeline.inference.evaluate import (
    EvaluationError,
    EvaluationTarget,
    evaluate,
    leaderboard,
    metrics_from_matrix,
)
from cocoseg.pipeline.inference.model_store import get_entry
from cocoseg.pipeline.inference.predictor import Predictor
from tests.conftest import LIMIT

NAMES = ("background", "a", "b", "c", "d")


def _random_pair(seed: int):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, (37, 53)).astype(np.uint8)  # class 4 never in the truth
    truth[rng.random(truth.shape) < 0.1] = 255
    prediction = np.where(rng.random(truth.shape) < 0.6, truth, rng.integers(0, 4, truth.shape)).astype(
        np.uint8
    )
    prediction[prediction == 255] = 0
    return truth, prediction


@pytest.mark.parametrize("seed", range(5))
def test_matrix_and_metrics_match_scikit_learn(seed):
    truth, prediction = _random_pair(seed)
    matrix = empty_matrix(5)
    accumulate(matrix, truth, prediction)
    valid = truth != 255
    reference = sklearn_confusion_matrix(truth[valid], prediction[valid], labels=range(5))
    assert np.array_equal(matrix[:, :5], reference) and matrix[:, 5].sum() == 0
    result = metrics_from_matrix(matrix, NAMES)
    iou = jaccard_score(truth[valid], prediction[valid], labels=range(4), average=None)
    np.testing.assert_allclose(result["per_class_iou"][:4], iou)
    assert (
        result["per_class_iou"][4] is None and result["per_class_dice"][4] is None
    )  # absent from both: n/a, not 0 or 1
    assert result["miou"] == pytest.approx(iou.mean())
    assert result["pixel_accuracy"] == pytest.approx((truth[valid] == prediction[valid]).mean())
    dice = 2 * iou / (1 + iou)
    np.testing.assert_allclose(result["per_class_dice"][:4], dice)
    frequency = np.bincount(truth[valid], minlength=4) / valid.sum()
    assert result["frequency_weighted_iou"] == pytest.approx(float((frequency * iou).sum()))


def test_hand_computed_matrix_with_uncovered_pixels():
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 1]], dtype=np.uint8)
    prediction = np.array([[0, 1, 1, 255], [2, 0, 2, 1]], dtype=np.uint8)
    matrix = empty_matrix(3)
    accumulate(matrix, truth, prediction)
    # rows: truth 0,1,2; columns: prediction 0,1,2, none
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 2, 0, 1], [1, 0, 1, 0]]
    result = metrics_from_matrix(matrix, ("background", "a", "b"))
    assert result["per_class_iou"] == pytest.approx(
        [1 / 3, 2 / 4, 1 / 2]
    )  # the uncovered truth pixel counts as a miss
    assert result["pixel_accuracy"] == pytest.approx(4 / 7) and result["pixels"] == 7


def test_a_class_predicted_but_absent_from_truth_scores_zero():
    result = metrics_from_matrix(np.array([[3, 1, 0], [0, 0, 0]]), ("background", "a"))
    assert result["per_class_iou"] == [0.75, 0.0] and result["miou"] == pytest.approx(0.375)


def test_size_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in size"):
        accumulate(empty_matrix(2), np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))


@pytest.mark.slow
def test_evaluation_of_a_model_equals_scikit_learn_on_the_same_pixels(prepared_workspace, exported_models):
    from cocoseg.pipeline.data.registry import get_dataset, load_split

    entry = get_entry(prepared_workspace, exported_models[0])
    result = evaluate(prepared_workspace, entry.name, LIMIT, limit=6)
    coco = load_split(get_dataset(prepared_workspace, "demo"), "val", LIMIT)
    predictor, label_map = Predictor(entry), entry.label_map()
    truths, predictions = [], []
    for image in coco.images[:6]:
        picture = read_rgb(coco.image_path(image))
        truth = semantic_mask(
            coco.annotations_by_image[image["id"]], picture.shape[0], picture.shape[1], label_map
        )
        prediction = predictor.predict(picture).mask
        assert prediction.shape == truth.shape == picture.shape[:2]
        truths.append(truth.ravel())
        predictions.append(prediction.ravel())
    truth, prediction = np.concatenate(truths), np.concatenate(predictions)
    valid = truth != 255
    reference = sklearn_confusion_matrix(truth[valid], prediction[valid], labels=range(21))
    assert np.array_equal(np.array(result["confusion_matrix"])[:, :21], reference)
    protocol = result["protocol"]
    assert (
        protocol["images"] == 6
        and protocol["label_map"] == "voc21"
        and protocol["model_sha256"] == entry.card["sha256"]
    )
    assert "original image size" in protocol["resolution"] and "255" in protocol["ignore"]
    assert (entry.evaluations_dir / "demo.val.fp32.first6.json").is_file()


@pytest.mark.slow
def test_leaderboard_lists_models_and_marks_replaced_files_stale(prepared_workspace, exported_models):
    rows = leaderboard(prepared_workspace, "demo", "val")
    full = [row for row in rows if row["image_limit"] is None]
    assert {(row["model"], row["variant"]) for row in full} >= {
        (name, variant) for name in exported_models for variant in ("fp32", "int8", "fp16")
    }
    mious = [row["miou"] for row in full]
    assert mious == sorted(mious, reverse=True) and not any(row["stale"] for row in full)
    assert leaderboard(prepared_workspace, "demo", "train") == []


@pytest.mark.slow
def test_leaderboard_marks_results_of_a_replaced_model_file_stale(
    prepared_workspace, exported_models, workspace
):
    import json
    import shutil

    copy = workspace.models_dir / exported_models[0]
    shutil.copytree(prepared_workspace.models_dir / exported_models[0], copy)
    assert not any(row["stale"] for row in leaderboard(workspace))
    card = json.loads((copy / "model.json").read_text())
    card["sha256"] = "0" * 64  # as after a re-export that has not been evaluated yet
    (copy / "model.json").write_text(json.dumps(card))
    rows = leaderboard(workspace)
    assert {row["variant"]: row["stale"] for row in rows} == {"fp32": True, "int8": False, "fp16": False}


def test_unknown_dataset_or_split_is_a_clear_error(workspace):
    with pytest.raises(ValueError, match="no model or ensemble called"):
        evaluate(workspace, "missing", LIMIT)


@pytest.mark.slow
def test_unknown_split_is_a_clear_error(prepared_workspace, exported_models):
    with pytest.raises(EvaluationError, match="test"):
        evaluate(prepared_workspace, exported_models[0], LIMIT, split="test")
    assert EvaluationTarget("demo").split == "val"


# --- reading saved results (hand-written cards and results, no model run) -------------------------


def _saved_model(workspace, name: str, results: list[tuple[str, str, str, int | None, list[str]]]) -> None:
    """A published model folder whose card is enough to list it, with saved evaluation files."""
    import json

    folder = workspace.models_dir / name
    (folder / "evaluations").mkdir(parents=True)
    card = {"kind": "exported", "file": "model.onnx", "sha256": "f" * 64, "source": {"dataset": "demo"}}
    (folder / "model.json").write_text(json.dumps(card))
    for dataset, split, variant, limit, classes in results:
        result = {
            "model": name,
            "kind": "exported",
            "variant": variant,
            "evaluated": "2024-01-01T00:00:00+00:00",
            "miou": 0.5,
            "mean_dice": 0.6,
            "pixel_accuracy": 0.9,
            "frequency_weighted_iou": 0.8,
            "classes": classes,
            "per_class_iou": [0.5] * len(classes),
            "protocol": {
                "dataset": dataset,
                "split": split,
                "images": limit or 80,
                "image_limit": limit,
                "label_map": "voc21",
                "model_sha256": "f" * 64,
            },
        }
        suffix = "" if limit is None else f".first{limit}"
        (folder / "evaluations" / f"{dataset}.{split}.{variant}{suffix}.json").write_text(json.dumps(result))


def test_split_results_ious_and_unevaluated_models(workspace):
    from cocoseg.pipeline.inference.evaluate import leaderboard_ious, result_key, split_results, unevaluated

    two, three = ["background", "a"], ["background", "a", "b"]
    _saved_model(workspace, "alpha", [("demo", "val", "fp32", None, two), ("demo", "val", "int8", 6, two)])
    _saved_model(workspace, "beta", [("demo", "val", "fp32", 6, three), ("demo", "train", "fp32", None, two)])
    _saved_model(workspace, "gamma", [])
    results = split_results(workspace, "demo", "val")
    assert set(results) == {"alpha|fp32|", "alpha|int8|6", "beta|fp32|6"}
    assert (
        result_key("beta", "fp32", 6) == "beta|fp32|6" and result_key("alpha", "fp32", None) == "alpha|fp32|"
    )
    rows = leaderboard(workspace, "demo", "val")
    ious = leaderboard_ious(rows, results)
    assert ious.classes == two and len(ious.labels) == 2  # beta's other label map is left out
    assert set(ious.labels) == {"alpha (fp32)", "alpha (int8)"} and ious.values == [[0.5, 0.5]] * 2
    assert [entry.name for entry in unevaluated(workspace, rows)] == ["beta", "gamma"]  # beta: 6 images only
    assert get_entry(workspace, "alpha").dataset == "demo"


def test_protocol_text_says_how_a_result_was_measured():
    from cocoseg.pipeline.inference.evaluate import protocol_text

    where = {
        "dataset": "demo",
        "split": "val",
        "images": 80,
        "resolution": "original image size",
        "label_map": "voc21",
        "classes": 21,
        "ignore": "truth pixels 255 excluded",
        "model_file": "model.onnx",
        "model_sha256": "0123456789abcdef",
        "input_size": 128,
        "resize": "pad",
    }
    assert protocol_text({"protocol": where}) == (
        "Protocol: demo/val, 80 images at original image size; label map voc21 (21 classes); "
        "truth pixels 255 excluded. Model file model.onnx sha256 0123456789ab…, input 128 px pad."
    )
    assert protocol_text(None) == ""


def test_reference_evaluations_are_fp32_on_whole_splits_of_known_models(workspace):
    from cocoseg.pipeline.inference.evaluate import IouTable, reference_evaluations

    two = ["background", "a"]
    _saved_model(workspace, "alpha", [("demo", "val", "fp32", None, two), ("demo", "val", "int8", None, two)])
    _saved_model(workspace, "beta", [("demo", "val", "fp32", 6, two), ("demo", "train", "fp32", None, two)])
    found = reference_evaluations(workspace, ["alpha", "beta", "missing"])
    assert [(entry.name, result["protocol"]["split"]) for entry, result in found] == [
        ("alpha", "val"),
        ("beta", "train"),
    ]
    table = IouTable()
    for entry, result in found:
        table.add(entry.name, result)
    table.add("other label map", {"classes": ["background"], "per_class_iou": [1.0]})
    assert table.labels == ["alpha", "beta"] and table.classes == two
