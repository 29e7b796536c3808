"""The correction loop in one action: plan refusals, then a whole round through ``cocoseg finetune``.

The round runs in a private copy of the session's workspace (its prepared demo and two exported
tiny models), so the overlay, child run and child model it adds touch no other test.
"""

from __future__ import annotations

import json
import shutil

import pytest

from cocoseg import cli
from cocoseg.errors import ConfigError
from cocoseg.pipeline.annotation.export import register_corrections
from cocoseg.pipeline.annotation.store import open_annotations, save_image
from cocoseg.pipeline.core.settings import get_settings
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.data.registry import add_dataset, get_dataset
from cocoseg.pipeline.inference.model_store import get_entry
from cocoseg.pipeline.jobs.registry import get_run
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.plan import plan
from cocoseg.pipeline.training import past_rounds, plan_round
from cocoseg.pipeline.training.corrections import _overlay_name
from cocoseg.pipeline.training.lineage import find_parent
from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON, LIMIT
from tests.pipeline.annotation.test_annotation_store import demo_image

VOC = build_label_map("voc21")
CORRECTED = ("000000262145.jpg", "000000196610.jpg")


@pytest.fixture
def private_workspace(tmp_path, prepared_workspace, exported_models, monkeypatch) -> Workspace:
    root = tmp_path / "workspace"
    shutil.copytree(prepared_workspace.root, root, ignore=shutil.ignore_patterns("locks", "cache"))
    monkeypatch.setenv("COCOSEG_HOME", str(root))
    get_settings.cache_clear()
    return Workspace(root).ensure()


def correct(workspace: Workspace, file_name: str) -> None:
    """Save a real demo train picture's voc21 mask with a painted patch, as Annotate would."""
    image, mask = demo_image(file_name, split="train")
    mask = mask.copy()
    mask[5:40, 5:60] = 12
    _data, version = open_annotations(workspace, "demo")
    save_image(workspace, "demo", image, mask, VOC, version, LIMIT)


def test_a_round_is_refused_before_anything_is_written(private_workspace, exported_models):
    parent = exported_models[0]
    with pytest.raises(ConfigError) as refused:
        plan_round(private_workspace, parent, "demo")
    assert refused.value.field == "corrections" and "no saved corrections of demo" in refused.value.message
    correct(private_workspace, CORRECTED[0])
    for model, dataset, field, text in (
        ("", "demo", "model", "choose the model"),
        ("gone", "demo", "model", "gone"),
        (parent, "uploads", "dataset", "cannot be laid over a registered dataset"),
    ):
        with pytest.raises(ConfigError) as refused:
            plan_round(private_workspace, model, dataset)
        assert refused.value.field == field and text in refused.value.message
    # the parent trained with its own augmentation (the Prepare page's, or --augmentation): the round keeps it
    config_path = find_parent(private_workspace, parent).run.folder / "config.json"
    config = json.loads(config_path.read_text())
    config["augmentation"] = {**config.get("augmentation", {}), "flip": False, "rotation_degrees": 3.0}
    config_path.write_text(json.dumps(config))
    planned = plan_round(private_workspace, parent, "demo")
    assert planned.train["augmentation"] == config["augmentation"]
    assert (planned.number, planned.overlay, planned.reuse, planned.corrections) == (
        1,
        "demo-corrections-1",
        False,
        1,
    )
    assert planned.train["init_from"] == parent and planned.train["epochs"] == 1  # a third of the parent's 2
    assert planned.prepare["size"] == 128 and planned.prepare["dataset"] == "demo-corrections-1"
    assert not (private_workspace.annotations_dir / "rounds").exists()


def test_the_overlay_of_a_64_character_dataset_is_registered_and_prepared(workspace):
    """The overlay is a dataset like any other, so its name keeps to the 64 characters every reader allows."""
    name = "d" * 64
    add_dataset(workspace, name, DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    image, mask = demo_image("000000532481.jpg")
    version = save_image(workspace, name, image, mask, VOC, "", LIMIT)
    number, overlay, reuse = _overlay_name(workspace, name, version)
    assert (number, reuse) == (1, False) and overlay == f"{'d' * 50}-corrections-1"
    register_corrections(workspace, name, overlay, "overlay", LIMIT)
    planned = plan(workspace, PrepareConfig(overlay, splits=("val",), labels="voc21", size=64), LIMIT)
    assert planned.folder.name.startswith(f"{overlay}-voc21-64-")
    other = "d" * 63 + "e"  # the same first 50 characters: the next free number, never a clash
    add_dataset(workspace, other, DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    assert _overlay_name(workspace, other, "v")[1] == f"{'d' * 50}-corrections-2"


def test_corrections_of_an_overlay_take_the_next_version_not_a_longer_name(workspace):
    for name in ("x", "x-corrections-1", "x-corrections-2"):
        add_dataset(workspace, name, DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    assert _overlay_name(workspace, "x-corrections-2", "v") == (1, "x-corrections-3", False)
    assert _overlay_name(workspace, "x", "v") == (1, "x-corrections-3", False)


@pytest.mark.slow  # prepares, trains, exports and evaluates
@pytest.mark.extended  # the same round from the page: tests/e2e/test_correction_loop_browser.py
def test_a_whole_round_from_the_command_line_then_a_new_version(private_workspace, exported_models, capsys):
    parent = exported_models[0]
    for file_name in CORRECTED:
        correct(private_workspace, file_name)
    assert cli.main(["finetune", parent, "--dataset", "demo", "--epochs", "1"]) == 0
    output = capsys.readouterr()
    assert "round 1: 2 corrected images of demo -> demo-corrections-1" in output.err
    for stage in ("register", "prepare", "train", "export", "evaluate"):
        assert f"  {stage}: " in output.err
    (record,) = past_rounds(private_workspace, "demo")
    child = record["child"]
    assert record["status"] == "finished" and record["parent"] == parent
    assert f"fine-tuned {child} from {parent} on demo-corrections-1" in output.out
    assert f"(parent {record['parent_miou'] * 100:.2f} %)" in output.out
    overlay = get_dataset(private_workspace, "demo-corrections-1")
    overlaid = json.loads(overlay.splits["train"].annotations.read_text())
    corrected_ids = {image["id"] for image in overlaid["images"] if image["file_name"] in CORRECTED}
    assert {item["category_id"] for item in overlaid["annotations"] if item["image_id"] in corrected_ids} >= {
        18
    }
    run = get_run(private_workspace, record["run"])
    assert run.config()["parent"]["run"] == parent and run.config()["prepared"] == record["prepared"]
    card = get_entry(private_workspace, child).card
    assert card["source"]["parent"] == parent
    for name in (parent, child):  # both evaluated on the same split, the results saved beside the models
        saved = list(get_entry(private_workspace, name).folder.rglob("*val*.json"))
        assert saved, name
    unchanged = plan_round(private_workspace, parent, "demo")
    assert (unchanged.number, unchanged.overlay, unchanged.reuse) == (2, "demo-corrections-1", True)
    correct(private_workspace, "000000360449.jpg")
    changed = plan_round(private_workspace, child, "demo")
    assert (changed.number, changed.overlay, changed.reuse) == (2, "demo-corrections-2", False)
