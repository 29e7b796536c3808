"""Click-to-mask tools on the Annotate page's open image: each call makes a new starting layer.

A tool call takes the canvas as it stands (the starting layer with the brush strokes drawn
since), applies the tool (``cocoseg.pipeline.annotation.interactive``) and keeps the result
as a new starting layer under the image's key (``tool-<step>``). The brush and the eraser
then paint over it like over a pre-fill, and Undo goes back one step: the page keeps the
names of the earlier layers, never pixels (``ToolState``).

Grow is the clicks tool on the pre-fill model's uncertainty map, which the page shows over the
canvas while Grow is chosen: a click where the model was unsure seeds a positive click there.

The box, the clicks and the grow tools work on one object at a time: each further mark refines it,
and the pixels it gives up get back what they were before the object began. A new box,
another tool or class, or "New object" (Enter) starts the next one. The wand, the superpixel
snap and the model regions edit the layer directly, one mark at a time.

Pixels never travel: the browser sends marks as fractions of the canvas (``ToolRequest``).
Every opened image has its own key (one per tab), so two tabs on one picture share neither
layers nor objects; they share only the working copy, which depends on the pixels alone.
A call that runs over its time limit (``COCOSEG_TOOL_TIMEOUT_SECONDS`` on the page, 2 s by default) is
abandoned and the layer stays as it was.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from cocoseg.pipeline.annotation import interactive
from cocoseg.pipeline.annotation.interactive import InteractiveCache, InteractiveError
from cocoseg.pipeline.annotation.session import (
    PREDICTION_LAYER,
    OpenImage,
    Selection,
    has_strokes,
    result_mask,
)
from cocoseg.pipeline.annotation.strokes import class_colours, parse_colour
from cocoseg.pipeline.core.settings import DEFAULT_TOOL_TIMEOUT_SECONDS
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.inference.uploads import forget_results, load_result, load_upload, store_result

# The page's tool names -> the interactive methods; OBJECT_TOOLS build one object over several marks.
TOOLS = {
    "box": interactive.GRABCUT_BOX,
    "clicks": interactive.CLICKS,
    "snap": interactive.SUPERPIXEL_SNAP,
    "wand": interactive.MAGIC_WAND,
    "regions": interactive.MODEL_REGIONS,
    "grow": interactive.CLICKS,  # clicks on the pre-fill model's uncertainty map, shown over the canvas
}
OBJECT_TOOLS = ("box", "clicks", "grow")
MAX_UNDO = 30  # steps the page remembers; older layers expire with the image
MAX_POINTS = 2_000  # a stroke's points as the browser sends them (it thins longer ones)
# Tool calls run on these threads so a slow one can be abandoned; OpenCV and scikit-image release the GIL.
_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="click-to-mask")
_CACHE = InteractiveCache()
_WARMED = threading.Event()
_WARMING: list[Future] = []  # the warm-up's future, once submitted
WARM_UP_WAIT_SECONDS = 30.0  # a first click waits this long at most for the import under way


def warm_up() -> Future | None:
    """Import scikit-image's segmentation (about 0.7 s) on a tool thread, once per process, when the first
    image opens: otherwise the first click of the server's life pays it. None once done or under way."""
    if _WARMED.is_set():
        return None
    _WARMED.set()
    future = _EXECUTOR.submit(importlib.import_module, "skimage.segmentation")
    _WARMING.append(future)
    return future


def _wait_for_warm_up() -> None:
    """A click that comes while the import is still running waits for it outside the tool's time limit:
    on a slow or busy machine the import alone can take longer than the tool's time limit, and the call
    would be abandoned for a cost that is not the tool's."""
    for future in _WARMING:
        try:
            future.result(timeout=WARM_UP_WAIT_SECONDS)
        except Exception:  # noqa: BLE001 - a failed or slow import shows in the tool call itself
            return


class ToolTimeout(InteractiveError):
    """A tool call ran over its time limit; nothing changed."""


@dataclasses.dataclass(frozen=True)
class ToolRequest:
    """One mark from the browser: a box drag, a click or a stroke, in fractions of the canvas.

    ``positive`` is false for a right click or Shift; ``relabel`` (Alt) makes the model-regions
    tool give the region the class being painted; ``radius`` is the brush's half width, also a
    fraction of the canvas's width.
    """

    tool: str
    kind: str
    points: tuple[tuple[float, float], ...]
    positive: bool = True
    relabel: bool = False
    radius: float = 0.01

    @classmethod
    def from_dict(cls, data: Any) -> ToolRequest:
        """The browser's request, checked: a clear ``InteractiveError`` for anything malformed."""
        if not isinstance(data, Mapping):
            raise InteractiveError("the tool request is not readable; choose the tool again")
        tool, kind = data.get("tool"), data.get("kind")
        if tool not in TOOLS:
            raise InteractiveError(f"unknown click-to-mask tool {tool!r}; choose one of {', '.join(TOOLS)}")
        if kind not in ("box", "click", "stroke"):
            raise InteractiveError(f"unknown mark {kind!r}: drag a box, click, or paint a stroke")
        raw = data.get("points")
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_POINTS:
            raise InteractiveError(f"a mark needs 1 to {MAX_POINTS} points")
        points = tuple(_fraction_point(point) for point in raw)
        radius = data.get("radius", 0.01)
        if not isinstance(radius, (int, float)) or not 0 < radius <= 1:
            raise InteractiveError("the brush radius must be a share of the canvas between 0 and 1")
        if kind == "box" and (tool != "box" or len(points) != 2):
            raise InteractiveError(
                "a box needs the box tool and two corners: drag a rectangle around the object"
            )
        if kind == "stroke" and tool != "snap":
            raise InteractiveError(f"the {tool} tool takes clicks, not strokes: click instead")
        return cls(tool, kind, points, bool(data.get("positive", True)), bool(data.get("relabel")), radius)


def _fraction_point(point: Any) -> tuple[float, float]:
    if not isinstance(point, (list, tuple)) or len(point) != 2:
        raise InteractiveError(f"a point must be (x, y), got {point!r}")
    x, y = point
    if not all(isinstance(value, (int, float)) and math.isfinite(value) for value in (x, y)):
        raise InteractiveError(f"a point must be two numbers, got {point!r}")
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise InteractiveError("the mark is outside the image: click on the picture")
    return float(x), float(y)


@dataclasses.dataclass(frozen=True)
class ObjectState:
    """The object the box or clicks tool is building: its marks (image pixels) and its layers' names."""

    tool: str
    class_index: int
    clicks: tuple[tuple[float, float, bool], ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: str | None = None  # the object's own mask, after the last mark
    start: str | None = None  # the class layer before the object began


@dataclasses.dataclass(frozen=True)
class ToolState:
    """What the page keeps between tool calls for one open image (``to_dict`` is JSON).

    ``layer`` is the starting layer the state was made for: a pre-fill or "From annotations" since
    then replaced it, and the object is not continued. ``history`` holds, oldest first, what Undo
    restores: the starting layer's name, whether there was one, and the object then being built.
    """

    key: str
    layer: str = ""
    step: int = 0
    object: ObjectState | None = None
    history: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "layer": self.layer,
            "step": self.step,
            "object": dataclasses.asdict(self.object) if self.object else None,
            "history": list(self.history),
        }

    @classmethod
    def for_image(cls, data: Any, current: OpenImage) -> ToolState:
        """The page's state when it belongs to ``current``; otherwise (another image, junk) a fresh one."""
        fresh = cls(current.key, current.layer)
        if not isinstance(data, Mapping) or data.get("key") != current.key:
            return fresh
        try:
            step, history = int(data["step"]), tuple(data["history"])
            kept = _object(data.get("object")) if data.get("layer") == current.layer else None
            for entry in history:  # what Undo will read: refused now rather than failing then
                _object(entry.get("object"))
                if not isinstance(entry.get("layer"), str):
                    raise TypeError("a history entry names no layer")
        except (AttributeError, KeyError, TypeError, ValueError):
            return fresh
        return cls(current.key, current.layer, step, kept, history)


def _object(data: Any) -> ObjectState | None:
    if not data:
        return None
    clicks = tuple((float(x), float(y), bool(positive)) for x, y, positive in data.get("clicks", ()))
    box = tuple(float(value) for value in data["box"]) if data.get("box") else None
    return ObjectState(
        data["tool"], int(data["class_index"]), clicks, box, data.get("mask"), data.get("start")
    )


@dataclasses.dataclass(frozen=True)
class ToolOutcome:
    """A tool call's result: the image with its new starting layer, the page's state, and the timing."""

    current: OpenImage
    state: ToolState
    seconds: float  # the tool itself
    total_seconds: float  # with reading and keeping the layers
    changed_pixels: int
    note: str | None = None  # what the user should know about the result (interactive.ELLIPSE_NOTE)


def class_of_colour(colour: str | None, selection: Selection, workspace: Workspace) -> int:
    """The class index the palette's colour paints (the eraser paints background, 0)."""
    if not colour:
        raise InteractiveError("choose a class to paint first")
    colours = class_colours(selection.label_map(workspace))
    index = colours.get(parse_colour(colour))
    if index is None:
        raise InteractiveError(f"colour {colour} is not a class of the label map; choose a class again")
    return index


def apply_tool(
    workspace: Workspace,
    current: OpenImage,
    canvas_json: str | None,
    selection: Selection,
    canvas_width: int,
    request: ToolRequest,
    state: ToolState,
    class_index: int,
    timeout: float = DEFAULT_TOOL_TIMEOUT_SECONDS,
) -> ToolOutcome:
    """Apply one mark; the new layer becomes the starting layer, the old one stays for Undo.

    ``timeout``: seconds before the call is abandoned (the page passes ``COCOSEG_TOOL_TIMEOUT_SECONDS``).

    Raises:
        InteractiveError: a bad mark (the message says what to do), or ``ToolTimeout`` when the
            call ran over ``timeout``; nothing is kept either way.
    """
    started = time.perf_counter()
    upload = load_upload(workspace, current.key)
    if upload is None:
        raise InteractiveError("the open image expired; open it again")
    layer = _current_layer(workspace, current, canvas_json, selection, canvas_width)
    height, width = layer.shape
    points = [(x * width, y * height) for x, y in request.points]
    step = state.step + 1
    name = f"tool-{step}"
    if request.tool == "grow" and not current.uncertainty:
        raise InteractiveError("grow clicks on a model's uncertainty: pre-fill the image with a model first")
    if request.tool in OBJECT_TOOLS:
        marked = _object_marks(state, request, points, class_index)
        start = load_result(workspace, current.key, marked.start, "mask") if marked.start else layer
        previous = load_result(workspace, current.key, marked.mask, "mask") if marked.mask else None
        if marked.mask and (previous is None or start is None):
            raise InteractiveError("this object's earlier steps expired; press Enter to start a new object")
        result = _run(
            timeout,
            request.tool,
            upload.image,
            clicks=marked.clicks,
            box=marked.box,
            previous_mask=previous,
            method=TOOLS[request.tool],
            cache=_CACHE,
            image_key=current.key,
        )
        new_layer = _paint_object(layer, start, previous, result.mask, class_index)
        seconds, note = result.seconds, result.note
        if not marked.start:
            store_result(workspace, current.key, f"{name}-start", "mask", layer)
        store_result(workspace, current.key, f"{name}-object", "mask", result.mask)
        marked_object = dataclasses.replace(
            marked, mask=f"{name}-object", start=marked.start or f"{name}-start"
        )
    else:
        seconds, new_layer = _edit(
            workspace, current, upload.image, layer, request, points, class_index, timeout
        )
        marked_object, note = None, None
    store_result(workspace, current.key, name, "mask", new_layer)
    before = current.layer
    if has_strokes(canvas_json):  # Undo keeps the strokes drawn since the last call
        before = f"{name}-before"
        store_result(workspace, current.key, before, "mask", layer)
    undo = {
        "layer": before,
        "base": current.base or before != current.layer,
        "object": dataclasses.asdict(state.object) if state.object else None,
    }
    updated = ToolState(current.key, name, step, marked_object, (*state.history, undo)[-MAX_UNDO:])
    _forget_unreferenced(workspace, current.key, state, updated)
    return ToolOutcome(
        dataclasses.replace(current, base=True, layer=name),
        updated,
        seconds,
        time.perf_counter() - started,
        int(np.count_nonzero(new_layer != layer)),
        note,
    )


def _current_layer(workspace, current: OpenImage, canvas_json, selection: Selection, canvas_width: int):
    """The class layer the canvas shows now: strokes over the starting layer, the layer, or background."""
    if has_strokes(canvas_json):
        return result_mask(workspace, current, canvas_json, selection.label_map(workspace), canvas_width)
    if current.base:
        layer = load_result(workspace, current.key, current.layer, "mask")
        if layer is None:
            raise InteractiveError("the starting layer expired; open the image again")
        return layer
    return np.zeros((current.height, current.width), np.uint8)


def _object_marks(state: ToolState, request: ToolRequest, points: list, class_index: int) -> ObjectState:
    """The object this mark belongs to, with the mark added: the current one, or a new one."""
    current = state.object
    continues = (
        current is not None
        and current.tool == request.tool
        and current.class_index == class_index
        and request.kind != "box"
    )
    if request.kind == "box":
        (x0, y0), (x1, y1) = points
        return ObjectState(request.tool, class_index, box=(x0, y0, x1, y1))
    if request.tool == "box" and not continues:
        raise InteractiveError("the box tool starts with a box: drag a rectangle around the object")
    (x, y), *_ = points
    click = (x, y, request.positive)
    if not continues:
        return ObjectState(request.tool, class_index, (click,))
    return dataclasses.replace(current, clicks=(*current.clicks, click))


def _paint_object(layer, start, previous, mask, class_index: int) -> np.ndarray:
    """The layer with the object painted: pixels it gives up get back their value from before the object."""
    painted = layer.copy()
    if previous is not None:
        dropped = previous & ~mask
        painted[dropped] = start[dropped]
    painted[mask] = class_index
    return painted


def _edit(workspace, current: OpenImage, image, layer, request: ToolRequest, points, class_index, timeout):
    """Wand, snap and model regions: one mark applied to the layer itself; (the tool's seconds, new layer)."""
    height, width = layer.shape
    if request.tool == "regions":
        if not current.prediction:
            raise InteractiveError("model regions need a prediction: pre-fill the image with a model first")
        prediction = load_result(workspace, current.key, PREDICTION_LAYER, "mask")
        if prediction is None:
            raise InteractiveError("the prediction expired; pre-fill the image again")
        action = "relabel" if request.relabel else "accept" if request.positive else "reject"
        started = time.perf_counter()
        edited, _region = interactive.edit_model_region(layer, prediction, *points[0], action, class_index)
        seconds = time.perf_counter() - started
        return seconds, edited
    own = layer == class_index
    if request.tool == "wand":
        marks = {"clicks": [(*points[0], request.positive)]}
    else:
        radius = request.radius * width
        marks = {"strokes": [{"points": points, "positive": request.positive, "radius": radius}]}
    result = _run(
        timeout,
        request.tool,
        image,
        previous_mask=own,
        method=TOOLS[request.tool],
        cache=_CACHE,
        image_key=current.key,
        **marks,
    )
    return result.seconds, interactive.paint_result(layer, own, result.mask, class_index)


def _run(timeout: float, tool: str, image, **arguments) -> interactive.InteractiveResult:
    """``interactive.segment`` on a worker thread, abandoned after ``timeout`` seconds."""
    _wait_for_warm_up()
    future = _EXECUTOR.submit(interactive.segment, image, **arguments)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        raise ToolTimeout(
            f"the {tool} tool took over {timeout:g} s and was abandoned; the mask is unchanged. "
            "Try a smaller box, or fix this part with the brush (on a slow machine, raise "
            "COCOSEG_TOOL_TIMEOUT_SECONDS)"
        ) from None


def undo(workspace: Workspace, current: OpenImage, state: ToolState) -> tuple[OpenImage, ToolState] | None:
    """The image and state before the last tool call; None when there is nothing to undo."""
    if not state.history:
        return None
    last = state.history[-1]
    restored = dataclasses.replace(current, layer=str(last["layer"]), base=bool(last["base"]))
    earlier = _object(last.get("object"))
    updated = dataclasses.replace(state, layer=restored.layer, object=earlier, history=state.history[:-1])
    _forget_unreferenced(workspace, current.key, state, updated)
    return restored, updated


def _names(state: ToolState) -> set[str]:
    """The tool layers a state can still reach: its own, its object's, and every step Undo can restore."""
    objects = [state.object, *(_object(step.get("object")) for step in state.history)]
    names = {state.layer, *(str(step.get("layer")) for step in state.history)}
    names |= {name for item in objects if item for name in (item.mask, item.start) if name}
    return {name for name in names if name.startswith("tool-")}


def _forget_unreferenced(workspace: Workspace, key: str, before: ToolState, after: ToolState) -> None:
    """Drop the layers (and their canvas pictures) no state can reach any more: beyond ``MAX_UNDO``
    steps, or undone (there is no redo), so a long session does not fill the cache."""
    forget_results(workspace, key, _names(before) - _names(after))


def new_object(state: ToolState) -> ToolState:
    """The box and clicks tools' next mark starts a new object (the current one is kept as drawn)."""
    return dataclasses.replace(state, object=None)
