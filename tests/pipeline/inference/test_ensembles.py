"""Ensembles: strategies on hand-made probabilities, fused graph == members one by one, refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest

from cocoseg.pipeline.inference.ensembles import (
    EnsembleError,
    combine,
    create_ensemble,
    fused_agreement,
    normalised_weights,
)
from cocoseg.pipeline.inference.model_store import get_entry
from cocoseg.pipeline.inference.predictor import Predictor
from tests.conftest import LIMIT


def _probabilities(*rows):
    return np.array(rows, dtype=np.float32)[None]  # (1, pixels, classes)


def test_mean_averages_probabilities():
    first = _probabilities([0.6, 0.4, 0.0], [0.1, 0.2, 0.7])
    second = _probabilities([0.0, 0.5, 0.5], [0.1, 0.8, 0.1])
    mask, scores = combine([first, second], "mean")
    np.testing.assert_allclose(scores[0], [[0.3, 0.45, 0.25], [0.1, 0.5, 0.4]], rtol=1e-6)
    assert mask[0].tolist() == [1, 1] and mask.dtype == np.uint8


def test_weighted_follows_the_weights():
    first = _probabilities([0.9, 0.1])
    second = _probabilities([0.2, 0.8])
    assert combine([first, second], "weighted", [0.9, 0.1])[0][0].tolist() == [0]  # 0.83 vs 0.17
    assert combine([first, second], "weighted", [0.1, 0.9])[0][0].tolist() == [1]  # 0.27 vs 0.73
    np.testing.assert_allclose(
        combine([first, second], "weighted", [3, 1])[1][0, 0], [0.725, 0.275], rtol=1e-6
    )
    assert normalised_weights([2, 2, 4]) == [0.25, 0.25, 0.5]
    with pytest.raises(EnsembleError, match="non-negative"):
        normalised_weights([1, -1])


def test_vote_takes_the_majority_and_breaks_ties_to_the_lowest_class():
    members = [
        _probabilities([0.1, 0.9, 0.0], [0.0, 0.1, 0.9]),
        _probabilities([0.2, 0.8, 0.0], [0.0, 0.9, 0.1]),
        _probabilities([0.9, 0.1, 0.0], [0.9, 0.1, 0.0]),
    ]
    mask, scores = combine(members, "vote")
    assert mask[0].tolist() == [1, 0]  # 2 of 3 say class 1; then one vote each: lowest index wins
    np.testing.assert_allclose(scores[0], [[1 / 3, 2 / 3, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    with pytest.raises(EnsembleError, match="strategy must be"):
        combine(members, "median")


@pytest.fixture(scope="module")
def ensembles(prepared_workspace, exported_models):
    names = {}
    for strategy in ("mean", "weighted", "vote"):
        names[strategy] = create_ensemble(
            prepared_workspace, f"test-{strategy}", exported_models, strategy, LIMIT
        ).name
    return names


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["mean", "weighted", "vote"])
def test_fused_graph_matches_running_members_one_by_one(
    prepared_workspace, exported_models, ensembles, strategy
):
    entry = get_entry(prepared_workspace, ensembles[strategy])
    card = entry.card
    assert card["kind"] == "ensemble" and card["members"] == exported_models and card["strategy"] == strategy
    assert card["fused_check"]["identical"] and card["fused_check"]["images"] == 8
    spec = json.loads((entry.folder / "ensemble.json").read_text())
    assert spec["members"] == exported_models and spec["weights"] == card["weights"]
    if strategy == "weighted":
        mious = [
            json.loads(
                (get_entry(prepared_workspace, name).evaluations_dir / "demo.val.fp32.json").read_text()
            )["miou"]
            for name in exported_models
        ]
        assert card["weights"] == pytest.approx([value / sum(mious) for value in mious])
    else:
        assert card["weights"] == [0.5, 0.5]
    graph = onnx.load(str(entry.folder / "model.onnx"))
    assert [item.name for item in graph.graph.input] == ["image"] and [
        item.name for item in graph.graph.output
    ] == ["mask", "probabilities"]
    # independently of creation's own check: other (random) images, batch of 5
    images = list(np.random.default_rng(7).integers(0, 256, (5, 90, 120, 3), dtype=np.uint8))
    check = fused_agreement(
        Predictor(entry),
        [Predictor(get_entry(prepared_workspace, name)) for name in exported_models],
        strategy,
        card["weights"],
        images,
    )
    assert check["identical"]


@pytest.mark.slow
def test_ensemble_is_evaluated_and_listed_beside_its_members(prepared_workspace, exported_models, ensembles):
    from cocoseg.pipeline.inference.evaluate import evaluate, leaderboard

    result = evaluate(prepared_workspace, ensembles["mean"], LIMIT)
    assert result["kind"] == "ensemble" and result["protocol"]["images"] == 80
    rows = [
        row
        for row in leaderboard(prepared_workspace, "demo", "val")
        if row["variant"] == "fp32" and row["image_limit"] is None
    ]
    names = {row["model"] for row in rows}
    assert {ensembles["mean"], *exported_models} <= names
    assert next(row for row in rows if row["model"] == ensembles["mean"])["members"] == exported_models


@pytest.mark.slow
def test_incompatible_members_are_refused(prepared_workspace, exported_models, workspace):
    for name in exported_models:
        shutil.copytree(prepared_workspace.models_dir / name, workspace.models_dir / name)
    other = workspace.models_dir / "other-labels"
    shutil.copytree(prepared_workspace.models_dir / exported_models[0], other)
    card = json.loads((other / "model.json").read_text())
    card["label_map"]["classes"][15]["name"] = "human"
    (other / "model.json").write_text(json.dumps(card))
    with pytest.raises(EnsembleError, match="predicts other classes.*share one label map"):
        create_ensemble(workspace, "mixed", [exported_models[0], "other-labels"], "mean", LIMIT)
    card["label_map"]["classes"][15]["name"] = "person"
    card["input"]["size"] = 256
    (other / "model.json").write_text(json.dumps(card))
    with pytest.raises(EnsembleError, match="256 px.*share input size"):
        create_ensemble(workspace, "mixed", [exported_models[0], "other-labels"], "mean", LIMIT)
    with pytest.raises(EnsembleError, match="at least two"):
        create_ensemble(workspace, "alone", [exported_models[0]], "mean", LIMIT)
    with pytest.raises(EnsembleError, match="only once"):
        create_ensemble(workspace, "twice", [exported_models[0]] * 2, "mean", LIMIT)
    with pytest.raises(ValueError, match="no model or ensemble called 'ghost'"):
        create_ensemble(workspace, "ghost-ensemble", [exported_models[0], "ghost"], "mean", LIMIT)
    with pytest.raises(EnsembleError, match="already a model"):
        create_ensemble(workspace, "other-labels", exported_models, "mean", LIMIT)
    with pytest.raises(EnsembleError, match="not allowed"):
        create_ensemble(workspace, "../escape", exported_models, "mean", LIMIT)
    shutil.rmtree(workspace.models_dir / exported_models[0] / "evaluations")
    card = json.loads((workspace.models_dir / exported_models[0] / "model.json").read_text())
    card["validation"] = {}
    (workspace.models_dir / exported_models[0] / "model.json").write_text(json.dumps(card))
    with pytest.raises(EnsembleError, match="no validation mIoU.*cocoseg evaluate"):
        create_ensemble(workspace, "weighted", exported_models, "weighted", LIMIT)
    assert not workspace.ensembles_dir.exists() or not list(workspace.ensembles_dir.iterdir())
