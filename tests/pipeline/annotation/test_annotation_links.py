"""Deep links into Annotate (cocoseg.pipeline.annotation.links) on the real demo data: what opens, and the
one line that says why a bad link opens nothing."""

from __future__ import annotations

import json

import pytest

from cocoseg.pipeline import annotation
from cocoseg.pipeline.annotation.links import matching_preset
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.data.registry import add_dataset
from cocoseg.pipeline.inference.model_store import CARD_FILE
from tests.conftest import DEMO_TRAIN_IMAGES, DEMO_VAL_IMAGES, DEMO_VAL_JSON, LIMIT

PRESETS = ("coco80", "voc21", "supercategory", "all")  # what the page offers
VAL_IMAGE = sorted(DEMO_VAL_IMAGES.glob("*.jpg"))[0].name
TRAIN_IMAGE = sorted(DEMO_TRAIN_IMAGES.glob("*.jpg"))[0].name


def publish_card(workspace, name: str, label_map) -> None:
    """A model card, as far as checking a link reads it (the model itself never runs here)."""
    folder = workspace.models_dir / name
    folder.mkdir(parents=True)
    card = {"kind": "exported", "label_map": label_map.to_dict(), "file": "model.onnx", "sha256": "0" * 64}
    (folder / CARD_FILE).write_text(json.dumps(card))


def resolve(workspace, **query):
    return annotation.resolve_link(workspace, query, LIMIT, PRESETS)


def test_a_plain_visit_is_no_link_and_other_parameters_are_ignored(workspace):
    assert resolve(workspace) is None
    assert resolve(workspace, tab="2", utm_source="review") is None
    linked = resolve(workspace, dataset="demo", split="val", image=VAL_IMAGE, tab="2")
    assert linked == annotation.LinkRequest("demo", "val", VAL_IMAGE, preset="coco80")


def test_a_link_without_a_model_opens_the_image_with_the_split_s_default_label_map(workspace, tmp_path):
    linked = resolve(workspace, dataset="demo", split="val", image=VAL_IMAGE)
    assert (linked.choice, linked.image, linked.model, linked.preset) == ("demo/val", VAL_IMAGE, "", "coco80")
    assert annotation.LinkRequest.from_dict(linked.to_dict()) == linked
    assert set(linked.to_dict()) == {"dataset", "split", "image", "model", "preset"}  # names only
    # categories that are not COCO's: labels.default_preset's "all" (voc21 would refuse to open them)
    data = json.loads(DEMO_VAL_JSON.read_text())
    for category in data["categories"]:
        category["name"] = f"class_{category['id']}"
    (tmp_path / "own.json").write_text(json.dumps(data))
    add_dataset(workspace, "own", tmp_path / "own.json", DEMO_VAL_IMAGES, split="val")
    assert resolve(workspace, dataset="own", split="val", image=VAL_IMAGE).preset == "all"


def test_a_model_of_the_page_label_map_keeps_it(workspace):
    publish_card(workspace, "voc-model", build_label_map("voc21"))
    linked = resolve(workspace, dataset="demo", split="val", image=VAL_IMAGE, model="voc-model")
    assert (linked.model, linked.preset) == ("voc-model", "voc21")


def test_a_model_of_another_offered_label_map_chooses_that_one(workspace):
    publish_card(workspace, "coco-model", build_label_map("coco80"))
    linked = resolve(workspace, dataset="demo", split="val", image=VAL_IMAGE, model="coco-model")
    assert (linked.model, linked.preset) == ("coco-model", "coco80")


def test_a_model_whose_classes_no_offered_label_map_gives_is_refused(workspace):
    categories = json.loads(DEMO_VAL_JSON.read_text())["categories"]
    publish_card(workspace, "pets", build_label_map("custom", categories, names=["cat", "dog"]))
    with pytest.raises(
        ValueError,
        match=r"pets predicts the custom label map, which no label map offered here \(coco80, voc21, "
        r"supercategory, all\) gives for demo/val; pre-fill with another model",
    ):
        resolve(workspace, dataset="demo", split="val", image=VAL_IMAGE, model="pets")
    assert matching_preset(build_label_map("coco80"), categories, ("voc21",)) is None  # not offered


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"dataset": "nope", "split": "val", "image": VAL_IMAGE},
            "no dataset called 'nope'; registered: demo. Add one with 'cocoseg data add'",
        ),
        (
            {"dataset": "demo", "split": "test", "image": VAL_IMAGE},
            "dataset 'demo' has no split 'test'; it has: train, val",
        ),
        (
            {"dataset": "demo", "split": "val", "image": "missing.jpg"},
            "no image 'missing.jpg' in demo/val (80 images); pick one from Annotate's image list",
        ),
        (  # an image of the other split
            {"dataset": "demo", "split": "val", "image": TRAIN_IMAGE},
            f"no image '{TRAIN_IMAGE}' in demo/val",
        ),
        (  # never a path: only the split's own file names open
            {"dataset": "demo", "split": "val", "image": f"../train2017/{TRAIN_IMAGE}"},
            f"no image '../train2017/{TRAIN_IMAGE}' in demo/val",
        ),
        (
            {"dataset": "demo", "split": "val", "image": VAL_IMAGE, "model": "ghost"},
            "no model or ensemble called 'ghost'; available: none yet",
        ),
        (
            {"dataset": "demo", "split": "val", "image": VAL_IMAGE, "model": "../../etc"},
            "model name '../../etc' is not allowed",
        ),
        ({"dataset": "../demo", "split": "val", "image": VAL_IMAGE}, "dataset name '../demo' is not allowed"),
        ({"dataset": "demo", "split": "val/..", "image": VAL_IMAGE}, "split name 'val/..' is not allowed"),
        ({"dataset": "demo", "model": "m"}, "the link lacks split and image: use /annotate?dataset=D"),
        (
            {"dataset": ["demo", "other"], "split": "val", "image": VAL_IMAGE},
            "the link gives dataset more than once",
        ),
    ],
)
def test_a_bad_link_is_refused_with_one_line_that_says_what(workspace, query, message):
    with pytest.raises(ValueError) as refused:
        annotation.resolve_link(workspace, query, LIMIT, PRESETS)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_a_long_value_is_cut_short_in_the_message(workspace):
    with pytest.raises(ValueError) as refused:
        resolve(workspace, dataset="demo", split="val", image="x" * 5000)
    assert len(str(refused.value)) < 200
