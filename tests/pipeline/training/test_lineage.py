"""Fine-tuning's parent is checked before any run folder exists (no TensorFlow): a run or the
run behind an exported model, with a checkpoint, the same architecture and the same size."""

from __future__ import annotations

import json

import pytest

from cocoseg.errors import ConfigError
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.jobs.registry import create_run, list_runs
from cocoseg.pipeline.training import TrainConfig, create, find_parent, with_parent_architecture

OPTIONS = {"base_filters": 8, "depth": 2}


def _prepared(workspace, name: str, size: int, labels: str = "voc21") -> str:
    """A prepared set as far as the checks read it: its manifest."""
    folder = workspace.prepared_dir / name
    folder.mkdir(parents=True)
    manifest = {
        "config": {"size": size, "sampling": {"method": "none", "threshold": 0.1}},
        "label_map": build_label_map(labels).to_dict(),
        "splits": {"train": {"examples": 10}, "val": {"examples": 2}},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return name


def _parent(workspace, prepared: str, checkpoint: bool = True) -> str:
    """A finished run on ``prepared`` (its best checkpoint is a placeholder file: nothing loads it here)."""
    config = {"prepared": prepared, "prepared_folder": prepared, "model": "unet", "model_options": OPTIONS}
    run = create_run(workspace, config, "unet")
    if checkpoint:
        run.best_checkpoint.write_bytes(b"checkpoint")
    return run.name


def _child(prepared: str, parent: str, **changes) -> TrainConfig:
    values = dict(model="unet", model_options=OPTIONS, epochs=2, batch_size=2, init_from=parent)
    return TrainConfig(prepared, **{**values, **changes})


def _refusal(workspace, config) -> ConfigError:
    before = len(list_runs(workspace))
    with pytest.raises(ConfigError) as raised:
        create(workspace, config)
    assert len(list_runs(workspace)) == before  # refused before any folder exists
    return raised.value


def test_the_child_records_its_parent_and_whether_the_classifier_is_copied(workspace):
    voc = _prepared(workspace, "voc-64", 64)
    parent = _parent(workspace, voc)
    same = create(workspace, _child(voc, parent, freeze_encoder_epochs=1)).config()
    assert same["init_from"] == parent and same["freeze_encoder_epochs"] == 1
    assert same["parent"] == {
        "run": parent,
        "checkpoint": "best",
        "copy_classifier": True,
        "classifier": "copied (same label map)",
    }
    coco = _prepared(workspace, "coco-64", 64, labels="coco80")
    other = create(workspace, _child(coco, parent)).config()["parent"]
    assert other["copy_classifier"] is False
    assert other["classifier"] == "new: the label map differs (21 classes -> 81 classes)"
    assert {run.parent for run in list_runs(workspace)} == {None, parent}


def test_an_exported_model_names_its_run_and_lends_its_architecture(workspace):
    voc = _prepared(workspace, "voc-64", 64)
    parent = _parent(workspace, voc)
    card = {"kind": "exported", "source": {"run": parent}, "input": {"size": 64}, "label_map": {}}
    (workspace.models_dir / "my-model").mkdir(parents=True)
    (workspace.models_dir / "my-model" / "model.json").write_text(json.dumps(card))
    assert find_parent(workspace, "my-model").name == parent
    config = with_parent_architecture(
        workspace, _child(voc, "my-model", model="attention_unet", model_options={})
    )
    assert (config.model, config.model_options) == ("unet", OPTIONS)


@pytest.mark.parametrize(
    ("case", "field", "text"),
    [
        ("size", "init_from", "was trained at 64 px but voc-96 is 96 px; prepare the data at 64 px"),
        ("architecture", "model", "a fine-tuned run keeps its parent's architecture"),
        ("deleted", "init_from", "no run or model called 'gone' (deleted?)"),
        ("no checkpoint", "init_from", "has no checkpoint yet"),
        ("imported", "init_from", "is an imported ONNX model"),
        ("run deleted", "init_from", "which was deleted with its checkpoints"),
        ("freeze alone", "freeze_encoder_epochs", "only a run that starts from a model"),
        ("unsafe", "init_from", ""),
    ],
)
def test_a_parent_that_cannot_work_is_refused_naming_why(workspace, case, field, text):
    voc = _prepared(workspace, "voc-64", 64)
    parent = _parent(workspace, voc)
    models = workspace.models_dir
    if case == "size":
        config = _child(_prepared(workspace, "voc-96", 96), parent)
    elif case == "architecture":
        config = _child(voc, parent, model_options={"base_filters": 16, "depth": 2})
    elif case == "deleted":
        config = _child(voc, "gone")
    elif case == "no checkpoint":
        config = _child(voc, _parent(workspace, voc, checkpoint=False))
    elif case in ("imported", "run deleted"):
        card = (
            {"kind": "imported"} if case == "imported" else {"kind": "exported", "source": {"run": "unet-1"}}
        )
        (models / "theirs").mkdir(parents=True)
        (models / "theirs" / "model.json").write_text(json.dumps(card))
        config = _child(voc, "theirs")
    elif case == "unsafe":
        config = _child(voc, "../escape")
    else:
        with pytest.raises(ConfigError) as raised:
            _child(voc, None, freeze_encoder_epochs=2)
        assert raised.value.field == field and text in raised.value.message
        return
    error = _refusal(workspace, config)
    assert error.field == field and text in error.message, error
