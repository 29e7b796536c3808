"""Preparation: shards + manifest, identical masks, no-op re-runs, safe failures."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil

import numpy as np
import pytest

from cocoseg.errors import ConfigError
from cocoseg.pipeline.core.tf_runtime import tensorflow
from cocoseg.pipeline.data.coco import load_coco
from cocoseg.pipeline.data.geometry import resize_image, resize_mask
from cocoseg.pipeline.data.images import read_rgb
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.data.masks import semantic_mask
from cocoseg.pipeline.data.registry import add_dataset
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.plan import dry_run
from cocoseg.pipeline.prepare.sets import PrepareError, find_prepared, list_prepared
from cocoseg.pipeline.prepare.tfrecord import ShardedWriter, list_shards
from cocoseg.pipeline.prepare.writer import prepare
from tests.conftest import DEMO_TRAIN_IMAGES, DEMO_TRAIN_JSON, DEMO_VAL_IMAGES, DEMO_VAL_JSON
from tests.pipeline.conftest import LIMIT, PREPARED_CONFIG
from tests.waiting import pool_workers


def _records(folder, split):
    from cocoseg.pipeline.training.input import decode_record

    tf = tensorflow()
    for record in tf.data.TFRecordDataset([str(path) for path in list_shards(folder, split)]):
        example = decode_record(record)
        yield (
            int(example["id"]),
            example["image"].numpy(),
            example["mask"].numpy(),
            sorted(example["classes"].numpy().tolist()),
        )


@pytest.mark.parametrize(
    "split, annotations, images",
    [("train", DEMO_TRAIN_JSON, DEMO_TRAIN_IMAGES), ("val", DEMO_VAL_JSON, DEMO_VAL_IMAGES)],
)
def test_read_back_masks_equal_pipeline_masks(prepared_demo, split, annotations, images):
    dataset = load_coco(annotations, images, LIMIT)
    label_map = build_label_map("voc21", dataset.categories)
    seen = 0
    for image_id, image, mask, classes in _records(prepared_demo.folder, split):
        info = dataset.image_by_id[image_id]
        expected = resize_mask(
            semantic_mask(dataset.annotations_by_image[image_id], info["height"], info["width"], label_map),
            128,
            "stretch",
        )
        np.testing.assert_array_equal(mask, expected)
        assert classes == sorted(int(value) for value in np.unique(expected) if 0 < value < 255)
        reference = resize_image(read_rgb(dataset.image_path(info)), 128, "stretch")
        squared_error = ((image.astype(float) - reference.astype(float)) ** 2).mean()
        assert (
            10 * np.log10(255**2 / squared_error) > 30
        )  # PSNR of JPEG q90 at 128 px: same picture, same place
        seen += 1
    assert seen == prepared_demo.manifest["splits"][split]["examples"]


def test_manifest_counts(prepared_demo):
    manifest = prepared_demo.manifest
    train, val = manifest["splits"]["train"], manifest["splits"]["val"]
    assert manifest["label_map"]["name"] == "voc21" and manifest["config"]["size"] == 128
    assert train["shards"] == [f"train-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert train["examples"] + train["skipped"]["labelled-area"] == 80  # torchvision's > 1000 px filter
    assert val["examples"] == 80 and val["skipped"] == {}
    for summary in (train, val):
        assert sum(summary["class_pixels"]) + summary["ignore_pixels"] == summary["examples"] * 128 * 128
    assert manifest["sources"]["val"]["sha256"] and "sampling" in train and "sampling" not in val
    assert (prepared_demo.folder / "manifest.json").stat().st_mode & 0o777 == 0o644


def test_same_config_is_a_no_op_and_a_new_config_a_new_set(prepared_workspace, prepared_demo):
    stamp = (prepared_demo.folder / "manifest.json").stat().st_mtime_ns
    again = prepare(prepared_workspace, PREPARED_CONFIG, LIMIT)
    assert again.reused and again.folder == prepared_demo.folder
    assert (prepared_demo.folder / "manifest.json").stat().st_mtime_ns == stamp
    other = prepare(
        prepared_workspace,
        PrepareConfig("demo", splits=("val",), labels="supercategory", size=64, shards=1, workers=1),
        LIMIT,
    )
    assert other.folder != prepared_demo.folder and not other.reused
    assert other.manifest["splits"]["val"]["examples"] == 80
    assert {item.name for item in list_prepared(prepared_workspace)} >= {prepared_demo.name, other.name}


def _copy_val(tmp_path, change=None):
    images = tmp_path / "images"
    shutil.copytree(DEMO_VAL_IMAGES, images)
    data = json.loads(DEMO_VAL_JSON.read_text())
    if change:
        change(data, images)
    annotations = tmp_path / "val.json"
    annotations.write_text(json.dumps(data))
    return annotations, images


def test_changed_source_writes_a_new_set(workspace, tmp_path):
    annotations, images = _copy_val(tmp_path)
    add_dataset(workspace, "copy", annotations, images, split="val", max_bytes=LIMIT)
    config = PrepareConfig("copy", splits=("val",), labels="voc21", size=64, shards=1, workers=1)
    first = prepare(workspace, config, LIMIT)
    data = json.loads(annotations.read_text())
    data["annotations"] = data["annotations"][1:]
    annotations.write_text(json.dumps(data))
    second = prepare(workspace, config, LIMIT)
    assert second.folder != first.folder and (first.folder / "manifest.json").is_file()


def test_a_dataset_with_a_64_character_name_is_prepared_and_found(workspace):
    name = "d" * 64  # the longest name README allows
    add_dataset(workspace, name, DEMO_VAL_JSON, DEMO_VAL_IMAGES, split="val", max_bytes=LIMIT)
    config = PrepareConfig(name, splits=("val",), labels="supercategory", size=2048, shards=1, workers=1)
    planned = dry_run(workspace, config, LIMIT)["folder"]
    assert len(os.path.basename(planned)) > 64  # the set's folder name is longer than any name typed
    written = prepare(workspace, dataclasses.replace(config, size=64), LIMIT)
    assert find_prepared(workspace, written.name).folder == written.folder
    assert [item.name for item in list_prepared(workspace)] == [written.name]


def test_corrupt_and_missing_images_are_skipped_and_counted(workspace, tmp_path):
    def damage(data, images):
        truncated = images / data["images"][0]["file_name"]
        truncated.write_bytes(truncated.read_bytes()[:2000])
        (images / data["images"][1]["file_name"]).unlink()

    annotations, images = _copy_val(tmp_path, damage)
    add_dataset(workspace, "damaged", annotations, images, split="val", max_bytes=LIMIT)
    prepared = prepare(
        workspace,
        PrepareConfig("damaged", splits=("val",), labels="voc21", size=64, shards=2, workers=2),
        LIMIT,
    )
    summary = prepared.manifest["splits"]["val"]
    assert summary["examples"] == 78
    assert summary["skipped"] == {"unreadable-image": 1}
    assert (
        summary["skipped_examples"][0]["reason"] == "unreadable-image"
        and "truncated" in summary["skipped_examples"][0]["detail"]
    )
    assert (
        summary["left_out_by_validation"] == 1 and summary["validation"]["checks"]["missing-image-file"] == 1
    )


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"size": 0}, "size"),
        ({"size": 100}, "size"),
        ({"labels": "nope"}, "labels"),
        ({"labels": "custom"}, "classes"),
        ({"resize": "squash"}, "resize"),
        ({"shards": 0}, "shards"),
        ({"quality": 0}, "quality"),
        ({"dataset": "../x"}, "dataset"),
        ({"splits": ()}, "splits"),
        ({"min_labelled_area": -1.0}, "min_labelled_area"),
        ({"encoding": "gif"}, "encoding"),
    ],
)
def test_invalid_config_names_the_field(changes, field):
    with pytest.raises(ConfigError) as raised:
        PrepareConfig(**{"dataset": "demo", **changes})
    assert raised.value.field == field and str(raised.value).startswith(f"{field}:")


def test_unknown_custom_class_or_split_fails_before_any_work(workspace):
    with pytest.raises(ConfigError, match="classes: .*unicorn"):
        prepare(
            workspace, PrepareConfig("demo", labels="custom", classes=("person", "unicorn"), size=64), LIMIT
        )
    with pytest.raises(ConfigError, match="splits: .*no split 'test'"):
        prepare(workspace, PrepareConfig("demo", splits=("test",), size=64), LIMIT)
    assert not workspace.prepared_dir.exists() or not any(workspace.prepared_dir.iterdir())


def _previous_set(workspace):
    return prepare(
        workspace, PrepareConfig("demo", splits=("val",), labels="voc21", size=64, shards=1, workers=1), LIMIT
    )


def _assert_nothing_new(workspace, previous):
    assert [path.name for path in workspace.prepared_dir.iterdir()] == [previous.folder.name]
    assert (previous.folder / "manifest.json").is_file() and previous.manifest["splits"]["val"][
        "examples"
    ] == 80


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_run_publishes_nothing(workspace, workers):
    previous = _previous_set(workspace)

    def interrupt(done, total):
        if done == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(
            workspace,
            PrepareConfig("demo", labels="voc21", size=64, shards=2, workers=workers),
            LIMIT,
            interrupt,
        )
    _assert_nothing_new(workspace, previous)
    workers_left = pool_workers()
    assert not workers_left  # the pool is gone, queued images cancelled (the resource tracker may stay)


def test_killed_worker_publishes_nothing(workspace):
    previous = _previous_set(workspace)

    def kill_a_worker(done, total):
        if done == 5:
            workers = pool_workers()
            assert workers, "expected worker processes"
            os.kill(workers[-1].pid, 9)

    with pytest.raises(PrepareError, match="worker process died"):
        prepare(
            workspace,
            PrepareConfig("demo", labels="voc21", size=64, shards=2, workers=2),
            LIMIT,
            kill_a_worker,
        )
    _assert_nothing_new(workspace, previous)


def test_disk_full_publishes_nothing(workspace, monkeypatch):
    previous = _previous_set(workspace)
    calls = {"count": 0}
    original = ShardedWriter.write

    def write_until_full(self, record):
        calls["count"] += 1
        if calls["count"] > 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, record)

    monkeypatch.setattr(ShardedWriter, "write", write_until_full)
    with pytest.raises(PrepareError, match="No space left on device"):
        prepare(workspace, PrepareConfig("demo", labels="voc21", size=64, shards=2, workers=1), LIMIT)
    _assert_nothing_new(workspace, previous)


def test_dry_run_reports_distribution_without_writing(workspace):
    from cocoseg.pipeline.prepare.sampling import SamplingConfig

    result = dry_run(
        workspace,
        PrepareConfig("demo", labels="voc21", size=64, sampling=SamplingConfig("repeat-factor", 0.2)),
        LIMIT,
    )
    train = result["splits"]["train"]
    assert train["images"] + train["filtered_by_area"] == 80 and train["filtered_by_area"] > 0
    before, after = train["distribution"]["before"], train["distribution"]["after"]
    assert after["epoch_images"] > before["epoch_images"] == train["images"]
    person = 15
    rare = min(range(1, 21), key=lambda index: before["images"][index] or 1e9)
    assert after["images"][rare] / after["epoch_images"] > before["images"][rare] / before["epoch_images"]
    assert after["images"][person] / sum(after["images"]) < before["images"][person] / sum(before["images"])
    assert not workspace.prepared_dir.exists() or not any(workspace.prepared_dir.iterdir())
