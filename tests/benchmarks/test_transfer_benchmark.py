"""The transfer benchmark's data: the labels it holds back, and the dataset that lacks them."""

from __future__ import annotations

from benchmarks.transfer import CLASSES, DATASET, LIMIT, TRAIN_JSON, _correct, _held_back, _register_missing
from cocoseg.pipeline.annotation.store import saved_images
from cocoseg.pipeline.data.coco import read_coco_json
from cocoseg.pipeline.data.registry import cached_split


def _person_area(data: dict) -> dict[int, float]:
    person = {item["id"] for item in data["categories"] if item["name"] in CLASSES}
    area: dict[int, float] = {}
    for item in data["annotations"]:
        if item["category_id"] in person:
            area[item["image_id"]] = area.get(item["image_id"], 0.0) + item["area"]
    return area


def test_the_held_back_images_are_those_with_most_person_area():
    data = read_coco_json(TRAIN_JSON, LIMIT)
    held_back = _held_back(data, 10)
    area = _person_area(data)
    chosen = [area.get(image["id"], 0.0) for image in held_back]
    others = [area.get(image["id"], 0.0) for image in data["images"] if image not in held_back]
    assert len(held_back) == 10 and min(chosen) > 0 and min(chosen) >= max(others)


def test_demo_missing_lacks_exactly_their_labels_and_the_corrections_restore_them(workspace):
    data = read_coco_json(TRAIN_JSON, LIMIT)
    held_back = _held_back(data, 10)
    _register_missing(workspace, held_back)
    train = cached_split(workspace, DATASET, "train", LIMIT)
    dropped = {image["id"] for image in held_back}
    assert len(train.images) == len(data["images"])  # the images stay; their labels go
    kept = {item["id"] for item in train.annotations}
    demo = cached_split(workspace, "demo", "train", LIMIT)
    assert kept == {item["id"] for item in demo.annotations if item["image_id"] not in dropped}
    assert len(kept) < len(demo.annotations)
    assert len(cached_split(workspace, DATASET, "val", LIMIT).images) == 80
    _correct(workspace, held_back)
    saved = {image["file_name"] for image in saved_images(workspace, DATASET)}
    assert saved == {image["file_name"] for image in held_back}
