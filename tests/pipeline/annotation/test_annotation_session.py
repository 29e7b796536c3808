"""One annotation session on the real demo data (cocoseg.pipeline.annotation.session): open, start, draw,
save, reopen; the Annotate page's callbacks are short calls into these functions."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cocoseg.pipeline import annotation
from cocoseg.pipeline.annotation.canvas import DRAWABLE_TYPES
from cocoseg.pipeline.annotation.session import (
    BASE_LAYER,
    DATASET_LAYER,
    check_model_label_map,
)
from cocoseg.pipeline.annotation.store import annotations_file, load_saved
from cocoseg.pipeline.annotation.strokes import CanvasGeometry, class_colours, strokes_to_mask
from cocoseg.pipeline.data.images import UploadedImage, read_rgb
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.data.masks import semantic_mask
from cocoseg.pipeline.inference.model_store import CARD_FILE, get_entry
from cocoseg.pipeline.inference.uploads import load_result
from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON, LIMIT
from tests.pipeline.annotation.test_annotations import rectangle

CANVAS_WIDTH = 540  # the page's
VOC = build_label_map("voc21")
CAT = 8  # voc21 class index
NAME = "000000532481.jpg"  # 640 x 426
SELECTION = annotation.Selection("demo/val", "voc21", LIMIT)


def colour(index: int) -> str:
    return "#{:02x}{:02x}{:02x}".format(*VOC.palette[index])


def picture(width: int = 640, height: int = 426) -> dict:
    """The background picture as dash-canvas writes it: fitted to the canvas width, scale in two decimals."""
    fitted = round(height * CANVAS_WIDTH / width) / height
    return {
        "type": "image",
        "left": 0,
        "top": 0,
        "width": width,
        "height": height,
        "scaleX": round(fitted, 2),
    }


def ellipse(left, top, rx, ry, fill) -> dict:
    return {
        "type": "ellipse",
        "originX": "left",
        "originY": "top",
        "left": left,
        "top": top,
        "rx": rx,
        "ry": ry,
        "fill": fill,
        "stroke": None,
        "strokeWidth": 0,
    }


def canvas(*objects) -> str:
    return json.dumps({"objects": [picture(), *objects]})


def own_mask(file_name: str = NAME) -> np.ndarray:
    """The demo image's voc21 mask, computed here straight from the real annotations."""
    data = json.loads(DEMO_VAL_JSON.read_text())
    image = next(item for item in data["images"] if item["file_name"] == file_name)
    annotations = [item for item in data["annotations"] if item["image_id"] == image["id"]]
    return semantic_mask(annotations, image["height"], image["width"], VOC)


def test_opening_a_dataset_image_keeps_its_own_annotations_as_a_mask(workspace):
    opened = annotation.open_dataset_image(workspace, SELECTION, NAME)
    assert (opened.collection, opened.file_name, opened.width, opened.height) == ("demo", NAME, 640, 426)
    assert opened.source == str(DEMO_VAL_IMAGES / NAME)
    assert opened.dataset_mask and not opened.base and opened.version == ""  # nothing saved yet
    kept = load_result(workspace, opened.key, DATASET_LAYER, "mask")
    assert np.array_equal(kept, own_mask()) and (kept == 15).any()  # a person
    shown = annotation.preview_layer(workspace, opened, None, SELECTION, CANVAS_WIDTH)
    assert shown.from_dataset and np.array_equal(shown.mask, kept) and shown.label_map.name == "voc21"
    assert annotation.image_names(workspace, SELECTION)[0] == NAME
    with pytest.raises(ValueError, match="nowhere.jpg is not an image of demo/val"):
        annotation.open_dataset_image(workspace, SELECTION, "nowhere.jpg")


def test_the_store_holds_the_same_json_as_before():
    opened = annotation.OpenImage("k" * 22, "upload", "uploads", "a.png", 40, 30)
    stored = json.loads(json.dumps(opened.to_dict()))
    assert set(stored) == {
        "key",
        "source",
        "collection",
        "file_name",
        "width",
        "height",
        "base",
        "dataset_mask",
        "version",
        "layer",
        "prediction",
        "uncertainty",
    }
    assert annotation.OpenImage.from_dict(stored) == opened
    older = {key: value for key, value in stored.items() if key not in ("layer", "prediction", "uncertainty")}
    assert annotation.OpenImage.from_dict(older) == opened  # a page loaded before click-to-mask
    assert opened.canvas_height(CANVAS_WIDTH) == 405


def test_has_strokes_counts_every_drawable_type_and_never_the_picture():
    assert annotation.has_strokes(canvas(ellipse(10, 10, 5, 3, colour(CAT))))  # the page once missed it
    for kind in DRAWABLE_TYPES:
        assert annotation.has_strokes(json.dumps({"objects": [picture(), {"type": kind}]})), kind
    assert not annotation.has_strokes(canvas())  # the background picture alone
    assert not annotation.has_strokes(json.dumps({"objects": [{"type": "triangle"}]}))
    assert not annotation.has_strokes(None) and not annotation.has_strokes("")
    assert not annotation.has_strokes("{not json")


def test_the_result_paints_strokes_over_the_starting_layer(workspace):
    opened = annotation.start_from_dataset(
        workspace, annotation.open_dataset_image(workspace, SELECTION, NAME)
    )
    assert opened.base
    base = own_mask()
    drawing = canvas(rectangle(100, 100, 54, 36, colour(CAT)), ellipse(300, 200, 20, 10, colour(CAT)))
    mask = annotation.result_mask(workspace, opened, drawing, VOC, CANVAS_WIDTH)
    scale = 640 / CANVAS_WIDTH
    assert mask[round(118 * scale), round(127 * scale)] == CAT  # inside the rectangle
    assert mask[round(210 * scale), round(320 * scale)] == CAT  # the ellipse's centre
    untouched = mask != CAT
    assert np.array_equal(mask[untouched], base[untouched]) and not (base == CAT).any()
    expected = strokes_to_mask(drawing, CanvasGeometry(640, 426, CANVAS_WIDTH, 359), class_colours(VOC), base)
    assert np.array_equal(mask, expected)
    shown = annotation.preview_layer(workspace, opened, drawing, SELECTION, CANVAS_WIDTH)
    assert np.array_equal(shown.mask, mask) and not shown.from_dataset


def test_save_then_reopen_restores_the_mask(workspace):
    opened = annotation.open_dataset_image(workspace, SELECTION, NAME)
    drawing = canvas(ellipse(200, 150, 40, 30, colour(CAT)))
    drawn = annotation.result_mask(workspace, opened, drawing, VOC, CANVAS_WIDTH)
    saved = annotation.save(workspace, opened, drawing, SELECTION, CANVAS_WIDTH)
    assert len(saved.version) == 64 and (saved.file_name, saved.source) == (NAME, opened.source)
    assert np.array_equal(load_saved(workspace, "demo", NAME, VOC), drawn)
    assert [row["file_name"] for row in annotation.saved_images(workspace, "demo")] == [NAME]

    again = annotation.reopen_saved(workspace, "demo", NAME, SELECTION)
    assert again.base and again.version == saved.version and again.key != opened.key
    assert np.array_equal(load_result(workspace, again.key, BASE_LAYER, "mask"), drawn)
    background, height = annotation.canvas_view(workspace, again, SELECTION, CANVAS_WIDTH)
    assert background != again.key and height == 359  # the saved mask is blended into the picture
    untouched = annotation.save(workspace, again, canvas(), SELECTION, CANVAS_WIDTH)  # nothing drawn: base
    assert np.array_equal(load_saved(workspace, "demo", NAME, VOC), drawn) and untouched.version
    reopened = annotation.open_dataset_image(workspace, SELECTION, NAME)  # from the dataset list, too
    assert reopened.base and reopened.dataset_mask
    with pytest.raises(ValueError, match="other.jpg is not among the saved images of demo"):
        annotation.reopen_saved(workspace, "demo", "other.jpg", SELECTION)


def test_a_stale_version_is_refused_and_nothing_is_written(workspace):
    first = annotation.open_dataset_image(workspace, SELECTION, NAME)
    second = annotation.open_dataset_image(workspace, SELECTION, NAME)  # another tab
    annotation.save(workspace, first, canvas(ellipse(200, 150, 40, 30, colour(CAT))), SELECTION, CANVAS_WIDTH)
    before = annotations_file(workspace, "demo").read_bytes()
    with pytest.raises(annotation.VersionConflict, match="changed since you opened it: reload"):
        annotation.save(
            workspace, second, canvas(rectangle(10, 10, 50, 50, colour(CAT))), SELECTION, CANVAS_WIDTH
        )
    assert annotations_file(workspace, "demo").read_bytes() == before


def test_an_empty_canvas_without_a_starting_layer_is_not_saved(workspace):
    opened = annotation.open_dataset_image(workspace, SELECTION, NAME)
    with pytest.raises(annotation.AnnotationError, match="nothing to save: the canvas is empty"):
        annotation.save(workspace, opened, canvas(), SELECTION, CANVAS_WIDTH)
    assert not annotations_file(workspace, "demo").exists()


def test_an_upload_is_kept_in_the_workspace_when_saved(workspace):
    pixels = read_rgb(DEMO_VAL_IMAGES / NAME)
    opened = annotation.open_upload(workspace, UploadedImage(pixels, "photo.png", "PNG"), SELECTION)
    assert (opened.source, opened.collection, opened.dataset_mask) == ("upload", "uploads", False)
    assert annotation.start_from_dataset(workspace, opened) is None  # uploads have no annotations
    saved = annotation.save(workspace, opened, canvas(ellipse(200, 150, 40, 30, colour(CAT))), SELECTION, 540)
    kept = workspace.annotations_dir / "uploads-images" / saved.file_name
    assert saved.source == str(kept) and kept.is_file() and saved.file_name.startswith("upload-")
    assert annotation.collection_of(saved, "demo/val") == "uploads"
    assert annotation.collection_of(None, "demo/train") == "demo"


def _publish_card(workspace, name: str, label_map) -> None:
    """A model card as export writes it, as far as pre-filling reads it before running the model."""
    folder = workspace.models_dir / name
    folder.mkdir(parents=True)
    card = {"kind": "exported", "label_map": label_map.to_dict(), "file": "model.onnx", "sha256": "0" * 64}
    (folder / CARD_FILE).write_text(json.dumps(card))


def test_prefill_is_refused_for_a_model_of_another_label_map(workspace):
    _publish_card(workspace, "coco-model", build_label_map("coco80"))
    opened = annotation.open_dataset_image(workspace, SELECTION, NAME)
    with pytest.raises(
        ValueError,
        match="coco-model predicts the coco80 label map; choose that label map to pre-fill with it",
    ):
        annotation.prefill(workspace, opened, "coco-model", SELECTION)
    assert load_result(workspace, opened.key, BASE_LAYER, "mask") is None


def test_the_model_check_compares_classes_not_names_and_counts(workspace):
    """A renamed copy of voc21 pre-fills; same name and class count but other classes does not."""
    _publish_card(workspace, "voc-model", VOC)
    entry = get_entry(workspace, "voc-model")
    check_model_label_map(entry, dataclasses.replace(VOC, name="my-voc"))
    shuffled = dataclasses.replace(VOC, class_names=(VOC.class_names[0], *reversed(VOC.class_names[1:])))
    assert shuffled.name == entry.label_map().name and shuffled.num_classes == VOC.num_classes
    with pytest.raises(ValueError, match="voc-model predicts the voc21 label map"):
        check_model_label_map(entry, shuffled)
