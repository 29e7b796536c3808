"""Image folders registered without annotations: the written COCO file, refusals, and how the rest copes."""

from __future__ import annotations

import json
import shutil

import pytest

from cocoseg.errors import ConfigError
from cocoseg.pipeline.annotation.session import label_map_for
from cocoseg.pipeline.data.coco import load_coco
from cocoseg.pipeline.data.registry import (
    RegistryError,
    add_dataset,
    add_image_folder,
    get_dataset,
    is_unlabelled,
    load_split,
    overview,
)
from cocoseg.pipeline.data.stats import split_stats
from cocoseg.pipeline.inference.evaluate import (
    EvaluationError,
    EvaluationTarget,
    evaluate_entry,
    ground_truth_images,
)
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.plan import plan
from tests.conftest import DEMO_SIZES, DEMO_VAL_IMAGES, DEMO_VAL_JSON, LIMIT, PICTURES, tiny_coco, write_json


def _registered_json(workspace, name="photos", split="new") -> dict:
    return json.loads((workspace.image_sets_dir / name / f"{split}.json").read_text())


def test_registration_writes_sorted_images_with_their_stored_sizes(workspace, photos):
    entry = add_image_folder(workspace, "photos", photos, split="new")
    source = entry.split("new")
    assert source.annotations == workspace.image_sets_dir / "photos" / "new.json"
    assert source.images == photos.resolve()
    data = _registered_json(workspace)
    assert [image["file_name"] for image in data["images"]] == [*PICTURES, "zz-broken.jpg"]
    assert [image["id"] for image in data["images"]] == [1, 2, 3, 4]
    assert [(image["width"], image["height"]) for image in data["images"][:3]] == [
        DEMO_SIZES[name] for name in PICTURES
    ]
    assert data["annotations"] == [] and data["categories"] == []
    assert data["info"]["unlabelled"] is True and data["info"]["images_folder"] == str(photos.resolve())
    assert get_dataset(workspace, "photos").split("new") == source


def test_unreadable_file_is_listed_and_reported_on_load(workspace, photos):
    entry = add_image_folder(workspace, "photos", photos, split="new")
    broken = _registered_json(workspace)["images"][3]
    assert (broken["file_name"], broken["width"], broken["height"]) == ("zz-broken.jpg", 1, 1)
    coco = load_split(entry, "new", LIMIT)
    assert [image["file_name"] for image in coco.images] == PICTURES
    assert coco.report.counts == {"unreadable-image-file": 1}
    assert coco.report.totals["images"] == 4 and coco.report.totals["images_valid"] == 3


def _written(workspace):
    registry = workspace.datasets_file.read_bytes() if workspace.datasets_file.exists() else None
    image_sets = sorted(workspace.image_sets_dir.rglob("*")) if workspace.image_sets_dir.exists() else []
    return registry, image_sets


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing-folder", "image folder not found"),
        ("folder-without-images", "no images"),
        ("demo", "bundled"),
    ],
)
def test_refusals_write_nothing(workspace, tmp_path, case, message):
    folder = tmp_path / "folder"
    name = "demo" if case == "demo" else "photos"
    if case != "missing-folder":
        folder.mkdir()
        (folder / "notes.txt").write_text("text")
        (folder / "nested.png").mkdir()
    if case == "demo":
        shutil.copy(DEMO_VAL_IMAGES / PICTURES[0], folder)
    before = _written(workspace)
    with pytest.raises(RegistryError, match=message):
        add_image_folder(workspace, name, folder, split="val")
    assert _written(workspace) == before


def test_existing_split_needs_replace(workspace, photos, tmp_path):
    add_dataset(workspace, "photos", DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    before = _written(workspace)
    with pytest.raises(RegistryError, match="--replace"):
        add_image_folder(workspace, "photos", photos, split="val")
    assert _written(workspace) == before
    add_image_folder(workspace, "photos", photos, split="new")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(DEMO_VAL_IMAGES / PICTURES[1], other)
    with pytest.raises(RegistryError, match="--replace"):
        add_image_folder(workspace, "photos", other, split="new")
    assert len(_registered_json(workspace)["images"]) == 4
    entry = add_image_folder(workspace, "photos", other, split="new", replace=True)
    assert entry.split("new").images == other.resolve()
    assert [image["file_name"] for image in _registered_json(workspace)["images"]] == [PICTURES[1]]
    assert entry.split("val").annotations == DEMO_VAL_JSON.resolve()  # the other split is untouched


def test_is_unlabelled(workspace, photos, tmp_path):
    entry = add_image_folder(workspace, "photos", photos, split="new")
    assert is_unlabelled(load_split(entry, "new", LIMIT))
    assert not is_unlabelled(load_split(get_dataset(workspace, "demo"), "val", LIMIT))
    images = [{"id": 1, "file_name": PICTURES[0], "width": 1, "height": 1}]
    made_elsewhere = write_json(
        tmp_path / "list.json", {"images": images, "annotations": [], "categories": []}
    )
    assert is_unlabelled(load_coco(made_elsewhere, None, LIMIT))
    negatives = write_json(tmp_path / "negatives.json", tiny_coco(annotations=[]))
    assert not is_unlabelled(load_coco(negatives, None, LIMIT))  # categories: all background, on purpose
    broken = write_json(tmp_path / "broken.json", tiny_coco(categories=[]))
    assert not is_unlabelled(load_coco(broken, None, LIMIT))  # its one annotation is invalid, not absent


def test_overview_shows_unlabelled_status(workspace, photos, tmp_path):
    add_image_folder(workspace, "photos", photos, split="new")
    clean = tmp_path / "clean"
    clean.mkdir()
    for name in PICTURES:
        shutil.copy(DEMO_VAL_IMAGES / name, clean)
    add_image_folder(workspace, "photos", clean, split="clean")
    rows = {(row["dataset"], row["split"]): row for row in overview(workspace, LIMIT)}
    assert rows[("demo", "val")]["status"] == "ok"
    new = rows[("photos", "new")]
    assert new["status"] == "unlabelled" and new["images"] == 4 and new["errors"] == 1
    assert new["message"].startswith(
        "4 images, no annotations (rank them on Review, correct them on Annotate)"
    )
    assert "cocoseg data validate photos --split new" in new["message"]
    assert rows[("photos", "clean")]["status"] == "unlabelled"
    assert rows[("photos", "clean")]["message"] == (
        "3 images, no annotations (rank them on Review, correct them on Annotate)"
    )


class Untouchable:
    """A model entry stand-in that fails if evaluation gets as far as the model."""

    def __getattr__(self, name):
        raise AssertionError(f"the model was used ({name}) before the split was checked")


def test_evaluation_refuses_an_unlabelled_split_before_loading_a_model(workspace, photos):
    add_image_folder(workspace, "photos", photos, split="new")
    target = EvaluationTarget("photos", "new")
    with pytest.raises(EvaluationError, match="no annotations to evaluate against"):
        ground_truth_images(workspace, target, LIMIT)
    with pytest.raises(EvaluationError, match="photos/new is unlabelled"):
        evaluate_entry(workspace, Untouchable(), target, LIMIT)
    coco, images = ground_truth_images(workspace, EvaluationTarget("demo", "val", limit=5), LIMIT)
    assert len(coco.images) == 80 and len(images) == 5


def test_annotate_label_maps_work_without_categories(workspace, photos):
    add_image_folder(workspace, "photos", photos, split="new")
    assert label_map_for(workspace, None, "photos/new", LIMIT).name == "voc21"  # the page's default
    assert label_map_for(workspace, "voc21", "photos/new", LIMIT).num_classes == 21
    assert label_map_for(workspace, "coco80", "photos/new", LIMIT).num_classes == 81


def test_stats_of_an_unlabelled_split(workspace, photos):
    add_image_folder(workspace, "photos", photos, split="new")
    stats = split_stats(workspace, "photos", "new", LIMIT)
    assert stats["label_map"]["name"] == "coco80"
    assert stats["totals"]["images"] == 4 and stats["totals"]["annotations"] == 0
    assert all(row["instances"] == 0 for row in stats["classes"])


def test_prepare_refuses_an_unlabelled_split(workspace, photos):
    add_image_folder(workspace, "photos", photos, split="train")
    with pytest.raises(ConfigError, match="photos/train is unlabelled"):
        plan(workspace, PrepareConfig("photos", splits=("train",)), LIMIT)
