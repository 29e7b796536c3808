"""What a click-to-mask call is given (image, clicks, strokes, box, masks), checked before any work.

Every check raises ``InteractiveError`` with one line the Annotate page shows as is, and
returns plain values, so ``interactive.segment`` never touches a cache or a mask before the
whole input has passed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cocoseg.pipeline.annotation.types import AnnotationError

# More marks than this on one object means the tool is not converging: the user should keep the mask,
# fix the rest with the brush or start a new object, not wait for a slower and slower call.
MAX_CLICKS = 200
MAX_STROKE_POINTS = 5_000
MAX_RADIUS = 1_000
ACTIONS = ("accept", "reject", "relabel")


class InteractiveError(AnnotationError):
    """A click-to-mask call that cannot be done as asked; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Click:
    """A click at (x, y) in image pixels; positive marks the object, negative what is not."""

    x: float
    y: float
    positive: bool = True


@dataclasses.dataclass(frozen=True)
class Stroke:
    """A brush stroke or scribble: points in image pixels and the brush radius (None: the tool's own)."""

    points: tuple[tuple[float, float], ...]
    positive: bool = True
    radius: float | None = None


def check_image(image: Any) -> None:
    """Refuse anything but an RGB uint8 picture (H, W, 3)."""
    if image is None:
        raise InteractiveError("no image is open: open an image before using a click-to-mask tool")
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        found = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InteractiveError(f"the image must be RGB uint8 (height, width, 3), got {found}")
    if min(image.shape[:2]) < 2:
        size = f"{image.shape[1]}x{image.shape[0]}"
        raise InteractiveError(f"the image ({size}) is too small for click-to-mask tools")


def check_point(point: Any, width: int, height: int, what: str) -> tuple[int, int]:
    """The pixel (column, row) of an (x, y) inside the image; its right and bottom edges count as inside."""
    try:
        x, y = (float(value) for value in point)
    except (TypeError, ValueError):
        raise InteractiveError(f"{what} must be an (x, y) pair of numbers, got {point!r}") from None
    if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= width and 0 <= y <= height):
        raise InteractiveError(f"{what} at ({x:g}, {y:g}) is outside the {width}x{height} image")
    return min(int(x), width - 1), min(int(y), height - 1)


def _as_click(click: Any, index: int) -> Click:
    if isinstance(click, Click):
        return click
    if isinstance(click, Mapping):
        click = (click.get("x"), click.get("y"), click.get("positive", True))
    if not isinstance(click, Sequence) or len(click) != 3 or not isinstance(click[2], (bool, np.bool_)):
        raise InteractiveError(f"click {index} must be (x, y, positive), positive true or false: {click!r}")
    return Click(click[0], click[1], bool(click[2]))


def _as_stroke(stroke: Any, index: int) -> Stroke:
    if isinstance(stroke, Mapping):
        points, positive = tuple(stroke.get("points") or ()), bool(stroke.get("positive", True))
        stroke = Stroke(points, positive, stroke.get("radius"))
    if not isinstance(stroke, Stroke):
        kind = type(stroke).__name__
        raise InteractiveError(f"stroke {index} must have points, positive and radius, got {kind}")
    if not 1 <= len(stroke.points) <= MAX_STROKE_POINTS:
        count = len(stroke.points)
        raise InteractiveError(f"stroke {index} must have 1 to {MAX_STROKE_POINTS} points, got {count}")
    radius = stroke.radius
    if radius is not None and not (isinstance(radius, (int, float)) and 0 < radius <= MAX_RADIUS):
        raise InteractiveError(f"stroke {index}: the brush radius must be 0-{MAX_RADIUS} px, got {radius!r}")
    return stroke


def check_marks(clicks: Sequence, strokes: Sequence, width: int, height: int) -> list[Stroke]:
    """Clicks then strokes as strokes (a click is a stroke of one point), each point inside the image."""
    clicks, strokes = list(clicks or ()), list(strokes or ())
    if len(clicks) + len(strokes) > MAX_CLICKS:
        raise InteractiveError(
            f"{len(clicks) + len(strokes)} clicks and strokes on one object is more than the {MAX_CLICKS} "
            "a tool call takes: keep this mask and fix the rest with the brush, or start a new object"
        )
    marks = []
    for index, click in enumerate(clicks, 1):
        click = _as_click(click, index)
        check_point((click.x, click.y), width, height, f"click {index}")
        marks.append(Stroke(((float(click.x), float(click.y)),), click.positive))
    for index, stroke in enumerate(strokes, 1):
        stroke = _as_stroke(stroke, index)
        points = tuple((float(x), float(y)) for x, y in stroke.points)
        for point in points:
            check_point(point, width, height, f"a point of stroke {index}")
        marks.append(Stroke(points, stroke.positive, stroke.radius))
    return marks


def check_box(box: Any, width: int, height: int) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) ordered and inside the image; a box of no area is refused."""
    try:
        x0, y0, x1, y1 = (float(value) for value in box)
    except (TypeError, ValueError):
        raise InteractiveError(f"the box must be (x0, y0, x1, y1) in pixels, got {box!r}") from None
    x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    for corner in ((x0, y0), (x1, y1)):
        check_point(corner, width, height, "the box's corner")
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise InteractiveError(
            f"the box ({x0:g}, {y0:g})-({x1:g}, {y1:g}) has no area: drag a rectangle around the object"
        )
    return x0, y0, x1, y1


def check_same_size(array: Any, height: int, width: int, what: str, dtype=None) -> np.ndarray:
    """A mask the size of the image: bool, or exactly ``dtype`` when given (a class-index map)."""
    if not isinstance(array, np.ndarray) or array.shape != (height, width):
        found = array.shape if isinstance(array, np.ndarray) else type(array).__name__
        raise InteractiveError(f"the {what} must be {height}x{width} like the image, got {found}")
    if dtype is not None:
        if array.dtype != dtype:
            raise InteractiveError(f"the {what} must be {np.dtype(dtype).name}, got {array.dtype}")
        return array
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise InteractiveError(f"the {what} must be true/false (or 0/1) per pixel")
    return array.astype(bool)
