"""Training reads with the prepared set's sampling unless the run overrides it, and counts its
steps per epoch (so the schedule and the ETA) from the sampling it actually uses."""

from __future__ import annotations

import math

import pytest

from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.sampling import SamplingConfig, class_repeat_factors, image_repeat_factors
from cocoseg.pipeline.prepare.writer import prepare
from cocoseg.pipeline.training.config import TrainConfig
from cocoseg.pipeline.training.input import expected_epoch_images, split_image_classes
from cocoseg.pipeline.training.loop import run
from tests.pipeline.conftest import LIMIT

PREPARED_SAMPLING = SamplingConfig("repeat-factor", 0.3)


@pytest.fixture(scope="module")
def sampled_demo(tmp_path_factory):
    """The demo prepared at 64 px with repeat-factor sampling (t = 0.3) recorded in its manifest."""
    workspace = Workspace(tmp_path_factory.mktemp("sampling") / "workspace").ensure()
    config = PrepareConfig("demo", labels="voc21", size=64, shards=2, workers=1, sampling=PREPARED_SAMPLING)
    return workspace, prepare(workspace, config, LIMIT)


def test_the_shards_class_lists_give_the_epoch_size_the_writer_recorded(sampled_demo):
    _workspace, prepared = sampled_demo
    train = prepared.manifest["splits"]["train"]
    recorded = train["sampling"]["after"]["epoch_images"]
    assert recorded > train["examples"]  # the demo has rare classes, so sampling repeats images
    image_classes = split_image_classes(prepared, "train")
    assert len(image_classes) == train["examples"]
    factors = class_repeat_factors(train["class_images"], train["examples"], PREPARED_SAMPLING)
    assert image_repeat_factors(image_classes, factors).sum() == pytest.approx(recorded)
    assert expected_epoch_images(prepared, "train", PREPARED_SAMPLING) == recorded
    assert expected_epoch_images(prepared, "train", SamplingConfig("none")) == train["examples"]
    wider = expected_epoch_images(prepared, "train", SamplingConfig("repeat-factor", 0.6))
    assert wider > recorded  # a higher threshold repeats more classes, more often


def _batches_per_epoch(folder) -> set[int]:
    return {event["batches"] for event in folder.events() if event["type"] == "batch"}


@pytest.mark.slow  # two one-epoch trainings of a tiny UNet at 64 px
def test_a_run_uses_the_prepared_sampling_unless_it_overrides_it(sampled_demo):
    workspace, prepared = sampled_demo
    base = TrainConfig(
        prepared.name,
        model="unet",
        model_options={"base_filters": 4, "depth": 2},
        epochs=1,
        batch_size=16,
        augment=False,
    )
    train = prepared.manifest["splits"]["train"]
    as_prepared = run(workspace, base)
    assert as_prepared.status == "finished"
    config = as_prepared.folder.config()
    assert (config["sampling"], config["threshold"]) == ("repeat-factor", 0.3)
    recorded = train["sampling"]["after"]["epoch_images"]
    assert _batches_per_epoch(as_prepared.folder) == {math.ceil(recorded / 16)}

    plain = run(workspace, TrainConfig(**{**base.to_dict(), "sampling": "none"}))
    assert plain.status == "finished"
    assert (plain.folder.config()["sampling"], plain.folder.config()["threshold"]) == ("none", 0.3)
    assert _batches_per_epoch(plain.folder) == {math.ceil(train["examples"] / 16)}
    assert math.ceil(recorded / 16) > math.ceil(train["examples"] / 16)  # the two runs differ
