"""Training runner: it learns, it resumes exactly, it stops cleanly, it refuses bad settings."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from cocoseg.errors import ConfigError
from cocoseg.pipeline.jobs.registry import HEARTBEAT_FILE, RunError, list_runs, reconcile_runs
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.writer import prepare
from cocoseg.pipeline.training.config import NO_AUGMENTATION, AugmentConfig, TrainConfig
from cocoseg.pipeline.training.loop import choose_strategy, device_name, resume, run
from cocoseg.pipeline.training.loop import gpu_capabilities as tf_gpus
from tests.pipeline.conftest import LIMIT
from tests.pipeline.shapes import prepared_shapes

SMALL_UNET = {"base_filters": 8, "depth": 3}


@pytest.fixture(scope="module")
def shapes_workspace(tmp_path_factory):
    """A workspace with a generated shapes dataset (96 train / 24 val, 64 px) prepared."""
    return prepared_shapes(tmp_path_factory.mktemp("shapes"), (96, 24), (1, 2), shards=2)


@pytest.mark.slow
def test_default_unet_learns_simple_shapes(shapes_workspace):
    workspace, prepared = shapes_workspace
    config = TrainConfig(
        prepared,
        model="unet",
        model_options={"base_filters": 16, "depth": 3},
        epochs=6,
        batch_size=8,
        learning_rate=3e-3,
        augment=False,
    )
    outcome = run(workspace, config)
    assert outcome.status == "finished" and outcome.epochs_done == 6
    assert outcome.best_miou >= 0.85
    history = outcome.folder.history()
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6] and history[-1]["loss"] < 0.5 * history[0][
        "loss"
    ]
    assert outcome.folder.best_checkpoint.is_file() and outcome.folder.last_checkpoint.is_file()
    events = outcome.folder.events()
    assert {"batch", "epoch"} <= {event["type"] for event in events}
    assert all(
        event["eta_seconds"] >= 0 and event["images_per_second"] > 0
        for event in events
        if event["type"] == "batch"
    )
    assert any(
        path.name.startswith("events.out.tfevents") for path in outcome.folder.logs.rglob("*")
    )  # TensorBoard
    status = outcome.folder.status()
    assert status["status"] == "finished" and status["device"] == device_name() and status["heartbeat"] > 0


def _config(prepared, **changes):
    base = TrainConfig(
        prepared,
        model="unet",
        model_options=SMALL_UNET,
        epochs=4,
        batch_size=16,
        learning_rate=3e-3,
        schedule="cosine",
        seed=5,
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.slow
@pytest.mark.extended  # resume itself: test_train_jobs.py beside this file (killed, interrupted, resumed)
def test_cancel_then_resume_matches_uninterrupted_training(shapes_workspace):
    workspace, prepared = shapes_workspace
    uninterrupted = run(workspace, _config(prepared))
    epochs_seen = []

    def stop_at_third_epoch():
        return len(epochs_seen) >= 2

    cancelled = run(
        workspace,
        _config(prepared),
        on_progress=lambda event: event["type"] == "epoch" and epochs_seen.append(event["epoch"]),
        should_stop=stop_at_third_epoch,
    )
    assert cancelled.status == "cancelled" and cancelled.epochs_done == 2
    assert cancelled.folder.status()["status"] == "cancelled" and cancelled.folder.state()["epoch"] == 2
    resumed = resume(workspace, cancelled.folder.name)
    assert resumed.status == "finished" and resumed.folder.status()["status"] == "finished"
    history = resumed.folder.history()
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    reference = uninterrupted.folder.history()
    np.testing.assert_allclose(
        [row["loss"] for row in history], [row["loss"] for row in reference], rtol=1e-4
    )
    np.testing.assert_allclose(
        [row["val_miou"] for row in history], [row["val_miou"] for row in reference], rtol=1e-4
    )
    with pytest.raises(RunError, match="already has 4 epochs"):
        resume(workspace, cancelled.folder.name)


def test_cancel_lands_within_one_batch(shapes_workspace):
    workspace, prepared = shapes_workspace
    batches = []
    outcome = run(
        workspace,
        _config(prepared, epochs=1),
        on_progress=lambda event: batches.append(event),
        should_stop=lambda: len(batches) >= 1,
    )
    assert outcome.status == "cancelled" and outcome.epochs_done == 0
    assert [event["batch"] for event in outcome.folder.events() if event["type"] == "batch"] == [1]
    with pytest.raises(RunError, match="no finished epoch"):
        resume(workspace, outcome.folder.name)


@pytest.mark.slow  # 10-40 s of training: `make test` runs it, `make test-fast` does not
def test_nan_loss_fails_the_run_with_its_place(shapes_workspace):
    workspace, prepared = shapes_workspace
    outcome = run(
        workspace, _config(prepared, epochs=1, optimizer="sgd", schedule="constant", learning_rate=1e30)
    )
    assert outcome.status == "failed"
    assert outcome.message.startswith("loss became NaN at epoch 1 batch ")
    assert outcome.folder.status()["message"] == outcome.message
    assert not outcome.folder.last_checkpoint.exists()  # nothing NaN was saved


@pytest.mark.slow  # 10-40 s of training: `make test` runs it, `make test-fast` does not
def test_a_crash_is_recorded_as_failed(shapes_workspace, monkeypatch):
    workspace, prepared = shapes_workspace
    import cocoseg.pipeline.training.loop as train_module

    def broken_evaluation(*_args, **_kwargs):
        raise OSError("validation shards unreadable")

    monkeypatch.setattr(train_module, "evaluation_dataset", broken_evaluation)
    with pytest.raises(OSError):
        run(workspace, _config(prepared, epochs=1))
    newest = list_runs(workspace)[0]
    assert newest.status == "failed" and "validation shards unreadable" in newest.message


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"model": "vnet"}, "model"),
        ({"model_options": {"dropout": 0.5}}, "model_options"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"epochs": 0}, "epochs"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"loss": "l2"}, "loss"),
        ({"sampling": "oversample"}, "sampling"),
        ({"augmentation": {"rotation_degrees": 90}}, "augmentation"),
        ({"augmentation": {"zoom": 2}}, "augmentation"),
    ],
)
def test_invalid_settings_name_the_field(changes, field):
    with pytest.raises(ConfigError) as raised:
        TrainConfig("any", **changes)
    assert raised.value.field == field


def test_checks_before_any_run_folder(shapes_workspace):
    workspace, prepared = shapes_workspace
    before = {summary.name for summary in list_runs(workspace)}
    with pytest.raises(ConfigError, match="prepared: no prepared set called 'missing'"):
        run(workspace, _config("missing"))
    with pytest.raises(ConfigError, match="batch_size: 500 is larger than the 96 training examples"):
        run(workspace, _config(prepared, batch_size=500))
    if not tf_gpus():  # the refusal names the device (tests/pipeline/training/test_precision.py has the rest)
        with pytest.raises(ConfigError, match="precision: mixed_float16 needs a GPU, and none is visible"):
            run(workspace, _config(prepared, precision="mixed_float16"))
    assert {summary.name for summary in list_runs(workspace)} == before


@pytest.mark.slow  # 10-40 s of training: `make test` runs it, `make test-fast` does not
def test_label_map_mismatch_on_resume_is_refused(shapes_workspace, tmp_path):
    workspace, prepared = shapes_workspace
    outcome = run(workspace, _config(prepared, epochs=1))
    other = prepare(workspace, PrepareConfig("demo", labels="voc21", size=64, shards=1, workers=1), LIMIT)
    config_path = outcome.folder.folder / "config.json"
    config_path.write_text(
        json.dumps({**json.loads(config_path.read_text()), "prepared": other.name, "batch_size": 8})
    )
    with pytest.raises(
        ConfigError, match="prepared: its label map has 21 classes but the checkpoint predicts 4"
    ):
        resume(workspace, outcome.folder.name, epochs=2)


@pytest.mark.slow  # 10-40 s of training: `make test` runs it, `make test-fast` does not
def test_single_writer_per_run_and_stale_heartbeats(shapes_workspace):
    workspace, prepared = shapes_workspace
    outcome = run(workspace, _config(prepared, epochs=1))
    with workspace.lock(f"run-{outcome.folder.name}"):
        with pytest.raises(RunError, match="being trained by another process"):
            resume(workspace, outcome.folder.name, epochs=2)
    outcome.folder.set_status("running", host="another-host")  # its process cannot be checked from here
    status = outcome.folder.status()
    status["heartbeat"] -= 600
    (outcome.folder.folder / "status.json").write_text(json.dumps(status))
    os.utime(outcome.folder.folder / HEARTBEAT_FILE, (status["heartbeat"], status["heartbeat"]))
    assert outcome.folder.name in reconcile_runs(workspace, stale_seconds=120)
    assert outcome.folder.status()["status"] == "interrupted"
    assert "no heartbeat from another-host" in outcome.folder.status()["message"]


def test_strategy_on_this_machine_is_the_default_one():
    strategy = choose_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_a_run_trains_with_the_augmentation_strengths_it_was_given_and_records_them_all(
    shapes_workspace, monkeypatch
):
    """The strengths reach the input pipeline (its own function, watched), and the run's config lists
    every strength, the defaults included, so a resume or a reader knows what was applied."""
    import cocoseg.pipeline.training.loop as loop

    seen = []
    real = loop.training_dataset

    def watched(prepared, split, config, epoch):
        seen.append(config.augment)
        return real(prepared, split, config, epoch)

    monkeypatch.setattr(loop, "training_dataset", watched)
    workspace, prepared = shapes_workspace
    changes = {"rotation_degrees": 20, "flip": False}
    outcome = run(workspace, _config(prepared, epochs=1, augmentation=changes))
    assert outcome.status == "finished"
    applied = dataclasses.replace(AugmentConfig(), rotation_degrees=20, flip=False)
    assert seen == [applied]
    assert outcome.folder.config()["augmentation"] == dataclasses.asdict(applied)
    assert TrainConfig.from_dict(outcome.folder.config()).augment_config() == applied
    seen.clear()
    run(workspace, _config(prepared, epochs=1, augment=False, augmentation=changes))
    assert seen == [NO_AUGMENTATION]
