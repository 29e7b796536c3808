"""Label map presets: class lists, COCO id round trips, palettes, protocols."""

from __future__ import annotations

import pytest

from cocoseg.pipeline.data.labels import (
    COCO_CATEGORIES,
    IGNORE_INDEX,
    VOC_COCO_IDS,
    LabelMapError,
    build_label_map,
    default_label_map,
    label_map_from_dict,
    palette_colour,
)


def test_coco80_has_81_classes_and_round_trips_ids(demo_val_data):
    label_map = build_label_map("coco80", demo_val_data["categories"])
    assert label_map.num_classes == 81 and label_map.class_names[0] == "background"
    for category in demo_val_data["categories"]:
        class_index = label_map.class_of(category["id"])
        assert label_map.class_names[class_index] == category["name"]
        assert label_map.class_to_categories[class_index] == (category["id"],)
    assert label_map.class_of(90) == 80 and label_map.class_of(12) == 0  # 12 is a COCO gap


def test_voc21_mapping_and_protocol(demo_val_data):
    label_map = build_label_map("voc21", demo_val_data["categories"])
    assert label_map.num_classes == 21
    assert [label_map.class_of(coco_id) for coco_id in VOC_COCO_IDS] == list(range(1, 21))
    assert label_map.class_names[15] == "person" and label_map.class_names[1] == "aeroplane"
    assert label_map.class_of(3) == 7  # car
    assert label_map.class_of(10) == 0  # traffic light is not a VOC class
    assert (label_map.crowd, label_map.overlap, label_map.min_train_area) == ("paint", "ignore-any", 1000)


def test_supercategory_groups_coco_into_12(demo_val_data):
    label_map = build_label_map("supercategory", demo_val_data["categories"])
    assert label_map.num_classes == 13
    assert label_map.class_names[1] == "person" and label_map.class_names[2] == "vehicle"
    assert label_map.class_of(2) == label_map.class_of(3) == 2
    assert set(label_map.class_to_categories[2]) == {2, 3, 4, 5, 6, 7, 8, 9}


def test_custom_keeps_listed_names_in_order(demo_val_data):
    label_map = build_label_map("custom", demo_val_data["categories"], ["dog", "person"])
    assert label_map.class_names == ("background", "dog", "person")
    assert label_map.class_of(18) == 1 and label_map.class_of(1) == 2 and label_map.class_of(3) == 0
    with pytest.raises(LabelMapError, match="unicorn"):
        build_label_map("custom", demo_val_data["categories"], ["unicorn"])
    with pytest.raises(LabelMapError):
        build_label_map("custom", demo_val_data["categories"], [])


@pytest.mark.parametrize("ids", [[0, 1, 2], [3, 5, 7, 10]])
def test_all_preset_for_non_coco_ids(ids):
    categories = [{"id": category_id, "name": f"thing{category_id}"} for category_id in ids]
    label_map = default_label_map(categories)
    assert label_map.name == "all" and label_map.num_classes == len(ids) + 1
    assert [label_map.class_of(category_id) for category_id in ids] == list(range(1, len(ids) + 1))
    assert {ids_[0] for ids_ in label_map.class_to_categories.values()} == set(ids)
    with pytest.raises(LabelMapError, match="coco80"):
        build_label_map("coco80", categories)


def test_default_is_coco80_for_coco_categories(demo_val_data):
    assert default_label_map(demo_val_data["categories"]).name == "coco80"


def test_no_categories_still_give_the_coco_presets():
    """An unlabelled split has no categories; the presets that name COCO ids do not need any."""
    assert default_label_map([]).name == "coco80"
    assert build_label_map("voc21", []).num_classes == 21
    assert build_label_map("coco80", []).num_classes == 81
    with pytest.raises(LabelMapError, match="needs the dataset's categories"):
        build_label_map("all", [])


def test_palette_is_stable_and_distinct():
    colours = [palette_colour(index) for index in range(81)]
    assert colours[0] == (0, 0, 0)
    assert colours[1] == (128, 0, 0) and colours[2] == (0, 128, 0) and colours[15] == (192, 128, 128)
    assert len(set(colours)) == 81


def test_unknown_preset_and_bad_protocol():
    with pytest.raises(LabelMapError, match="unknown label map preset"):
        build_label_map("nope", [])
    label_map = build_label_map("coco80")
    with pytest.raises(ValueError):
        label_map.with_protocol(overlap="sideways")


def test_to_dict_is_json_ready():
    payload = build_label_map("voc21").to_dict()
    assert payload["ignore_index"] == IGNORE_INDEX
    assert payload["classes"][15] == {
        "index": 15,
        "name": "person",
        "color": [192, 128, 128],
        "coco_ids": [1],
    }
    assert len(COCO_CATEGORIES) == 80


def test_same_classes_compares_meaning_not_the_name():
    categories = [
        {"id": 1, "name": "person", "supercategory": "person"},
        {"id": 2, "name": "bicycle", "supercategory": "vehicle"},
        {"id": 3, "name": "car", "supercategory": "vehicle"},
    ]
    voc = build_label_map("voc21", categories)
    assert voc.same_classes(label_map_from_dict(voc.to_dict()))
    renamed = label_map_from_dict({**voc.to_dict(), "name": "my-voc"})
    assert renamed.same_classes(voc)  # a renamed copy gives masks the same meaning
    custom = build_label_map("custom", categories, ["person", "car"])
    assert not custom.same_classes(voc)
    moved = voc.to_dict()
    moved["classes"][1]["coco_ids"] = [2]  # same names, but class 1 now comes from another COCO category
    assert not label_map_from_dict(moved).same_classes(voc)


def test_default_preset_follows_the_dataset(demo_val_data):
    """One rule for every page and the CLI: coco80 for COCO's ids and names (or no categories), else all."""
    from cocoseg.pipeline.data.labels import default_preset, fitting_presets

    coco = demo_val_data["categories"]
    renamed = [{**category, "name": f"class_{index}"} for index, category in enumerate(coco, start=1)]
    shifted = [{**category, "id": category["id"] + 1000} for category in coco]  # COCO's names, not its ids
    assert default_preset(coco) == "coco80"
    assert default_preset([{"id": 1, "name": "person"}]) == "coco80"  # a subset of COCO's is COCO's
    assert default_preset(renamed) == "all"
    assert default_preset(shifted) == "all"
    assert default_preset([]) == "coco80"  # an unlabelled folder gets COCO's classes
    assert default_label_map(renamed).name == "all" and default_label_map(coco).name == "coco80"
    # pages offer only presets that build, so their default is never an error
    assert fitting_presets(coco) == ["coco80", "voc21", "supercategory", "all"]
    assert fitting_presets(renamed) == ["supercategory", "all"]
    assert fitting_presets(renamed, with_custom=True) == ["supercategory", "all", "custom"]
    for categories in (coco, renamed, shifted, []):
        assert default_preset(categories) in fitting_presets(categories)
        build_label_map(default_preset(categories), categories)
