"""Dataset statistics on the real demo data: figures checked against independent counts."""

from __future__ import annotations

import collections
import json
import shutil

import numpy as np
import pytest

from cocoseg.pipeline.data.coco import CocoFileError, load_coco
from cocoseg.pipeline.data.labels import IGNORE_INDEX, build_label_map
from cocoseg.pipeline.data.masks import semantic_mask
from cocoseg.pipeline.data.registry import RegistryError, get_dataset, split_report
from cocoseg.pipeline.data.stats import compute_stats, dataset_stats, known_report, split_stats
from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON

LIMIT = 1024**3


@pytest.fixture(scope="module")
def val_stats():
    return compute_stats(DEMO_VAL_JSON, LIMIT)


@pytest.fixture(scope="module")
def full_resolution_shares():
    dataset = load_coco(DEMO_VAL_JSON, DEMO_VAL_IMAGES, LIMIT)
    label_map = build_label_map("coco80", dataset.categories)
    counts = np.zeros(256)
    for image in dataset.images:
        mask = semantic_mask(
            dataset.annotations_by_image[image["id"]], image["height"], image["width"], label_map
        )
        counts += np.bincount(mask.ravel(), minlength=256)
    return counts / counts.sum()


def test_totals_and_per_class_counts_match_the_json(val_stats, demo_val_data):
    annotations = demo_val_data["annotations"]
    assert val_stats["totals"] == {
        "images": 80,
        "annotations": 815,
        "annotations_used": 815,
        "crowd": 11,
        "categories": 80,
        "skipped": {},
    }
    label_map = build_label_map("coco80", demo_val_data["categories"])
    instances = collections.Counter(
        label_map.class_of(a["category_id"]) for a in annotations if not a["iscrowd"]
    )
    images = collections.defaultdict(set)
    for annotation in annotations:
        images[label_map.class_of(annotation["category_id"])].add(annotation["image_id"])
    for row in val_stats["classes"][1:]:
        assert row["instances"] == instances[row["index"]], row["name"]
        assert row["images"] == len(images[row["index"]]), row["name"]
        assert row["small"] + row["medium"] + row["large"] == row["instances"]
    person = val_stats["classes"][1]
    assert person["name"] == "person" and person["instances"] == 209


def test_size_buckets_follow_coco_thresholds(val_stats, demo_val_data):
    areas = [a["area"] for a in demo_val_data["annotations"] if not a["iscrowd"]]
    assert sum(row["small"] for row in val_stats["classes"]) == sum(area < 32**2 for area in areas)
    assert sum(row["large"] for row in val_stats["classes"]) == sum(area >= 96**2 for area in areas)


def test_pixel_share_is_close_to_full_resolution(val_stats, full_resolution_shares):
    shares = np.array([row["pixel_share"] for row in val_stats["classes"]])
    assert np.abs(shares - full_resolution_shares[:81]).max() < 0.003
    assert abs(val_stats["ignore_share"] - full_resolution_shares[IGNORE_INDEX]) < 0.003
    assert abs(shares.sum() + val_stats["ignore_share"] - 1.0) < 1e-9


def test_sizes_objects_and_cooccurrence(val_stats, demo_val_data):
    sizes = collections.Counter((image["width"], image["height"]) for image in demo_val_data["images"])
    assert {(w, h): c for w, h, c in val_stats["image_sizes"]["sizes"]} == dict(sizes)
    per_image = val_stats["objects_per_image"]
    assert sum(per_image) == 80
    assert sum(count * objects for objects, count in enumerate(per_image)) == 815 - 11
    matrix = np.array(val_stats["cooccurrence"])
    assert matrix.shape == (80, 80) and (matrix == matrix.T).all()
    assert [matrix[i, i] for i in range(80)] == [row["images"] for row in val_stats["classes"][1:]]


def test_second_request_comes_from_the_cache_until_the_file_changes(workspace, tmp_path):
    annotations = tmp_path / "val.json"
    shutil.copy(DEMO_VAL_JSON, annotations)
    first = dataset_stats(workspace, annotations, LIMIT)
    second = dataset_stats(workspace, annotations, LIMIT)
    assert first["cached"] is False and second["cached"] is True
    assert {k: v for k, v in first.items() if k != "cached"} == {
        k: v for k, v in second.items() if k != "cached"
    }
    data = json.loads(annotations.read_text())
    data["annotations"] = data["annotations"][:100]
    annotations.write_text(json.dumps(data))
    third = dataset_stats(workspace, annotations, LIMIT)
    assert third["cached"] is False and third["totals"]["annotations"] == 100


def test_key_order_does_not_change_the_result(tmp_path, val_stats, demo_val_data):
    for order in (["annotations", "images", "categories"], ["categories", "annotations", "images"]):
        path = tmp_path / f"{'-'.join(order)}.json"
        path.write_text(json.dumps({key: demo_val_data[key] for key in order}))
        stats = compute_stats(path, LIMIT)
        assert stats["classes"] == val_stats["classes"] and stats["cooccurrence"] == val_stats["cooccurrence"]


def test_category_name_inside_strings_does_not_fool_the_guess(tmp_path, demo_val_data, val_stats):
    data = {
        "images": demo_val_data["images"],
        "annotations": demo_val_data["annotations"],
        "categories": demo_val_data["categories"],
        "info": {"note": '"categories": [{"id": 1, "name": "decoy"}]'},
    }
    path = tmp_path / "decoy.json"
    path.write_text(json.dumps(data))
    assert compute_stats(path, LIMIT)["classes"] == val_stats["classes"]


def test_broken_annotations_are_skipped_and_counted(tmp_path, demo_val_copy):
    annotations = demo_val_copy["annotations"]
    annotations[0]["segmentation"] = [[1.0, 2.0, 3.0, 4.0]]
    annotations[1]["segmentation"] = [[float("nan")] * 6]
    annotations[2]["category_id"] = 999
    annotations[3]["image_id"] = 424242
    annotations[5]["id"] = annotations[4]["id"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(demo_val_copy))
    stats = compute_stats(path, LIMIT)
    assert stats["totals"]["skipped"] == {
        "polygon-four-numbers": 1,
        "coordinate-not-finite": 1,
        "unknown-category": 1,
        "annotation-image-missing": 1,
        "duplicate-annotation-id": 1,
    }
    assert stats["totals"]["annotations_used"] == 815 - 5


def test_label_map_presets(tmp_path):
    voc = compute_stats(DEMO_VAL_JSON, LIMIT, "voc21")
    assert len(voc["classes"]) == 21 and voc["label_map"]["overlap"] == "ignore-any"
    custom = compute_stats(DEMO_VAL_JSON, LIMIT, "custom", ("person", "dog"))
    assert [row["name"] for row in custom["classes"]] == ["background", "person", "dog"]
    assert custom["classes"][1]["instances"] == 209


@pytest.mark.parametrize(
    "content, message",
    [
        ("[]", "not an object"),
        ('{"images": [', "truncated|ends early"),
        ('{"annotations": []}', "no top-level 'images'"),
    ],
)
def test_unusable_files_raise_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CocoFileError, match=message):
        compute_stats(path, LIMIT)


def test_split_stats_reads_a_registered_split_through_the_cache(workspace, val_stats):
    first = split_stats(workspace, "demo", "val", LIMIT, "coco80")
    assert first["totals"] == val_stats["totals"] and first["classes"] == val_stats["classes"]
    assert split_stats(workspace, "demo", "val", LIMIT, "coco80")["cached"] is True
    assert len(split_stats(workspace, "demo", "val", LIMIT, "voc21")["classes"]) == 21
    with pytest.raises(RegistryError, match="no split 'test'"):
        split_stats(workspace, "demo", "test", LIMIT)


def test_known_report_never_validates_and_tolerates_unknown_splits(workspace):
    assert known_report(workspace, "demo", "val", LIMIT) is None  # not checked yet
    checked = split_report(workspace, get_dataset(workspace, "demo"), "val", LIMIT)
    assert known_report(workspace, "demo", "val", LIMIT).to_dict() == checked.to_dict()
    assert known_report(workspace, "demo", "test", LIMIT) is None
    assert known_report(workspace, "nothing", "val", LIMIT) is None


def test_the_cli_and_the_app_share_the_statistics_cache(isolated_home, tmp_path, capsys):
    """``cocoseg data stats`` (default map) fills the key a page asks by name, and the other way round."""
    from cocoseg import cli
    from cocoseg.pipeline.core.workspace import Workspace
    from cocoseg.pipeline.data.registry import add_dataset

    data = json.loads(DEMO_VAL_JSON.read_text())
    for index, category in enumerate(data["categories"], start=1):
        category["name"] = f"class_{index}"
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(data))
    workspace = Workspace(isolated_home).ensure()
    add_dataset(workspace, "mine", mine, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    assert split_stats(workspace, "mine", "val", LIMIT, "all", compute=False) is None
    assert cli.main(["data", "stats", "mine", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)["val"]
    assert printed["label_map"]["name"] == "all" and not printed["cached"]
    cached = split_stats(workspace, "mine", "val", LIMIT, "all", compute=False)
    assert cached is not None and cached["cached"] and cached["totals"] == printed["totals"]
    assert split_stats(workspace, "mine", "val", LIMIT, None, compute=False)["label_map"]["name"] == "all"
    # the app's job computes supercategory by name; the CLI's --labels supercategory finds it
    split_stats(workspace, "mine", "val", LIMIT, "supercategory")
    assert cli.main(["data", "stats", "mine", "--labels", "supercategory", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["val"]["cached"]


def test_categories_found_without_a_parse_are_the_parsers_even_with_a_repeated_id(workspace, demo_val_copy):
    """Prepare and Annotate offer label maps from ``file_categories``; training builds them from the parsed
    split: a repeated category id must be dropped by both, or every later class index shifts."""
    from cocoseg.pipeline.data.stats import file_categories

    demo_val_copy["categories"].append({**demo_val_copy["categories"][3], "name": "again"})
    path = workspace.root / "repeated.json"
    path.write_text(json.dumps(demo_val_copy))
    parsed = load_coco(path, DEMO_VAL_IMAGES, LIMIT)
    found = file_categories(workspace, path, LIMIT)
    assert found == parsed.categories and len(found) == 80
    assert build_label_map("all", found).class_names == build_label_map("all", parsed.categories).class_names
