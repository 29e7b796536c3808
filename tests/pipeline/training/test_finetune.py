"""Fine-tuning from a run: the weights it starts from, the frozen encoder, a new classifier."""

from __future__ import annotations

import numpy as np
import pytest

from cocoseg.pipeline.core.tf_runtime import tensorflow
from cocoseg.pipeline.jobs.registry import RunFolder
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.writer import prepare
from cocoseg.pipeline.training.config import TrainConfig
from cocoseg.pipeline.training.loop import resume, run
from tests.pipeline.conftest import LIMIT
from tests.pipeline.training.test_train import shapes_workspace  # noqa: F401 - the module's fixture

pytestmark = pytest.mark.slow  # a parent and two short children: `make test` runs them, test-fast does not

SMALL_UNET = {"base_filters": 8, "depth": 3}


def _config(prepared: str, **changes) -> TrainConfig:
    values = dict(model="unet", model_options=SMALL_UNET, batch_size=16, learning_rate=3e-3, augment=False)
    return TrainConfig(prepared, **{**values, **changes})


def _layers(checkpoint) -> dict[str, list[np.ndarray]]:
    tensorflow()
    import keras

    model = keras.models.load_model(checkpoint, compile=False)
    return {
        layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers if layer.weights
    }


def _equal(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


@pytest.fixture(scope="module")
def parent(shapes_workspace):  # noqa: F811
    workspace, prepared = shapes_workspace
    outcome = run(workspace, _config(prepared, epochs=3))
    assert outcome.status == "finished"
    return outcome


def test_a_child_starts_from_its_parent_and_holds_the_encoder_while_frozen(shapes_workspace, parent):  # noqa: F811
    workspace, prepared = shapes_workspace
    # constant learning rate: resuming past a cosine schedule's end would train at rate 0
    config = _config(
        prepared, epochs=1, schedule="constant", init_from=parent.folder.name, freeze_encoder_epochs=1
    )
    child = run(workspace, config)
    assert child.status == "finished"
    (started,) = [event for event in child.folder.events() if event["type"] == "initialised"]
    assert started["parent"] == parent.folder.name and started["new_layers"] == []
    assert child.folder.config()["parent"]["copy_classifier"] is True
    # starting from three epochs of training beats the parent's own first epoch from scratch
    assert child.folder.history()[0]["val_miou"] > parent.folder.history()[0]["val_miou"]
    origin, after_one = _layers(parent.folder.best_checkpoint), _layers(child.folder.last_checkpoint)
    encoder = [name for name in origin if name.startswith("encoder")]
    decoder = [name for name in origin if name.startswith("decoder")]
    assert encoder and decoder
    assert all(_equal(origin[name], after_one[name]) for name in encoder)  # frozen: as the parent left it
    assert not any(_equal(origin[name], after_one[name]) for name in decoder)
    resumed = resume(workspace, child.folder.name, epochs=2)  # the freeze is over: the encoder moves
    assert resumed.status == "finished"
    after_resume = _layers(resumed.folder.last_checkpoint)
    assert not [name for name in encoder if _equal(origin[name], after_resume[name])]


def test_the_command_line_fine_tunes_to_another_label_map_and_refuses_in_one_line(
    shapes_workspace,  # noqa: F811
    parent,
    monkeypatch,
    capsys,
):
    """Another label map keeps every layer but the classifier; the lineage shows in `runs list`."""
    from cocoseg import cli
    from cocoseg.pipeline.core.settings import get_settings
    from cocoseg.pipeline.jobs.registry import list_runs

    workspace, prepared = shapes_workspace
    circles = prepare(
        workspace,
        PrepareConfig("shapes", size=64, shards=1, workers=1, labels="custom", classes=("circle",)),
        LIMIT,
    ).name
    monkeypatch.setenv("COCOSEG_HOME", str(workspace.root))
    get_settings.cache_clear()
    name = parent.folder.name
    common = ["--epochs", "1", "--batch-size", "16", "--no-augment"]
    assert cli.main(["train", circles, "--init-from", name, *common]) == 0
    (folder,) = [
        RunFolder(run.folder)
        for run in list_runs(workspace)
        if RunFolder(run.folder).config()["prepared"] == circles
    ]
    lineage = folder.config()["parent"]
    assert lineage["copy_classifier"] is False and "4 classes -> 2 classes" in lineage["classifier"]
    (started,) = [event for event in folder.events() if event["type"] == "initialised"]
    assert started["new_layers"] == ["logits"]
    origin, copied = _layers(parent.folder.best_checkpoint), _layers(folder.last_checkpoint)
    assert copied["logits"][0].shape[-1] == 2 and origin["logits"][0].shape[-1] == 4
    capsys.readouterr()
    assert cli.main(["runs", "list"]) == 0
    assert f"from {name}" in capsys.readouterr().out
    for arguments, message in (
        (["--init-from", "gone"], "no run or model called 'gone'"),
        (["--init-from", name, "--model", "attention_unet"], "keeps its parent's architecture"),
        (["--freeze-encoder-epochs", "2"], "only a run that starts from a model"),
    ):
        assert cli.main(["train", prepared, *arguments, *common]) == cli.EXIT_INPUT
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error and len(error.strip().splitlines()) == 1


@pytest.mark.extended  # the weights cache itself: tests/pipeline/training/test_weights.py
def test_imagenet_weights_are_downloaded_once_and_held_while_the_encoder_is_frozen(
    shapes_workspace,  # noqa: F811
    mirror,
):
    """The run fetches the encoder's file from the mirror into the workspace, builds on it, and a
    frozen first epoch leaves those weights exactly as the file has them."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from cocoseg.models.encoder_catalog import ENCODERS

    workspace, prepared = shapes_workspace
    keras.utils.set_random_seed(11)
    pretrained = keras.applications.MobileNetV2((96, 96, 3), include_top=False, weights=None)
    published = mirror / ENCODERS["mobilenet_v2"].weights_path
    published.parent.mkdir(parents=True)
    with h5py.File(published, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, pretrained)
    config = _config(
        prepared,
        model="pretrained_unet",
        model_options={"encoder_weights": "imagenet"},
        epochs=1,
        freeze_encoder_epochs=1,
    )
    outcome = run(workspace, config)
    assert outcome.status == "finished"
    (fetched,) = [event for event in outcome.folder.events() if event["type"] == "encoder_weights"]
    assert fetched["file"] == str(workspace.weights_dir / "mobilenet_v2.h5")
    model = keras.models.load_model(outcome.folder.last_checkpoint, compile=False)
    encoder = model.get_layer("encoder")
    for name in ("Conv1", "block_6_project", "block_13_expand_BN"):
        assert _equal(encoder.get_layer(name).get_weights(), pretrained.get_layer(name).get_weights()), name
