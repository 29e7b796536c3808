"""Click-to-mask: a box, clicks, brush strokes or a model's regions -> one object's mask, per click.

The Annotate page and ``benchmarks/interactive.py`` call ``segment``. ``clicks`` are all the
marks on the current object so far, oldest first, and ``previous_mask`` is what the previous
call returned (or the starting mask): the graph-cut methods use both as seeds and as the
current guess; the editing methods (wand, snap, model regions) apply each mark in order to
the previous mask, which gives the same mask again when replayed on their own result.

The methods (``METHODS`` says the same in a line each):

* ``grabcut_box``: OpenCV GrabCut initialised from the box (outside it is background, its
  centre object), on a crop scaled to ``interactors.BOX_SIDE``; a row or column of the box the
  cut leaves empty gets its most object-like pixel as sure object and the cut runs again (a
  tight box crosses its object on every line); where the cut disagrees with the box's inscribed
  ellipse, the ellipse, and the result's ``note`` says so. Then each click corrects it as in
  ``clicks``;
* ``clicks``: positive / negative clicks or scribbles. A lone first click grows by watershed on
  the colour gradient to the strongest edge around it; each further mark corrects the previous
  mask near itself only: a positive mark only adds, a negative one only removes, GrabCut decides
  the pixels around it with the rest of the mask held (``interactors.correct``);
* ``superpixel_snap``: brush strokes snap to SLIC superpixels computed once per image;
* ``magic_wand``: flood fill from a click within a colour tolerance, on a smoothed copy;
* ``model_regions``: the connected region of a predicted class mask under a click, accepted
  (positive click) or rejected (negative click); ``edit_model_region`` also relabels.

GrabCut, watershed, SLIC and the wand run on a working copy whose longer side is
``WORKING_SIDE`` (640 px: COCO's pictures as they are, larger ones scaled down, smaller ones
scaled up, because the tools' sizes in pixels were measured at that scale); the result is
scaled back to the image's resolution, where the marks themselves are kept (a positive click's
pixel is in, a negative one's out, however small the copy's seed is there) and, where a call
changed nothing, the previous mask's pixels are kept. Against COCO's outlines a pixel counts: a
400 px copy cost clicks. What keeps a click fast is the size of what GrabCut cuts, not of the
picture: a box is cut on a crop ``BOX_SIDE`` across, a far click's window on a copy at most
``CORRECTION_SIDE`` across (``interactors``). GrabCut's random start is seeded before every
cut, so the same marks give the same mask. The working copy, its gradient and its superpixels
are kept per image in an ``InteractiveCache``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np

from cocoseg.pipeline.annotation import interactors
from cocoseg.pipeline.annotation.marks import (
    ACTIONS,
    MAX_CLICKS,
    Click,
    InteractiveError,
    Stroke,
    check_box,
    check_image,
    check_marks,
    check_point,
    check_same_size,
)
from cocoseg.pipeline.annotation.working_copy import InteractiveCache, WorkingCopy

GRABCUT_BOX, CLICKS, SUPERPIXEL_SNAP, MAGIC_WAND, MODEL_REGIONS = (
    "grabcut_box",
    "clicks",
    "superpixel_snap",
    "magic_wand",
    "model_regions",
)
METHODS = {
    GRABCUT_BOX: "GrabCut from a box; clicks then mark sure object or sure background",
    CLICKS: "positive / negative clicks or scribbles; each corrects the object near itself",
    SUPERPIXEL_SNAP: "brush strokes snap to superpixels (computed once per image)",
    MAGIC_WAND: "flood fill from a click within a colour tolerance",
    MODEL_REGIONS: "accept (positive click) or reject (negative click) a connected region of a prediction",
}
# A click's seed is a disc of this radius in working pixels. Small on purpose: on a thin error band a
# fingertip-sized seed overshoots into the object; the newest click's seed grows with the error it is in
# (interactors.SEED_SHARE).
SEED_RADIUS = 1
# Superpixel snap's brush for a click, in working pixels (the picture's own where the copy is scaled up):
# about one superpixel across.
SNAP_RADIUS = 6
WAND_TOLERANCE = 20
# What a box whose cut was not believed tells its user (interactors.box_object): one demo box in six (22 of
# 130 demo train and val instances at their own size), and those objects took nearly twice the clicks of
# the others (grabcut_box's NoC@85 12.3 against 7.0).
ELLIPSE_NOTE = (
    "GrabCut could not tell this object from its surroundings, so the mask is the box's ellipse: "
    "click in what is missing and on what is extra."
)

__all__ = [
    "ACTIONS",
    "CLICKS",
    "GRABCUT_BOX",
    "MAGIC_WAND",
    "MAX_CLICKS",
    "METHODS",
    "MODEL_REGIONS",
    "SUPERPIXEL_SNAP",
    "Click",
    "InteractiveCache",
    "InteractiveError",
    "InteractiveResult",
    "Stroke",
    "edit_model_region",
    "paint_result",
    "segment",
]


@dataclasses.dataclass(frozen=True)
class InteractiveResult:
    """One tool call's outcome.

    Attributes:
        mask: the object, bool (H, W) at the image's full resolution.
        method: the method that made it.
        seconds: how long the call took, checks and cache work included.
        label: for ``model_regions``, the predicted class of the region under the last click.
        note: what the user should know about this result (``ELLIPSE_NOTE``), or None.
    """

    mask: np.ndarray
    method: str
    seconds: float
    label: int | None = None
    note: str | None = None


def segment(
    image: np.ndarray,
    clicks: Sequence = (),
    box: Sequence[float] | None = None,
    previous_mask: np.ndarray | None = None,
    method: str = CLICKS,
    *,
    strokes: Sequence = (),
    prediction: np.ndarray | None = None,
    cache: InteractiveCache | None = None,
    image_key: str | None = None,
    tolerance: int = WAND_TOLERANCE,
) -> InteractiveResult:
    """One click-to-mask call; nothing passed in is modified.

    Args:
        image: RGB uint8 (H, W, 3).
        clicks: ``(x, y, positive)`` in image pixels (or ``Click``), oldest first.
        box: ``(x0, y0, x1, y1)`` in image pixels, for ``grabcut_box``.
        previous_mask: bool (H, W), the current object.
        method: one of ``METHODS``.
        strokes: brush strokes or scribbles (``Stroke`` or ``{"points", "positive", "radius"}``),
            painted after the clicks.
        prediction: class-index uint8 (H, W) from a model, for ``model_regions``.
        cache: per-image working copies; with it, ``image_key`` names the image.
        tolerance: the magic wand's colour tolerance (0-255 per channel).

    Raises:
        InteractiveError: bad input; the message says what to do.
    """
    started = time.perf_counter()
    check_image(image)
    height, width = image.shape[:2]
    if method not in METHODS:
        raise InteractiveError(f"unknown click-to-mask method {method!r}; choose one of {', '.join(METHODS)}")
    marks = check_marks(clicks, strokes, width, height)
    rectangle = None if box is None else check_box(box, width, height)
    previous = previous_mask
    if previous is not None:
        previous = check_same_size(previous, height, width, "previous mask")
    _check_needs(method, marks, rectangle, prediction)
    if method == MODEL_REGIONS:
        classes = check_same_size(prediction, height, width, "prediction", np.uint8)
        mask, label = _model_regions(classes, marks, previous)
        return InteractiveResult(mask, method, time.perf_counter() - started, label)
    if not 0 <= tolerance <= 255:
        raise InteractiveError(f"the wand's tolerance must be between 0 and 255, got {tolerance}")
    if cache is not None and not image_key:
        raise InteractiveError("a click-to-mask cache needs the image's key (dataset, split and file)")
    copy = cache.working_copy(image_key, image) if cache is not None else WorkingCopy(image)
    note = None
    if method in (GRABCUT_BOX, CLICKS):
        mask, note = _graph_cut(copy, marks, rectangle, previous)
    else:
        mask = _edit(method, copy, marks, previous, tolerance)
    return InteractiveResult(mask, method, time.perf_counter() - started, note=note)


def _check_needs(method: str, marks: list, box, prediction) -> None:
    if method == GRABCUT_BOX and box is None:
        raise InteractiveError("the box tool needs a box: drag a rectangle around the object")
    if method == MODEL_REGIONS and prediction is None:
        raise InteractiveError("model regions need a prediction: pre-fill the image with a model first")
    if method in (CLICKS, MAGIC_WAND, MODEL_REGIONS) and not marks:
        raise InteractiveError(f"{method.replace('_', ' ')} needs a click: click on the object")
    if method == SUPERPIXEL_SNAP and not marks:
        raise InteractiveError("superpixel snap needs a brush stroke: paint over the object")
    if method in (MAGIC_WAND, MODEL_REGIONS) and any(len(mark.points) > 1 for mark in marks):
        raise InteractiveError(f"{method.replace('_', ' ')} takes clicks, not strokes: click instead")


def _graph_cut(
    copy: WorkingCopy, marks: list, box, previous: np.ndarray | None
) -> tuple[np.ndarray, str | None]:
    """Box and clicks at working size; the full-size result keeps ``previous`` wherever nothing changed.

    With a previous mask only the newest mark is applied (the others are in it already, and
    stay as seeds); without one, the box and every mark are applied in order, which gives the
    same mask as calling once per mark. Beside the mask: ``ELLIPSE_NOTE`` when this call cut
    the box and did not believe the cut, else None.
    """
    shape = copy.shape
    resolved = [
        (
            copy.to_working_points(mark.points),
            mark.positive,
            SEED_RADIUS if mark.radius is None else copy.to_working_length(mark.radius),
        )
        for mark in marks
    ]
    outside = None
    if box is not None:
        (x0, y0), (x1, y1) = copy.to_working_points([box[:2], box[2:]])
        outside = np.ones(shape, bool)
        outside[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)] = False
    start = len(resolved) - 1 if previous is not None and resolved else 0
    note = None
    if previous is not None and resolved:
        mask = copy.to_working(previous)
    elif outside is not None:
        mask, guessed = interactors.box_object(copy.working, outside)
        note = ELLIPSE_NOTE if guessed else None
    else:
        mask = np.zeros(shape, bool)
    before = mask.copy()
    for index in range(start, len(resolved)):
        points, positive, radius = resolved[index]
        seeds = interactors.paint_seeds(shape, resolved[: index + 1])
        mark = interactors.paint_mark(shape, points, radius)
        mask = interactors.correct(copy.working, copy.gradient(), mask, seeds, mark, positive, outside)
    scaled = copy.shape != copy.image_shape
    if previous is None or not resolved:
        mask = copy.to_image(mask)
        return (_with_marks(mask, marks) if scaled else mask), note
    result = previous.copy()
    changed = copy.to_image(mask != before)
    result[changed] = copy.to_image(mask)[changed]
    return (_with_marks(result, marks) if scaled else result), note


def _with_marks(mask: np.ndarray, marks: list) -> np.ndarray:
    """``mask`` (image size, changed in place) with each mark's own pixels on its side, oldest first.

    On a scaled copy a click's seed can be smaller than the image pixel it was made on; unscaled,
    ``interactors.correct`` has kept the marks already.
    """
    height, width = mask.shape
    pixels = [
        (
            [check_point(point, width, height, "a mark") for point in mark.points],
            mark.positive,
            round(mark.radius or 0),
        )
        for mark in marks
    ]
    seeds = interactors.paint_seeds(mask.shape, pixels)
    mask[seeds == interactors.FOREGROUND_SEED] = True
    mask[seeds == interactors.BACKGROUND_SEED] = False
    return mask


def _edit(method: str, copy: WorkingCopy, marks: list, previous, tolerance: int) -> np.ndarray:
    mask = np.zeros(copy.image_shape, bool) if previous is None else previous.copy()
    for mark in marks:
        points = copy.to_working_points(mark.points)
        if method == MAGIC_WAND:
            region = interactors.wand_region(copy.smoothed, *points[0], tolerance)
        else:
            if mark.radius is None:
                radius = round(SNAP_RADIUS * copy.enlargement)
            else:
                radius = copy.to_working_length(mark.radius)
            region = interactors.snap_region(copy.superpixels(), points, radius)
        region = copy.to_image(region)
        mask = mask | region if mark.positive else mask & ~region
    return mask


def _model_regions(prediction: np.ndarray, marks: list, previous) -> tuple[np.ndarray, int]:
    mask = np.zeros(prediction.shape, bool) if previous is None else previous.copy()
    label = 0
    for mark in marks:
        x, y = check_point(mark.points[0], prediction.shape[1], prediction.shape[0], "the click")
        region, label = interactors.model_region(prediction, x, y)
        if mark.positive and label not in (0, 255):
            mask |= region
        elif not mark.positive:
            mask &= ~region
    return mask, label


def edit_model_region(
    layer: np.ndarray, prediction: np.ndarray, x: float, y: float, action: str, class_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """A class-index layer with the predicted region under (x, y) accepted, rejected or relabelled.

    ``accept`` gives the region its predicted class, ``reject`` makes it background, ``relabel``
    gives it ``class_index`` (the class being drawn). Returns the new layer and the region.
    """
    height, width = check_same_size(layer, *prediction.shape[:2], "layer", np.uint8).shape
    check_same_size(prediction, height, width, "prediction", np.uint8)
    if action not in ACTIONS:
        raise InteractiveError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    column, row = check_point((x, y), width, height, "the click")
    region, label = interactors.model_region(prediction, column, row)
    edited = layer.copy()
    edited[region] = {"accept": label, "reject": 0, "relabel": class_index}[action]
    return edited, region


def paint_result(layer: np.ndarray, previous_mask: np.ndarray | None, mask: np.ndarray, class_index: int):
    """A class-index layer with a tool's result painted: new pixels take ``class_index``, dropped ones 0."""
    edited = layer.copy()
    if previous_mask is not None:
        edited[previous_mask & ~mask & (layer == class_index)] = 0
    edited[mask] = class_index
    return edited
