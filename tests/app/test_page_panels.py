"""Builders the Explore, Segment, Evaluate, Compare and Annotate pages share or moved out of their pages:
the split chooser, leaderboard rows, variant labels, the image browser's page label and the click-to-mask
status line."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from cocoseg.app.components.annotate_panels import tool_status
from cocoseg.app.components.choosers import default_split, parse_split, split_choices
from cocoseg.app.components.evaluate_panels import evaluated_splits, selected_models, table_rows
from cocoseg.app.components.explore_panels import page_label
from cocoseg.app.components.segment_panels import variant_options
from cocoseg.pipeline.annotation.interactive import ELLIPSE_NOTE
from cocoseg.pipeline.data.registry import list_datasets
from cocoseg.pipeline.data.thumbnails import ImagePage
from cocoseg.pipeline.inference.model_store import ModelEntry


def test_split_choices_default_to_the_demo_val_split(workspace):
    choices = split_choices(list_datasets(workspace))
    assert choices == ["demo/train", "demo/val"] and default_split(choices) == "demo/val"
    assert default_split(["mine/test"]) == "mine/test" and default_split([]) is None
    assert parse_split("mine/test") == ("mine", "test") and parse_split(None) == ("demo", "val")


def test_leaderboard_rows_are_percent_with_notes_and_keys():
    row = {
        "model": "pair",
        "kind": "ensemble",
        "variant": "fp32",
        "dataset": "demo",
        "split": "val",
        "images": 6,
        "image_limit": 6,
        "miou": 0.51234,
        "mean_dice": None,
        "pixel_accuracy": 0.9,
        "frequency_weighted_iou": 0.8,
        "stale": True,
        "members": ["a", "b"],
    }
    (shown,) = table_rows([row])
    assert shown["id"] == "pair|fp32|6" and shown["miou"] == 51.23 and shown["mean_dice"] is None
    assert shown["note"] == "stale: model file changed; first 6 images only; members: a, b"
    assert evaluated_splits([row, row]) == ["demo/val"]
    data = [{"model": "a"}, {"model": "b"}, {"model": "a"}]
    assert selected_models([2, 0, 1, 7], data) == ["a", "b"] and selected_models(None, None) == []


def test_variant_labels_say_device_cost_and_advice():
    card = {
        "kind": "exported",
        "variants": {
            "int8": {"device": "CPU", "miou_delta_points": -0.42, "recommended": True},
            "fp16": {"device": "GPU", "miou_delta_points": -2.5, "recommended": False},
        },
    }
    assert [option["label"] for option in variant_options(ModelEntry(Path("m"), card))] == [
        "FP32",
        "INT8 (CPU, -0.4 mIoU pts)",
        "FP16 (GPU, -2.5 mIoU pts, not recommended)",
    ]
    card["variants"]["int8"]["miou_delta_points"] = -0.04  # rounds to nothing: no "-0.0"
    assert variant_options(ModelEntry(Path("m"), card))[1]["label"] == "INT8 (CPU, ±0.0 mIoU pts)"


def test_the_image_browser_says_where_it_is():
    assert page_label(ImagePage([(1, "a.jpg")], 1, 5, 49)) == "49 images · page 2 of 5"
    assert page_label(ImagePage([], 0, 1, 0)) == "no image has these classes"


def test_the_click_to_mask_status_gives_the_time_and_any_note_the_tool_left():
    outcome = SimpleNamespace(seconds=0.0123, total_seconds=0.0456, changed_pixels=5120, note=None)
    status = tool_status("box", outcome)
    assert status == "Box → mask: 12 ms (46 ms with the layers), 5,120 pixels changed. Ctrl+Z undoes it."
    first, space, note = tool_status("box", SimpleNamespace(**vars(outcome) | {"note": ELLIPSE_NOTE}))
    assert (first, space, note.children) == (status, " ", ELLIPSE_NOTE)
    assert note.className == "text-warning-emphasis"  # the muted line would hide it
