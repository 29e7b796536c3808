"""Click-to-mask tools on an open image (cocoseg.pipeline.annotation.tools): each call a new starting layer,
objects refined mark by mark, Undo, timeouts, bad marks and two tabs, on a real workspace."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cocoseg.pipeline import annotation
from cocoseg.pipeline.annotation import interactive, tools
from cocoseg.pipeline.annotation.interactive import MAX_CLICKS, InteractiveError
from cocoseg.pipeline.annotation.session import PREDICTION_LAYER
from cocoseg.pipeline.annotation.store import load_saved
from cocoseg.pipeline.data.images import UploadedImage
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.inference.uploads import display_jpeg, load_result, store_result
from tests.conftest import LIMIT, TOOL_HANG_GUARD_SECONDS
from tests.pipeline.annotation.test_interactive import striped_picture

CANVAS_WIDTH = 540
SELECTION = annotation.Selection("demo/val", "voc21", LIMIT)
VOC = build_label_map("voc21")
CAT, DOG = 8, 12
WIDTH, HEIGHT = 320, 240
SQUARE = (slice(80, 160), slice(100, 220))  # rows, columns of the red square


def square_picture(seed: int = 0) -> np.ndarray:
    """Grey noise with a red square: the answer to every tool is known."""
    generator = np.random.default_rng(seed)
    picture = generator.integers(90, 150, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    picture[SQUARE] = (200, 30, 30)
    return picture


def square_mask() -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[SQUARE] = True
    return mask


def opened(workspace, picture=None) -> annotation.OpenImage:
    upload = UploadedImage(square_picture() if picture is None else picture, "square.png", "png")
    return annotation.open_upload(workspace, upload, SELECTION)


def request(tool: str, kind: str, *points, positive=True, relabel=False) -> tools.ToolRequest:
    data = {"tool": tool, "kind": kind, "points": [[x / WIDTH, y / HEIGHT] for x, y in points]}
    return tools.ToolRequest.from_dict(data | {"positive": positive, "relabel": relabel})


def apply(
    workspace, current, state, mark, class_index=CAT, canvas_json=None, timeout=TOOL_HANG_GUARD_SECONDS
):
    """``tools.apply_tool`` on the test picture's canvas, with a hang guard for its time limit."""
    return tools.apply_tool(
        workspace, current, canvas_json, SELECTION, CANVAS_WIDTH, mark, state, class_index, timeout
    )


def layer_of(workspace, current) -> np.ndarray:
    return load_result(workspace, current.key, current.layer, "mask")


def iou(first: np.ndarray, second: np.ndarray) -> float:
    return (first & second).sum() / (first | second).sum()


def test_a_box_makes_a_layer_the_brush_can_paint_over_and_save(workspace):
    current = opened(workspace)
    state = tools.ToolState.for_image(None, current)
    outcome = apply(workspace, current, state, request("box", "box", (90, 70), (230, 170)))
    layer = layer_of(workspace, outcome.current)
    assert iou(layer == CAT, square_mask()) >= 0.9
    assert outcome.current.base and outcome.current.layer == "tool-1"
    assert outcome.changed_pixels == int((layer == CAT).sum()) and outcome.seconds <= outcome.total_seconds
    assert outcome.note is None

    # The result is a starting layer: strokes drawn on the canvas paint over it, and it saves.
    stroke = {
        "type": "rect",
        "left": 0,
        "top": 0,
        "width": 40,
        "height": 40,
        "fill": "#{:02x}{:02x}{:02x}".format(*VOC.palette[DOG]),
    }
    canvas_json = json.dumps({"objects": [stroke]})
    drawn = annotation.result_mask(workspace, outcome.current, canvas_json, VOC, CANVAS_WIDTH)
    assert (drawn[:20, :20] == DOG).all() and ((drawn == CAT) == (layer == CAT)).all()
    saved = annotation.save(workspace, outcome.current, None, SELECTION, CANVAS_WIDTH)
    assert (load_saved(workspace, "uploads", saved.file_name, VOC) == layer).all()


def test_a_box_guessed_from_its_ellipse_says_so_and_the_next_click_does_not(workspace):
    current = opened(workspace, striped_picture(HEIGHT, WIDTH))  # no colour says where the object is
    state = tools.ToolState.for_image(None, current)
    outcome = apply(workspace, current, state, request("box", "box", (120, 80), (200, 160)))
    assert outcome.note == interactive.ELLIPSE_NOTE
    click = request("box", "click", (160, 120), positive=False)
    assert apply(workspace, outcome.current, outcome.state, click).note is None


def test_a_negative_click_removes_part_and_undo_steps_back(workspace):
    current = opened(workspace)
    state = tools.ToolState.for_image(None, current)
    boxed = apply(workspace, current, state, request("box", "box", (90, 70), (230, 170)))
    first = layer_of(workspace, boxed.current)
    state = tools.ToolState.for_image(boxed.state.to_dict(), boxed.current)
    assert state.object is not None and state.object.box is not None  # the object continues
    clicked = apply(workspace, boxed.current, state, request("box", "click", (150, 120), positive=False))
    second = layer_of(workspace, clicked.current)
    assert second[120, 150] != CAT and (second == CAT).sum() < (first == CAT).sum()
    assert clicked.state.object.clicks == ((150.0, 120.0, False),)

    back, earlier = tools.undo(workspace, clicked.current, clicked.state)
    assert back.layer == boxed.current.layer and (layer_of(workspace, back) == first).all()
    assert earlier.object == boxed.state.object and len(earlier.history) == 1
    empty, start = tools.undo(workspace, back, earlier)
    assert not empty.base and start.object is None and not start.history
    assert tools.undo(workspace, empty, start) is None


def test_pixels_an_object_gives_up_get_back_what_they_were(workspace):
    current = opened(workspace)
    state = tools.ToolState.for_image(None, current)
    dog = json.dumps(
        {
            "objects": [
                {
                    "type": "rect",
                    "left": 0,
                    "top": 0,
                    "width": 540,
                    "height": 406,
                    "fill": "#{:02x}{:02x}{:02x}".format(*VOC.palette[DOG]),
                }
            ]
        }
    )
    boxed = apply(workspace, current, state, request("box", "box", (90, 70), (230, 170)), canvas_json=dog)
    before = load_result(workspace, boxed.current.key, boxed.state.object.start, "mask")
    assert (before == DOG).all()  # the strokes were folded into the layer the object started on
    clicked = apply(
        workspace, boxed.current, boxed.state, request("box", "click", (150, 120), positive=False)
    )
    layer = layer_of(workspace, clicked.current)
    assert layer[120, 150] == DOG and set(np.unique(layer)) <= {CAT, DOG}
    # Undo keeps the strokes drawn before the box: it goes back to the folded layer, not the empty one.
    back, _ = tools.undo(workspace, boxed.current, boxed.state)
    assert (layer_of(workspace, back) == DOG).all()


def test_wand_and_snap_edit_the_class_layer_and_clicks_build_an_object(workspace):
    current = opened(workspace)
    state = tools.ToolState.for_image(None, current)
    wand = apply(workspace, current, state, request("wand", "click", (150, 120)))
    assert iou(layer_of(workspace, wand.current) == CAT, square_mask()) >= 0.9 and wand.state.object is None
    erased = apply(workspace, wand.current, wand.state, request("wand", "click", (150, 120), positive=False))
    assert not (layer_of(workspace, erased.current) == CAT).any()
    stroke = request("snap", "stroke", (120, 100), (200, 100), (200, 140))
    snapped = apply(workspace, erased.current, erased.state, dataclasses.replace(stroke, radius=0.02))
    painted = layer_of(workspace, snapped.current) == CAT  # the superpixels the stroke crossed: in the square
    assert painted[SQUARE].mean() > 0.1 and (painted & ~square_mask()).sum() < 0.02 * painted.sum()
    clicks = apply(
        workspace, current, tools.ToolState.for_image(None, current), request("clicks", "click", (160, 120))
    )
    assert clicks.state.object.tool == "clicks" and (layer_of(workspace, clicks.current)[120, 160] == CAT)


def test_model_regions_accept_reject_and_relabel_the_prediction(workspace):
    current = opened(workspace)
    prediction = np.zeros((HEIGHT, WIDTH), np.uint8)
    prediction[SQUARE] = DOG
    with pytest.raises(InteractiveError, match="pre-fill the image with a model first"):
        apply(
            workspace,
            current,
            tools.ToolState.for_image(None, current),
            request("regions", "click", (150, 120)),
        )
    store_result(workspace, current.key, PREDICTION_LAYER, "mask", prediction)
    current = dataclasses.replace(current, prediction=True)
    state = tools.ToolState.for_image(None, current)
    accepted = apply(workspace, current, state, request("regions", "click", (150, 120)))
    assert ((layer_of(workspace, accepted.current) == DOG) == square_mask()).all()
    relabelled = apply(
        workspace, accepted.current, accepted.state, request("regions", "click", (150, 120), relabel=True)
    )
    assert ((layer_of(workspace, relabelled.current) == CAT) == square_mask()).all()
    rejected = apply(
        workspace,
        relabelled.current,
        relabelled.state,
        request("regions", "click", (150, 120), positive=False),
    )
    assert not layer_of(workspace, rejected.current).any()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tool": "lasso", "kind": "click", "points": [[0.5, 0.5]]}, "unknown click-to-mask tool"),
        ({"tool": "box", "kind": "click", "points": [[1.5, 0.5]]}, "outside the image"),
        ({"tool": "wand", "kind": "click", "points": [[float("nan"), 0.5]]}, "two numbers"),
        ({"tool": "wand", "kind": "stroke", "points": [[0.5, 0.5]]}, "takes clicks, not strokes"),
        ({"tool": "clicks", "kind": "box", "points": [[0.1, 0.1], [0.2, 0.2]]}, "needs the box tool"),
        ({"tool": "snap", "kind": "stroke", "points": []}, "1 to"),
        ("junk", "not readable"),
    ],
)
def test_malformed_requests_are_refused_with_a_message(data, message):
    with pytest.raises(InteractiveError, match=message):
        tools.ToolRequest.from_dict(data)


def test_bad_marks_change_nothing(workspace):
    current = opened(workspace)
    state = tools.ToolState.for_image(None, current)
    with pytest.raises(InteractiveError, match="no area"):
        apply(workspace, current, state, request("box", "box", (100, 100), (100, 100)))
    with pytest.raises(InteractiveError, match="starts with a box"):
        apply(workspace, current, state, request("box", "click", (100, 100)))
    store_result(workspace, current.key, "object", "mask", square_mask())
    store_result(workspace, current.key, "start", "mask", np.zeros((HEIGHT, WIDTH), np.uint8))
    crowded = dataclasses.replace(
        state,
        layer=current.layer,
        object=tools.ObjectState(
            "clicks", CAT, ((150.0, 120.0, True),) * MAX_CLICKS, None, "object", "start"
        ),
    )
    with pytest.raises(InteractiveError, match=f"more than the {MAX_CLICKS}"):
        apply(workspace, current, crowded, request("clicks", "click", (150, 120)))
    with pytest.raises(tools.ToolTimeout, match="abandoned; the mask is unchanged"):
        apply(workspace, current, state, request("box", "box", (90, 70), (230, 170)), timeout=1e-9)
    assert load_result(workspace, current.key, "tool-1", "mask") is None  # nothing kept


def test_two_tabs_on_one_image_keep_their_own_layers_and_objects(workspace):
    first, second = opened(workspace), opened(workspace)
    assert first.key != second.key
    one = apply(
        workspace, first, tools.ToolState.for_image(None, first), request("box", "box", (90, 70), (230, 170))
    )
    two = apply(
        workspace, second, tools.ToolState.for_image(None, second), request("wand", "click", (10, 10)), DOG
    )
    assert (layer_of(workspace, one.current) != DOG).all() and not (
        layer_of(workspace, two.current) == CAT
    ).any()
    assert (
        tools.ToolState.for_image(one.state.to_dict(), second).object is None
    )  # another tab's state is not taken
    # A pre-fill (or "From annotations") replaces the starting layer: the object is not continued.
    replaced = dataclasses.replace(one.current, layer="annotate-base")
    assert tools.ToolState.for_image(one.state.to_dict(), replaced).object is None


def test_the_class_comes_from_the_palette_colour(workspace):
    colour = "#{:02x}{:02x}{:02x}".format(*VOC.palette[CAT])
    assert tools.class_of_colour(colour, SELECTION, workspace) == CAT
    assert tools.class_of_colour(annotation.ERASER_COLOUR, SELECTION, workspace) == 0
    with pytest.raises(InteractiveError, match="choose a class"):
        tools.class_of_colour(None, SELECTION, workspace)


def test_layers_no_step_can_reach_are_forgotten(workspace, monkeypatch):
    monkeypatch.setattr(tools, "MAX_UNDO", 3)
    current = opened(workspace)
    state = tools.ToolState.for_image(None, current)
    for step in range(6):
        outcome = apply(
            workspace, current, state, request("wand", "click", (150, 120), positive=step % 2 == 0)
        )
        current, state = outcome.current, outcome.state
    names = [f"tool-{step}" for step in range(1, 7)]
    kept = [name for name in names if layer_of_name(workspace, current, name) is not None]
    assert kept == ["tool-3", "tool-4", "tool-5", "tool-6"]  # three steps back, and the one shown
    background, _height = annotation.canvas_view(workspace, current, SELECTION, CANVAS_WIDTH)
    assert background == f"{current.key}-tool-6" and display_jpeg(workspace, background)[:2] == b"\xff\xd8"
    assert (
        annotation.canvas_view(workspace, current, SELECTION, CANVAS_WIDTH)[0] == background
    )  # kept, not redone
    back, state = tools.undo(workspace, current, state)
    assert back.layer == "tool-5" and layer_of_name(workspace, current, "tool-6") is None
    assert display_jpeg(workspace, background) is None  # its canvas picture went with it


def layer_of_name(workspace, current, name):
    return load_result(workspace, current.key, name, "mask")


def test_opening_an_image_warms_the_tools_imports_once(monkeypatch):
    import threading

    monkeypatch.setattr(tools, "_WARMED", threading.Event())
    first = tools.warm_up()
    assert first.result(timeout=60).__name__ == "skimage.segmentation"
    assert tools.warm_up() is None  # once per process


@pytest.mark.parametrize(
    "junk",
    [
        {"step": "x", "history": []},
        {"step": 1, "history": ["not a step"]},
        {"step": 1, "history": [{"layer": 3}]},
        {"step": 1, "history": [{"layer": "tool-1", "object": {"tool": "box"}}]},
        {"step": 1, "history": [], "object": {"clicks": "nonsense"}},
    ],
)
def test_a_forged_or_broken_tool_state_starts_afresh(workspace, junk):
    current = opened(workspace)
    state = tools.ToolState.for_image({"key": current.key, "layer": current.layer, **junk}, current)
    assert (
        state == tools.ToolState(current.key, current.layer) and tools.undo(workspace, current, state) is None
    )


def test_a_first_click_waits_for_the_warm_up_outside_its_time_limit(monkeypatch):
    """On a busy machine the import alone can outlast the tool's limit: the call waits for it first, so
    the click is not abandoned for a cost that is not the tool's."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    released = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as slow_import:
        warming = slow_import.submit(released.wait, 30)
        monkeypatch.setattr(tools, "_WARMING", [warming])
        threading.Timer(0.5, released.set).start()
        image = np.full((40, 40, 3), 200, np.uint8)
        result = tools._run(0.4, "wand", image, clicks=[(20, 20, True)], method="magic_wand")
        warmed_before_the_answer = warming.done()
    assert warmed_before_the_answer  # the call ran only once the warm-up had ended
    assert result.mask.any()


def test_grow_needs_a_pre_fill_and_then_clicks_build_an_object_on_its_uncertainty(workspace):
    """Grow is the clicks tool on the model's uncertainty map: refused (nothing kept) until a pre-fill."""
    current = opened(workspace)
    with pytest.raises(InteractiveError, match="pre-fill the image with a model first"):
        apply(
            workspace, current, tools.ToolState.for_image(None, current), request("grow", "click", (160, 120))
        )
    assert layer_of(workspace, current) is None
    current = dataclasses.replace(current, prediction=True, uncertainty=f"{current.key}-uabc")
    grown = apply(
        workspace, current, tools.ToolState.for_image(None, current), request("grow", "click", (160, 120))
    )
    assert grown.state.object.tool == "grow"
    painted = layer_of(workspace, grown.current) == CAT  # grown from the click, inside the red square
    assert (
        painted[120, 160]
        and painted[SQUARE].mean() > 0.25
        and (painted & ~square_mask()).sum() < 0.02 * painted.sum()
    )
    trimmed = apply(
        workspace, grown.current, grown.state, request("grow", "click", (110, 90), positive=False)
    )
    assert trimmed.state.object.clicks[-1][2] is False and trimmed.state.object.tool == "grow"
