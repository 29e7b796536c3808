"""The Annotate page's deep link, its layout and callbacks called as functions on the real demo data."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from dash import no_update
from dash._callback_context import context_value
from dash._utils import AttributeDict

from cocoseg.app import annotate_controls, click_to_mask
from cocoseg.app.components import annotate_panels as panels
from cocoseg.app.ids import Annotate
from cocoseg.app.links import annotate_link
from cocoseg.app.main import create_app
from cocoseg.pipeline.annotation.interactive import ELLIPSE_NOTE
from cocoseg.pipeline.core.settings import get_settings
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.inference.model_store import CARD_FILE
from cocoseg.pipeline.inference.uploads import display_jpeg
from tests.app.test_main import _text, _walk
from tests.app.test_pages import _module
from tests.conftest import DEMO_VAL_IMAGES, TOOL_HANG_GUARD_SECONDS

VAL_IMAGE = sorted(DEMO_VAL_IMAGES.glob("*.jpg"))[0].name
PORTRAIT_IMAGE = "000000333956.jpg"  # 428x640
ELLIPSE_IMAGE, ELLIPSE_BOX = "000000208901.jpg", (232.7, 148.4, 193.3, 136.2)  # annotation 159265's box
CANVAS_SETTINGS = ("#800000", 12, "pencil")  # class colour, brush width, tool


@pytest.fixture(autouse=True)
def tool_hang_guard(monkeypatch):
    """The tools' limit as a hang guard (``TOOL_HANG_GUARD_SECONDS``); the page's limit has a test below."""
    monkeypatch.setenv("COCOSEG_TOOL_TIMEOUT_SECONDS", str(TOOL_HANG_GUARD_SECONDS))
    get_settings.cache_clear()


def _query(link: str) -> dict:
    """The query as Dash hands it to ``layout`` (``dash._pages._parse_query_string``)."""
    parsed = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query, keep_blank_values=True)
    return {key: values[0] if len(values) == 1 else values for key, values in parsed.items()}


def _layout(app, link: str):
    with app.server.test_request_context(link):
        return _module("annotate").layout(**_query(link))


def _by_id(layout) -> dict:
    return {
        component.id: component
        for component in _walk(layout)
        if isinstance(getattr(component, "id", None), str)
    }


def _open_link(app, link_data) -> tuple:
    with app.server.test_request_context("/"):
        return _module("annotate").open_link(link_data, *CANVAS_SETTINGS)


def _opened(app, file_name: str) -> dict:
    """The page's open-image data for a demo val picture, opened through its deep link."""
    link_data = _by_id(_layout(app, annotate_link("demo", "val", file_name)))[Annotate.LINK].data
    current, _canvas, _message = _open_link(app, link_data)
    return current


def publish_card(workspace, name: str, label_map) -> None:
    folder = workspace.models_dir / name
    folder.mkdir(parents=True)
    card = {"kind": "exported", "label_map": label_map.to_dict(), "file": "model.onnx", "sha256": "0" * 64}
    (folder / CARD_FILE).write_text(json.dumps(card))


def test_annotate_link_encodes_the_values_and_leaves_out_no_model():
    assert annotate_link("demo", "val", "a b&c#.jpg", "m") == (
        "/annotate?dataset=demo&split=val&image=a+b%26c%23.jpg&model=m"
    )
    assert _query(annotate_link("demo", "val", "a b&c#.jpg")) == {
        "dataset": "demo",
        "split": "val",
        "image": "a b&c#.jpg",
    }


def test_a_deep_link_sets_the_dropdowns_the_model_label_map_and_the_store(workspace):
    publish_card(workspace, "a-voc-model", build_label_map("voc21"))  # listed first: a plain visit's voc21
    publish_card(workspace, "coco-model", build_label_map("coco80"))
    app = create_app(workspace)
    link = annotate_link("demo", "val", VAL_IMAGE, "coco-model") + "&tab=2"  # unknown keys are ignored
    components = _by_id(_layout(app, link))
    assert components[Annotate.DATASET].value == "demo/val"
    assert components[Annotate.IMAGE].value == VAL_IMAGE and components[Annotate.IMAGE].options == [VAL_IMAGE]
    assert components[Annotate.LABELS].value == "coco80"  # the linked model's, not the plain visit's voc21
    assert components[Annotate.MODEL].value == "coco-model"
    assert components[Annotate.LINK].data == {
        "dataset": "demo",
        "split": "val",
        "image": VAL_IMAGE,
        "model": "coco-model",
        "preset": "coco80",
    }
    assert not components[Annotate.MESSAGE].children
    assert components[Annotate.LABELS].value != _by_id(_layout(app, "/annotate"))[Annotate.LABELS].value


def test_a_plain_visit_has_no_link_and_the_split_s_default_label_map(workspace):
    components = _by_id(_layout(create_app(workspace), "/annotate"))
    assert components[Annotate.LINK].data is None and components[Annotate.IMAGE].value is None
    assert components[Annotate.DATASET].value == "demo/train"
    assert components[Annotate.LABELS].value == "coco80"  # labels.default_preset: COCO's categories
    assert not components[Annotate.MESSAGE].children


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ({"voc-model": "voc21"}, "voc21"),  # the preselected pre-fill model's map: pre-fill works at once
        ({"a-coco": "coco80", "b-voc": "voc21"}, "coco80"),  # the first listed is the one preselected
        ({"pets": "custom"}, "coco80"),  # no preset gives a custom map over the split: the split's default
    ],
)
def test_a_plain_visit_starts_with_the_preselected_model_s_label_map_when_it_fits(
    workspace, demo_val_data, models, expected
):
    for name, preset in models.items():
        names = ["cat"] if preset == "custom" else None
        publish_card(workspace, name, build_label_map(preset, demo_val_data["categories"], names=names))
    components = _by_id(_layout(create_app(workspace), "/annotate"))
    assert components[Annotate.MODEL].value == sorted(models)[0]
    assert components[Annotate.LABELS].value == expected


@pytest.mark.parametrize(
    ("link", "message"),
    [
        (annotate_link("nope", "val", VAL_IMAGE), "no dataset called 'nope'; registered: demo"),
        (annotate_link("demo", "test", VAL_IMAGE), "dataset 'demo' has no split 'test'; it has: train, val"),
        (annotate_link("demo", "val", "missing.jpg"), "no image 'missing.jpg' in demo/val (80 images)"),
        (annotate_link("demo", "val", VAL_IMAGE, "ghost"), "no model or ensemble called 'ghost'"),
        (annotate_link("demo", "val", VAL_IMAGE, "pets"), "pets predicts the custom label map"),
    ],
)
def test_a_bad_link_says_why_in_the_message_area_and_opens_nothing(workspace, demo_val_data, link, message):
    publish_card(workspace, "pets", build_label_map("custom", demo_val_data["categories"], names=["cat"]))
    app = create_app(workspace)
    components = _by_id(_layout(app, link))
    assert f"This link cannot be opened: {message}" in _text(components[Annotate.MESSAGE])
    assert components[Annotate.LINK].data is None  # so open_link opens nothing
    assert components[Annotate.IMAGE].value is None and components[Annotate.LABELS].value == "coco80"
    assert components[Annotate.DATASET].value == "demo/train"  # the page's first split, as without a link
    assert _open_link(app, components[Annotate.LINK].data) == (no_update,) * 3


def test_open_link_opens_the_image_as_choosing_it_does(workspace):
    app = create_app(workspace)
    link_data = _by_id(_layout(app, annotate_link("demo", "val", VAL_IMAGE)))[Annotate.LINK].data
    current, canvas, message = _open_link(app, link_data)
    assert current["file_name"] == VAL_IMAGE and current["collection"] == "demo" and current["dataset_mask"]
    assert not current["base"] and canvas.id == f"annotate-holder-{current['key'][:12]}"
    assert f"Opened {VAL_IMAGE}" in _text(message)
    assert canvas.children.lineColor == CANVAS_SETTINGS[0]


def test_a_portrait_picture_gets_a_narrower_canvas_that_fits_the_panel_and_its_tools_follow(workspace):
    assert panels.canvas_width(640, 480) == panels.CANVAS_WIDTH  # the demo's usual
    assert panels.canvas_width(428, 640) == round(panels.CANVAS_HEIGHT * 428 / 640)
    assert panels.canvas_width(4000, 10) == panels.CANVAS_WIDTH
    assert panels.canvas_width(1, 4000) == 1  # never zero wide
    app = create_app(workspace)
    link_data = _by_id(_layout(app, annotate_link("demo", "val", PORTRAIT_IMAGE)))[Annotate.LINK].data
    current, canvas, _message = _open_link(app, link_data)
    assert (current["width"], current["height"]) == (428, 640)
    assert (canvas.children.width, canvas.children.height) == (301, 450)
    box = {"tool": "box", "kind": "box", "points": [[0.2, 0.2], [0.6, 0.7]]}
    image, canvas, _message, state, _status = _annotate(
        app, "use_tool", box, None, current, None, "voc21", "demo/val", CAT_COLOUR, 12, "box"
    )
    assert (canvas.children.width, canvas.children.height) == (301, 450)  # the tool's layer: same canvas
    (marked,) = _annotate(app, "show_marks", state, image)
    assert marked.style["left"] == f"{0.2 * 301:.0f}px" and marked.style["height"] == f"{0.5 * 450:.0f}px"


def test_open_link_refuses_a_model_removed_since_the_page_loaded(workspace):
    app = create_app(workspace)
    link_data = {"dataset": "demo", "split": "val", "image": VAL_IMAGE, "model": "gone", "preset": "voc21"}
    current, canvas, message = _open_link(app, link_data)
    assert current is no_update and canvas is no_update
    assert "no model or ensemble called 'gone'" in _text(message)


def coco80_model(path):
    """A 1x1 convolution from RGB to the 81 coco80 logits (NCHW float), saved at ``path``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(5).normal(size=(81, 3, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "weight"], ["logits"])],
        "coco80",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 81, 32, 32])],
        [numpy_helper.from_array(weight, "weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.slow
def test_open_link_prefills_with_the_model_in_its_own_label_map(workspace, tmp_path):
    """A real (hand-built) coco80 model: the link chooses coco80, and pre-fills exactly as the button does."""
    from cocoseg.pipeline.inference.model_import import import_model
    from tests.pipeline.inference.test_model_import import NCHW_CARD

    import_model(workspace, coco80_model(tmp_path / "coco-byo.onnx"), {**NCHW_CARD, "labels": "coco80"})
    app = create_app(workspace)
    components = _by_id(_layout(app, annotate_link("demo", "val", VAL_IMAGE, "coco-byo")))
    assert components[Annotate.LABELS].value == "coco80"
    current, canvas, message = _open_link(app, components[Annotate.LINK].data)
    assert current["file_name"] == VAL_IMAGE and current["base"]  # the prediction is the starting layer
    assert canvas.id == f"annotate-holder-{current['key'][:12]}-coco-byo"
    assert "Pre-filled with coco-byo" in _text(message)
    # Grow shows the model's uncertainty over the canvas; the other tools do not
    assert current["uncertainty"].startswith(f"{current['key']}-u")
    assert display_jpeg(workspace, current["uncertainty"])[:2] == b"\xff\xd8"
    source, style = click_to_mask.show_uncertainty("grow", current)
    assert source == f"/uploads/{current['uncertainty']}.jpg" and style.get("display") != "none"
    for tool, shown in (("clicks", current), ("grow", {**current, "uncertainty": ""}), ("grow", None)):
        assert click_to_mask.show_uncertainty(tool, shown) == ("", {"display": "none"})


def test_image_choices_keeps_a_deep_link_image_on_page_load_only(workspace):
    app = create_app(workspace)
    image_choices = annotate_controls.image_choices
    for triggered, expected in (
        ([], no_update),
        ([{"prop_id": f"{Annotate.DATASET}.value", "value": 1}], None),
    ):
        token = context_value.set(AttributeDict(triggered_inputs=triggered))
        try:
            with app.server.test_request_context("/"):
                options, value = image_choices("demo/val")
        finally:
            context_value.reset(token)
        assert value is expected and {"label": VAL_IMAGE, "value": VAL_IMAGE} in options


def _annotate(app, callback: str, *arguments):
    """One of the click-to-mask tools' callbacks, called as Dash would in a request."""
    with app.server.test_request_context("/"):
        return getattr(click_to_mask, callback)(*arguments)


CAT_COLOUR = "#{:02x}{:02x}{:02x}".format(*build_label_map("voc21").palette[8])
TOOL_SETTINGS = (CAT_COLOUR, 12, "wand")


def test_a_tool_call_mounts_a_canvas_on_its_layer_and_undo_goes_back(workspace):
    app = create_app(workspace)
    current = _opened(app, VAL_IMAGE)
    wand = {"tool": "wand", "kind": "click", "points": [[0.5, 0.5]]}
    image, canvas, message, state, status = _annotate(
        app, "use_tool", wand, None, current, None, "voc21", "demo/val", *TOOL_SETTINGS
    )
    assert image["layer"] == "tool-1" and image["base"] and state["layer"] == "tool-1"
    assert canvas.id == f"annotate-holder-{current['key'][:12]}-tool-1" and canvas.children.tool == "pencil"
    assert message is None and "Magic wand:" in status and " ms " in status and "pixels changed" in status
    assert _annotate(app, "show_marks", state, image) == []  # the wand builds no object
    image, canvas, _message, state, status = _annotate(
        app, "undo_tool", 1, image, state, "voc21", "demo/val", *TOOL_SETTINGS
    )
    assert image["layer"] == current["layer"] and not image["base"] and state["history"] == []
    assert status == "Undid the last tool call."
    *unchanged, status = _annotate(app, "undo_tool", 2, image, state, "voc21", "demo/val", *TOOL_SETTINGS)
    assert unchanged == [no_update] * 4 and "Nothing to undo" in status


def test_the_box_tool_shows_its_object_and_new_object_lets_go_of_it(workspace):
    app = create_app(workspace)
    current = _opened(app, VAL_IMAGE)
    box = {"tool": "box", "kind": "box", "points": [[0.2, 0.2], [0.6, 0.7]]}
    image, _canvas, _message, state, _status = _annotate(
        app, "use_tool", box, None, current, None, "voc21", "demo/val", CAT_COLOUR, 12, "box"
    )
    (marked,) = _annotate(app, "show_marks", state, image)
    assert "tool-box" in marked.className and marked.style["left"] == f"{0.2 * 540:.0f}px"
    state, status = _annotate(app, "new_object", 1, image, state)
    assert state["object"] is None and "New object" in status


def test_a_box_the_tools_cannot_believe_says_its_mask_is_the_boxs_ellipse(workspace):
    # A demo val object whose box GrabCut cannot separate from its surroundings (a margin of -6 to +10 px
    # round it gives the same verdict); its box as the page sends it, in fractions of the canvas.
    app = create_app(workspace)
    current = _opened(app, ELLIPSE_IMAGE)
    x, y, width, height = ELLIPSE_BOX
    corners = [(x, y), (x + width, y + height)]
    points = [[column / current["width"], row / current["height"]] for column, row in corners]
    box = {"tool": "box", "kind": "box", "points": points}
    _image, _canvas, message, _state, status = _annotate(
        app, "use_tool", box, None, current, None, "voc21", "demo/val", CAT_COLOUR, 12, "box"
    )
    first, _space, note = status
    assert message is None and first.startswith("Box → mask:") and note.children == ELLIPSE_NOTE


@pytest.mark.parametrize(
    ("mark", "colour", "message"),
    [
        ({"tool": "box", "kind": "box", "points": [[0.2, 0.2], [0.2, 0.2]]}, CAT_COLOUR, "has no area"),
        ({"tool": "wand", "kind": "click", "points": [[2, 0.5]]}, CAT_COLOUR, "outside the image"),
        ({"tool": "wand", "kind": "click", "points": [[0.5, 0.5]]}, None, "choose a class"),
        ("junk", CAT_COLOUR, "not readable"),
    ],
)
def test_a_bad_mark_is_refused_beside_the_canvas_and_changes_nothing(workspace, mark, colour, message):
    app = create_app(workspace)
    current = _opened(app, VAL_IMAGE)
    image, canvas, shown, state, status = _annotate(
        app, "use_tool", mark, None, current, None, "voc21", "demo/val", colour, 12, "wand"
    )
    assert (image, canvas, state, status) == (no_update,) * 4 and message in _text(shown)


def test_the_page_abandons_a_tool_call_at_its_set_limit_and_says_how_to_raise_it(workspace, monkeypatch):
    monkeypatch.setenv("COCOSEG_TOOL_TIMEOUT_SECONDS", "1e-9")  # no call is that fast
    get_settings.cache_clear()
    app = create_app(workspace)
    current = _opened(app, VAL_IMAGE)
    box = {"tool": "box", "kind": "box", "points": [[0.3, 0.3], [0.6, 0.7]]}
    image, canvas, shown, state, status = _annotate(
        app, "use_tool", box, None, current, None, "voc21", "demo/val", CAT_COLOUR, 12, "box"
    )
    assert (image, canvas, state, status) == (no_update,) * 4
    said = _text(shown)
    assert "abandoned; the mask is unchanged" in said and "COCOSEG_TOOL_TIMEOUT_SECONDS" in said


def test_a_tool_with_no_image_open_says_so(workspace):
    app = create_app(workspace)
    mark = {"tool": "wand", "kind": "click", "points": [[0.5, 0.5]]}
    *unchanged, shown, state, status = _annotate(
        app, "use_tool", mark, None, None, None, "voc21", "demo/val", *TOOL_SETTINGS
    )
    assert "Open an image first" in _text(shown) and (state, status) == (no_update, no_update)
