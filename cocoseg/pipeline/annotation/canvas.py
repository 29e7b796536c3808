"""fabric.js canvas JSON (dash-canvas's ``json_data``) -> class indices painted into picture pixels.

fabric writes ``{"objects": [...]}``: the background picture as an ``image`` object and
every stroke as a ``path`` (pencil), ``rect``, ``line``, ``circle`` or ``ellipse``; hidden
or fully transparent objects draw nothing. Geometry follows fabric.js 2 exactly (checked
against json_data captured from Chromium, kept as a fixture in
tests/pipeline/annotation/test_annotations.py): an object's centre comes from ``left``/``top`` and its
origin, with ``width + strokeWidth`` as its size; its matrix is translate(centre) .
rotate(angle) . scale(flip) . skew; path points are relative to ``pathOffset`` (so
untouched pencil points are plain canvas pixels), line ``x1..y2`` are already relative to
the centre. Canvas pixels map to picture pixels by ``geometry.scale``; when the canvas's
own zoom buttons were used (they rescale every object, the picture included) the picture
object's scale tells the zoom factor. Pixels are painted when their centre lies inside a
shape, with round caps and joins on strokes. Which class a colour paints is the caller's
business (``class_of``, from ``cocoseg.pipeline.annotation.strokes``): no label maps here.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from cocoseg.pipeline.annotation.types import AnnotationError, CanvasGeometry

MAX_OBJECTS = 10_000
MAX_POINTS = 10_000
MAX_CANVAS_CHARACTERS = 64 * 1024 * 1024
MAX_COORDINATE = 1e6
CURVE_PIECES_MAX = 16
ZOOM_STEP = 1.25  # dash-canvas's zoom buttons multiply every object's scale by 1.25 or 0.8
DRAWABLE_TYPES = ("path", "rect", "line", "circle", "ellipse")
# a fabric colour (any JSON value) and where it is used -> the class it paints, None for no paint
ClassOf = Callable[[Any, str], "int | None"]


# --- fabric.js geometry ---------------------------------------------------------------


def _number(value: Any, what: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or abs(value) > MAX_COORDINATE:
        raise AnnotationError(f"{what} is {str(value)[:40]!r}, not a finite number up to {MAX_COORDINATE:g}")
    return float(value)


def _field(item: dict, key: str, default: float, where: str) -> float:
    value = item.get(key)
    return default if value is None else _number(value, f"{where}: {key}")


def _origin_offset(origin: Any, where: str) -> float:
    """fabric origins: left/top = -0.5, center = 0, right/bottom = 0.5, or a number."""
    named = {"left": -0.5, "top": -0.5, "center": 0.0, "right": 0.5, "bottom": 0.5}
    if origin is None:
        return -0.5
    if isinstance(origin, str) and origin in named:
        return named[origin]
    return _number(origin, f"{where}: origin")


def _dimension_matrix(item: dict, where: str, flipping: bool) -> np.ndarray:
    """fabric's ``_calcDimensionsTransformMatrix``: scale (with flips) . skewX . skewY, as 2x2."""
    scale_x = _field(item, "scaleX", 1.0, where) * (-1.0 if flipping and item.get("flipX") else 1.0)
    scale_y = _field(item, "scaleY", 1.0, where) * (-1.0 if flipping and item.get("flipY") else 1.0)
    matrix = np.array([[scale_x, 0.0], [0.0, scale_y]])
    skew_x = _field(item, "skewX", 0.0, where)
    skew_y = _field(item, "skewY", 0.0, where)
    if skew_x:
        matrix = matrix @ np.array([[1.0, math.tan(math.radians(skew_x))], [0.0, 1.0]])
    if skew_y:
        matrix = matrix @ np.array([[1.0, 0.0], [math.tan(math.radians(skew_y)), 1.0]])
    return matrix


def _object_matrix(item: dict, where: str, default_stroke: float = 1.0) -> np.ndarray:
    """3x3 matrix from an object's own (centre-relative) coordinates to canvas coordinates.

    fabric places ``left``/``top`` at the object's origin on its box of
    ``width + strokeWidth`` by ``height + strokeWidth`` (scaled and skewed), rotated
    about that point; the centre is where the object's own coordinates are zero.
    """
    width = _field(item, "width", 0.0, where)
    height = _field(item, "height", 0.0, where)
    stroke_width = _field(item, "strokeWidth", default_stroke, where)
    left, top = _field(item, "left", 0.0, where), _field(item, "top", 0.0, where)
    half = np.array([[(width + stroke_width) / 2], [(height + stroke_width) / 2]])
    corners = _dimension_matrix(item, where, flipping=False) @ (
        np.array([[-1, 1, -1, 1], [-1, -1, 1, 1]], dtype=float) * half
    )
    size = corners.max(axis=1) - corners.min(axis=1)
    origin = np.array([left, top])
    centre = (
        origin
        - np.array([_origin_offset(item.get("originX"), where), _origin_offset(item.get("originY"), where)])
        * size
    )
    angle = math.radians(_field(item, "angle", 0.0, where))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = origin + rotation @ (centre - origin)
    matrix = np.eye(3)
    matrix[:2, :2] = rotation @ _dimension_matrix(item, where, flipping=True)
    matrix[:2, 2] = centre
    return matrix


def _picture_frame(picture: dict | None, geometry: CanvasGeometry) -> np.ndarray:
    """3x3 matrix from canvas coordinates to picture pixels (continuous: pixel j spans [j, j+1)).

    Normally ``geometry.scale``. dash-canvas's zoom buttons multiply every object's scale
    and position by 1.25 or 0.8, the picture's included; fabric writes scales with two
    decimals, so the zoom is recovered as the power of 1.25 that explains the picture's
    scale, and the exact ``geometry.scale`` is divided by it.
    """
    frame = np.diag([geometry.scale, geometry.scale, 1.0])
    if picture is None:
        return frame
    where = "the picture object"
    if _field(picture, "angle", 0.0, where) or picture.get("flipX") or picture.get("flipY"):
        raise AnnotationError(
            "the picture was rotated or flipped on the canvas; reload the image and draw again"
        )
    width, height = _field(picture, "width", 0.0, where), _field(picture, "height", 0.0, where)
    scale = _field(picture, "scaleX", 1.0, where)
    if width <= 0 or height <= 0 or scale <= 0:
        return frame
    fitted = round(height * geometry.canvas_width / width) / height  # how dash-canvas fits the picture
    if fitted <= 0:
        return frame
    zoom = scale / fitted
    steps = round(math.log(zoom) / math.log(ZOOM_STEP))
    if abs(fitted * ZOOM_STEP**steps - scale) <= 0.006:  # two written decimals, and a little slack
        zoom = ZOOM_STEP**steps
    corner = _object_matrix(picture, where, default_stroke=0.0) @ np.array([-width / 2, -height / 2, 1.0])
    factor = geometry.scale / zoom
    return np.array([[factor, 0.0, -factor * corner[0]], [0.0, factor, -factor * corner[1]], [0.0, 0.0, 1.0]])


# --- painting ---------------------------------------------------------------------


def _pixel_range(low: float, high: float, size: int) -> tuple[int, int]:
    """Indices of pixels whose centre (j + 0.5) lies in [low, high], clipped to the picture."""
    return max(0, math.ceil(low - 0.5)), min(size, math.floor(high - 0.5) + 1)


def _interval(
    slope: np.ndarray, offset: np.ndarray, low: float, high: float
) -> tuple[np.ndarray, np.ndarray]:
    """x with low <= slope * x + offset <= high, per row: (start, stop); empty as (inf, -inf)."""
    # a zero slope divides by zero and a tiny one overflows: both give +-inf, which is the right
    # (unbounded) answer for a non-flat row; flat rows are decided below
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        first, second = (low - offset) / slope, (high - offset) / slope
    start = np.where(slope > 0, first, second)
    stop = np.where(slope > 0, second, first)
    flat = slope == 0
    inside = (offset >= low) & (offset <= high)
    start = np.where(flat, np.where(inside, -np.inf, np.inf), start)
    stop = np.where(flat, np.where(inside, np.inf, -np.inf), stop)
    return start, stop


def _capsule_spans(
    starts: np.ndarray, ends: np.ndarray, radius: float, centre_y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where the horizontal line y = centre_y crosses the capsule (points within ``radius`` of a segment).

    The capsule is convex, so the crossing is one interval: the hull of its crossings with
    the two end discs and the band between them. One row of each array per (segment, row).
    """
    lefts, rights = [], []
    for point in (starts, ends):
        height = radius * radius - (centre_y - point[:, 1]) ** 2
        reach = np.sqrt(np.maximum(height, 0.0))
        lefts.append(np.where(height >= 0, point[:, 0] - reach, np.inf))
        rights.append(np.where(height >= 0, point[:, 0] + reach, -np.inf))
    delta = ends - starts
    length_squared = (delta * delta).sum(axis=1)
    length = np.sqrt(length_squared)
    usable = length_squared > 0
    safe_squared, safe_length = np.where(usable, length_squared, 1.0), np.where(usable, length, 1.0)
    rise = centre_y - starts[:, 1]
    # along the segment: 0 <= ((x - sx) dx + rise dy) / |d|^2 <= 1; across it: |((x - sx)(-dy) + rise dx) / |d|| <= radius
    along = _interval(
        delta[:, 0] / safe_squared,
        (-starts[:, 0] * delta[:, 0] + rise * delta[:, 1]) / safe_squared,
        0.0,
        1.0,
    )
    across = _interval(
        -delta[:, 1] / safe_length,
        (starts[:, 0] * delta[:, 1] + rise * delta[:, 0]) / safe_length,
        -radius,
        radius,
    )
    band_left = np.maximum(along[0], across[0])
    band_right = np.minimum(along[1], across[1])
    empty = ~usable | (band_left > band_right)
    lefts.append(np.where(empty, np.inf, band_left))
    rights.append(np.where(empty, -np.inf, band_right))
    return np.minimum.reduce(lefts), np.maximum.reduce(rights)


SPAN_CHUNK = 1_000_000  # (segment, row) pairs handled at once: bounds the temporary arrays


def _paint_polyline(mask: np.ndarray, points: np.ndarray, radius: float, value: int) -> None:
    """Paint every pixel whose centre is within ``radius`` of the polyline (round caps and joins).

    Row by row: each segment's capsule covers one interval of every row it crosses; the
    intervals are marked in a difference array whose running sum is the coverage, so the
    cost follows the rows crossed, not the (possibly huge) boxes of long diagonal strokes.
    """
    height, width = mask.shape
    x0, x1 = _pixel_range(points[:, 0].min() - radius, points[:, 0].max() + radius, width)
    y0, y1 = _pixel_range(points[:, 1].min() - radius, points[:, 1].max() + radius, height)
    if x0 >= x1 or y0 >= y1:
        return
    starts = points[:-1] if len(points) > 1 else points
    ends = points[1:] if len(points) > 1 else points
    first_rows = np.array(
        [_pixel_range(min(a, b) - radius, 0, height)[0] for a, b in zip(starts[:, 1], ends[:, 1])]
    )
    stop_rows = np.array(
        [_pixel_range(0, max(a, b) + radius, height)[1] for a, b in zip(starts[:, 1], ends[:, 1])]
    )
    first_rows, stop_rows = np.maximum(first_rows, y0), np.minimum(stop_rows, y1)
    counts = np.maximum(stop_rows - first_rows, 0)
    changes = np.zeros((y1 - y0) * (x1 - x0 + 1), dtype=np.int64)
    segment = 0
    while segment < len(starts):
        last = segment + max(1, int(np.searchsorted(np.cumsum(counts[segment:]), SPAN_CHUNK)))
        chosen = np.arange(segment, min(last, len(starts)))
        segment = chosen[-1] + 1
        owners = np.repeat(chosen, counts[chosen])
        if not len(owners):
            continue
        offsets = np.arange(len(owners)) - np.repeat(
            np.cumsum(counts[chosen]) - counts[chosen], counts[chosen]
        )
        rows = first_rows[owners] + offsets
        left, right = _capsule_spans(starts[owners], ends[owners], radius, rows + 0.5)
        with np.errstate(invalid="ignore"):
            begin = np.clip(np.ceil(left - 0.5), x0, x1)
            finish = np.clip(np.floor(right - 0.5) + 1, x0, x1)
        painted = begin < finish
        where = (rows[painted] - y0) * (x1 - x0 + 1)
        changes += np.bincount(where + (begin[painted] - x0).astype(np.int64), minlength=changes.size)
        changes -= np.bincount(where + (finish[painted] - x0).astype(np.int64), minlength=changes.size)
    covered = np.cumsum(changes.reshape(y1 - y0, x1 - x0 + 1), axis=1)[:, :-1] > 0
    mask[y0:y1, x0:x1][covered] = value


def _paint_region(
    mask: np.ndarray, to_image: np.ndarray, extent: tuple[float, float], inside, value: int
) -> None:
    """Paint pixels whose centre, taken into the object's own coordinates, satisfies ``inside(u, v)``."""
    height, width = mask.shape
    box = _region_box(to_image, extent)
    x0, x1 = _pixel_range(box[0], box[2], width)
    y0, y1 = _pixel_range(box[1], box[3], height)
    if x0 >= x1 or y0 >= y1:
        return
    to_local = np.linalg.inv(to_image)
    xs = np.arange(x0, x1) + 0.5
    ys = (np.arange(y0, y1) + 0.5)[:, None]
    u = to_local[0, 0] * xs + to_local[0, 1] * ys + to_local[0, 2]
    v = to_local[1, 0] * xs + to_local[1, 1] * ys + to_local[1, 2]
    mask[y0:y1, x0:x1][inside(u, v)] = value


def _region_box(to_image: np.ndarray, extent: tuple[float, float]) -> tuple[float, float, float, float]:
    """Picture-space bounding box of the local box [-extent, extent]."""
    local = np.array([[-1, 1, -1, 1], [-1, -1, 1, 1], [1, 1, 1, 1]], dtype=float) * np.array(
        [[extent[0]], [extent[1]], [1.0]]
    )
    corners = to_image @ local
    return corners[0].min(), corners[1].min(), corners[0].max(), corners[1].max()


def _flatten(points: list[np.ndarray], steps_from: np.ndarray) -> Iterator[np.ndarray]:
    """Points along a quadratic or cubic Bezier (control points in picture pixels), start excluded.

    Just enough pieces to stay within a quarter pixel of the curve: the pencil's curves are
    nearly straight, and every piece costs a capsule to paint.
    """
    controls = [steps_from, *points]
    bends = [
        float(np.hypot(*(controls[index] - 2 * controls[index + 1] + controls[index + 2])))
        for index in range(len(controls) - 2)
    ]
    deviation = max(bends) * (0.25 if len(points) == 2 else 0.75)
    pieces = max(1, min(CURVE_PIECES_MAX, math.ceil(math.sqrt(deviation / 0.25))))
    for step in range(1, pieces + 1):
        t = step / pieces
        if len(points) == 2:
            control, end = points
            yield (1 - t) ** 2 * steps_from + 2 * (1 - t) * t * control + t * t * end
        else:
            first, second, end = points
            yield (
                (1 - t) ** 3 * steps_from
                + 3 * (1 - t) ** 2 * t * first
                + 3 * (1 - t) * t * t * second
                + t**3 * end
            )


_PATH_ARGUMENTS = {"M": 2, "L": 2, "Q": 4, "C": 6, "Z": 0}


def _path_polylines(item: dict, to_image: np.ndarray, where: str) -> list[np.ndarray]:
    """The path's subpaths as picture-space polylines (M/L/Q/C/Z, absolute, as fabric writes them)."""
    commands = item.get("path")
    if not isinstance(commands, list) or not commands:
        raise AnnotationError(f"{where} has no path commands")
    offset = item.get("pathOffset") or {}
    if not isinstance(offset, dict):
        raise AnnotationError(f"{where}: pathOffset is not an object")
    offset_x, offset_y = _field(offset, "x", 0.0, where), _field(offset, "y", 0.0, where)

    def point(x: Any, y: Any) -> np.ndarray:
        local = np.array(
            [
                _number(x, f"{where}: coordinate") - offset_x,
                _number(y, f"{where}: coordinate") - offset_y,
                1.0,
            ]
        )
        return (to_image @ local)[:2]

    polylines: list[list[np.ndarray]] = []
    for command in commands:
        if not isinstance(command, list) or not command or not isinstance(command[0], str):
            raise AnnotationError(
                f"{where}: path command {str(command)[:40]} is not a list starting with a letter"
            )
        letter, arguments = command[0].upper() if command[0] in ("z", "Z") else command[0], command[1:]
        if letter not in _PATH_ARGUMENTS:
            raise AnnotationError(
                f"{where}: path command {letter[:3]!r} is not supported (M, L, Q, C and Z are)"
            )
        if len(arguments) != _PATH_ARGUMENTS[letter]:
            raise AnnotationError(
                f"{where}: path command {letter} needs {_PATH_ARGUMENTS[letter]} numbers, got {len(arguments)}"
            )
        if letter == "M":
            polylines.append([point(*arguments)])
            continue
        if not polylines:
            raise AnnotationError(f"{where}: the path does not start with M")
        current = polylines[-1]
        if letter == "L":
            current.append(point(*arguments))
        elif letter == "Z":
            current.append(current[0])
        else:
            controls = [
                point(arguments[index], arguments[index + 1]) for index in range(0, len(arguments), 2)
            ]
            current.extend(_flatten(controls, current[-1]))
    return [np.array(polyline) for polyline in polylines]


def _point_count(item: dict) -> int:
    if item.get("type") == "path" and isinstance(item.get("path"), list):
        return sum(
            max(1, (len(command) - 1) // 2) if isinstance(command, list) else 1 for command in item["path"]
        )
    return {"rect": 4, "line": 2}.get(item.get("type"), 1)


@dataclasses.dataclass(frozen=True)
class _Shape:
    """One thing to paint: a stroked polyline or a filled region, in picture pixels."""

    value: int
    box: tuple[float, float, float, float]
    polyline: np.ndarray | None = None
    radius: float = 0.0
    to_image: np.ndarray | None = None
    extent: tuple[float, float] = (0.0, 0.0)
    inside: Any = None

    def paint(self, mask: np.ndarray) -> None:
        if self.polyline is not None:
            _paint_polyline(mask, self.polyline, self.radius, self.value)
        else:
            _paint_region(mask, self.to_image, self.extent, self.inside, self.value)


def _stroke_shapes(polylines: list[np.ndarray], radius: float, value: int) -> list[_Shape]:
    shapes = []
    for polyline in polylines:
        box = (
            polyline[:, 0].min() - radius,
            polyline[:, 1].min() - radius,
            polyline[:, 0].max() + radius,
            polyline[:, 1].max() + radius,
        )
        shapes.append(_Shape(value, box, polyline=polyline, radius=radius))
    return shapes


def _filled_shapes(
    kind: str,
    item: dict,
    to_image: np.ndarray,
    fill: int | None,
    stroke: int | None,
    stroke_width: float,
    where: str,
) -> list[_Shape]:
    """A rectangle, circle or ellipse fills its area (stroke included); a differing stroke colour paints the rim on top."""
    if kind == "rect":
        half_width, half_height = (
            _field(item, "width", 0.0, where) / 2,
            _field(item, "height", 0.0, where) / 2,
        )
    elif kind == "circle":
        half_width = half_height = _field(item, "radius", 0.0, where)
    else:
        half_width, half_height = _field(item, "rx", 0.0, where), _field(item, "ry", 0.0, where)
    rim = stroke_width / 2 if stroke is not None else 0.0
    outer = (half_width + rim, half_height + rim)
    inner = (half_width - rim, half_height - rim)
    if outer[0] <= 0 or outer[1] <= 0:
        raise AnnotationError(f"{where} has no area (width or height 0)")

    def within(extent):
        if kind == "rect":
            return lambda u, v: (np.abs(u) <= extent[0]) & (np.abs(v) <= extent[1])
        return lambda u, v: (u / max(extent[0], 1e-9)) ** 2 + (v / max(extent[1], 1e-9)) ** 2 <= 1.0

    box = _region_box(to_image, outer)
    shapes = [
        _Shape(
            fill if fill is not None else stroke, box, to_image=to_image, extent=outer, inside=within(outer)
        )
    ]
    if fill is not None and stroke is not None and stroke != fill and rim > 0:
        outer_test, inner_test = within(outer), within(inner)
        ring = (lambda u, v: outer_test(u, v) & ~inner_test(u, v)) if min(inner) > 0 else outer_test
        shapes.append(_Shape(stroke, box, to_image=to_image, extent=outer, inside=ring))
    return shapes


def _object_shapes(item: dict, number: int, frame: np.ndarray, class_of: ClassOf) -> list[_Shape]:
    """The shapes one fabric object paints, in picture pixels."""
    kind = item["type"]
    where = f"stroke {number} ({kind})"
    if kind in ("circle", "ellipse") and item.get("width") is None:  # fabric derives the box from the radii
        radius_x = _field(item, "radius" if kind == "circle" else "rx", 0.0, where)
        radius_y = _field(item, "radius" if kind == "circle" else "ry", 0.0, where)
        item = {**item, "width": 2 * radius_x, "height": 2 * radius_y}
    to_image = frame @ _object_matrix(item, where)
    determinant = abs(np.linalg.det(to_image[:2, :2]))
    if determinant < 1e-12:
        raise AnnotationError(f"{where} is scaled to nothing")
    stroke_width = _field(item, "strokeWidth", 1.0, where)
    if stroke_width < 0:
        raise AnnotationError(f"{where}: strokeWidth is negative")
    radius = max(0.5, stroke_width / 2 * math.sqrt(determinant))  # at least one pixel wide
    stroke = class_of(item.get("stroke"), where) if stroke_width > 0 else None
    if kind in ("path", "line"):
        if stroke is None:
            raise AnnotationError(f"{where} has no stroke colour")
        if kind == "path":
            polylines = _path_polylines(item, to_image, where)
        else:
            ends = [
                (
                    to_image
                    @ np.array(
                        [_field(item, f"x{end}", 0.0, where), _field(item, f"y{end}", 0.0, where), 1.0]
                    )
                )[:2]
                for end in (1, 2)
            ]
            polylines = [np.array(ends)]
        return _stroke_shapes(polylines, radius, stroke)
    fill = class_of(item.get("fill"), where)
    if fill is None and stroke is None:
        raise AnnotationError(f"{where} has neither a fill nor a stroke colour")
    return _filled_shapes(
        kind, item, to_image, fill, stroke, stroke_width if stroke is not None else 0.0, where
    )


def _canvas_objects(canvas_json: str | dict) -> list:
    if isinstance(canvas_json, str):
        if len(canvas_json) > MAX_CANVAS_CHARACTERS:
            raise AnnotationError(
                f"the drawing is {len(canvas_json) / 1e6:.0f} MB of JSON, above the {MAX_CANVAS_CHARACTERS / 1e6:.0f} MB limit"
            )
        try:
            canvas_json = json.loads(canvas_json)
        except (RecursionError, ValueError) as error:  # JSONDecodeError is a ValueError
            raise AnnotationError(
                f"the drawing is not valid JSON ({str(error)[:80]}); press the canvas's Save button again"
            ) from None
    if not isinstance(canvas_json, dict) or not isinstance(canvas_json.get("objects"), list):
        raise AnnotationError("the drawing is not a canvas: expected a JSON object with an 'objects' list")
    objects = canvas_json["objects"]
    if len(objects) > MAX_OBJECTS:
        raise AnnotationError(
            f"the drawing has {len(objects):,} objects, more than {MAX_OBJECTS:,}: save smaller parts one at a time"
        )
    for index, item in enumerate(objects, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise AnnotationError(f"canvas object {index} is not a fabric object with a 'type'")
    return objects


def paint_canvas(
    canvas_json: str | dict, geometry: CanvasGeometry, class_of: ClassOf, base: np.ndarray | None
) -> np.ndarray:
    """Paint every drawable object of a canvas, in order, over ``base`` (a copy) or over zeros.

    ``class_of(colour, where)`` names the class a fabric colour paints (None: no paint) and
    raises AnnotationError for a colour that is not a class; ``base`` is already checked.
    """
    shape = (geometry.image_height, geometry.image_width)
    objects = _canvas_objects(canvas_json)
    drawable = [
        item
        for item in objects
        if item["type"] != "image" and item.get("visible", True) is not False and item.get("opacity", 1) != 0
    ]
    if not drawable:
        raise AnnotationError("nothing is drawn on the canvas: paint over the picture, then press Save")
    unsupported = sorted({item["type"] for item in drawable if item["type"] not in DRAWABLE_TYPES})
    if unsupported:
        raise AnnotationError(
            f"canvas objects of type {', '.join(repr(kind[:20]) for kind in unsupported)} are not supported "
            f"(use {', '.join(DRAWABLE_TYPES)})"
        )
    points = sum(_point_count(item) for item in drawable)
    if points > MAX_POINTS:
        raise AnnotationError(
            f"the drawing has {points:,} points, more than {MAX_POINTS:,}: save smaller parts one at a time"
        )
    picture = next((item for item in objects if item["type"] == "image"), None)
    frame = _picture_frame(picture, geometry)
    mask = np.zeros(shape, dtype=np.uint8) if base is None else base.copy()
    for number, item in enumerate(drawable, start=1):
        shapes = _object_shapes(item, number, frame, class_of)
        if not any(
            box[0] < geometry.image_width and box[2] > 0 and box[1] < geometry.image_height and box[3] > 0
            for box in (shape_.box for shape_ in shapes)
        ):
            raise AnnotationError(f"stroke {number} ({item['type']}) lies entirely outside the picture")
        for shape_ in shapes:
            shape_.paint(mask)
    return mask
