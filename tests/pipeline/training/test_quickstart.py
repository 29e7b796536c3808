"""Quick start: where the encoder starts (ImageNet or random, and why), and the job's whole path."""

from __future__ import annotations

import dataclasses

import pytest

from cocoseg.pipeline.inference.model_store import get_entry
from cocoseg.pipeline.training.quickstart import FROZEN_EPOCHS, plan_quickstart
from tests.conftest import LIMIT


def test_offline_without_weights_it_starts_from_random_and_says_what_would_help(workspace, offline):
    plan = plan_quickstart(workspace)
    assert plan.imagenet is False and plan.train["model_options"]["encoder_weights"] is None
    assert plan.train["freeze_encoder_epochs"] == 0
    assert "cocoseg weights import FILE --encoder mobilenet_v2" in plan.weights_note
    assert plan.prepare["dataset"] == "demo" and plan.prepare["size"] == 128


def test_with_imported_weights_it_starts_from_imagenet_and_holds_the_encoder_first(workspace, offline):
    workspace.weights_dir.mkdir()
    (workspace.weights_dir / "mobilenet_v2.h5").write_bytes(b"checked on import")
    plan = plan_quickstart(workspace)
    assert plan.imagenet is True and plan.train["model_options"]["encoder_weights"] == "imagenet"
    assert plan.train["freeze_encoder_epochs"] == FROZEN_EPOCHS
    assert plan.weights_note == "ImageNet encoder weights: in the workspace."


@pytest.mark.slow  # prepares, trains and exports (shortened to one epoch at 32 px)
def test_the_quick_start_job_leaves_an_exported_model(workspace, offline):
    from cocoseg.pipeline.training.recipes import run_quickstart

    plan = plan_quickstart(workspace)
    short = dataclasses.replace(plan, prepare={**plan.prepare, "size": 32}, train={**plan.train, "epochs": 1})
    stages = []
    result = run_quickstart(workspace, short, LIMIT, lambda event: stages.append(event["stage"]))
    assert stages[0] == "prepare" and "train" in stages and stages[-1] == "export"
    entry = get_entry(workspace, result["model"])
    assert entry.card["input"]["size"] == 32 and result["imagenet"] is False
    assert 0 <= result["best_miou"] <= 1
