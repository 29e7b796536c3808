"""Browser canvas strokes -> class-index masks -> COCO annotations, and back (pure: no files).

The Annotate page draws with dash-canvas, a fabric.js canvas. Pressing the canvas's own
Save button sends ``json_data``: fabric's JSON (``{"objects": [...]}``) with the
background picture as an ``image`` object and every stroke as a ``path`` (pencil),
``rect``, ``line`` or ``circle``. Each stroke's colour names a class through the label
map's palette; strokes are painted in order (later ones win) at the picture's full
resolution, over a pre-filled mask (a prediction being corrected) or over background.

This module knows colours and classes; ``cocoseg.pipeline.annotation.canvas`` knows fabric's
geometry and paints the pixels. ``AnnotationError`` and ``CanvasGeometry`` live in
``cocoseg.pipeline.annotation.types`` (shared by both) and are imported from here by the rest
of the project.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from cocoseg.pipeline.annotation.canvas import paint_canvas
from cocoseg.pipeline.annotation.types import AnnotationError, CanvasGeometry
from cocoseg.pipeline.data.labels import IGNORE_INDEX, LabelMap, palette_colour
from cocoseg.pipeline.data.masks import instance_mask
from cocoseg.pipeline.data.rendering import coco_annotations
from cocoseg.pipeline.data.validation import segmentation_error

__all__ = [
    "ERASER_COLOUR",
    "AnnotationError",
    "CanvasGeometry",
    "annotations_to_mask",
    "check_mask",
    "class_colours",
    "mask_to_annotations",
    "parse_colour",
    "strokes_to_mask",
]

ERASER_COLOUR = "#000001"


class ClassColours(dict):
    """``#rrggbb`` -> class index, remembering the label map's name for error messages."""

    label_map_name = "the label map"


def class_colours(label_map: LabelMap) -> dict[str, int]:
    """Palette colour of every class (background included) -> class index, plus the eraser -> 0."""
    colours = ClassColours(
        {
            "#{:02x}{:02x}{:02x}".format(*palette_colour(index)): index
            for index in range(label_map.num_classes)
        }
    )
    colours[ERASER_COLOUR] = 0
    colours.label_map_name = label_map.name
    return colours


_HEX_COLOUR = re.compile(r"^#([0-9a-f]{3}|[0-9a-f]{6})$")
_FUNCTION_COLOUR = re.compile(r"^(rgba?)\(([^()]*)\)$")
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]*)?$|^\.[0-9]+$")


def _parse_rgba(text: Any) -> tuple[int, int, int, float]:
    """(red, green, blue, alpha) of a CSS hex/rgb()/rgba() colour; AnnotationError otherwise."""
    shown = repr(text)[:60]
    if not isinstance(text, str) or len(text) > 80:
        raise AnnotationError(
            f"colour {shown} is not a colour: use #rrggbb, #rgb, rgb(r, g, b) or rgba(r, g, b, a)"
        )
    compact = re.sub(r"\s+", "", text).lower()
    hex_match = _HEX_COLOUR.match(compact)
    if hex_match:
        digits = hex_match.group(1)
        if len(digits) == 3:
            digits = "".join(digit * 2 for digit in digits)
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16), 1.0
    function_match = _FUNCTION_COLOUR.match(compact)
    if function_match:
        name, arguments = function_match.group(1), function_match.group(2).split(",")
        if len(arguments) == len(name) and all(_NUMBER.match(argument) for argument in arguments):
            channels = [float(argument) for argument in arguments[:3]]
            alpha = float(arguments[3]) if name == "rgba" else 1.0
            if all(channel <= 255 for channel in channels) and alpha <= 1:
                red, green, blue = (int(round(channel)) for channel in channels)
                return red, green, blue, alpha
    raise AnnotationError(
        f"colour {shown} is not a colour: use #rrggbb, #rgb, rgb(r, g, b) or rgba(r, g, b, a)"
    )


def parse_colour(text: str) -> str:
    """A CSS colour (``#rgb``, ``#rrggbb``, ``rgb()``, ``rgba()``; case and spaces free) as ``#rrggbb``.

    Alpha is dropped: a half-transparent stroke still names its class.
    """
    red, green, blue, _alpha = _parse_rgba(text)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _is_unset_colour(value: Any) -> bool:
    """fabric's "no paint": null, "", "transparent", or a colour with alpha 0."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "transparent", "none")):
        return True
    return _parse_rgba(value)[3] == 0


def _colour_class(value: Any, colours: Mapping[str, int], label_map_name: str, where: str) -> int | None:
    """Class index named by a fabric colour; None for "no paint" (null, transparent, alpha 0)."""
    if value is not None and not isinstance(value, str):
        raise AnnotationError(f"{where}: its colour is a {type(value).__name__}, not a plain colour")
    try:
        if _is_unset_colour(value):
            return None
        colour = parse_colour(value)
    except AnnotationError as error:
        raise AnnotationError(f"{where}: {error}") from None
    if colour not in colours:
        raise AnnotationError(f"colour {colour} is not a class of {label_map_name} ({where})")
    return colours[colour]


def strokes_to_mask(
    canvas_json: str | dict,
    geometry: CanvasGeometry,
    colours: Mapping[str, int],
    base: np.ndarray | None = None,
) -> np.ndarray:
    """Paint a dash-canvas drawing into a class-index mask at the picture's full resolution.

    Args:
        canvas_json: dash-canvas ``json_data`` (text or parsed).
        geometry: picture and canvas sizes.
        colours: ``#rrggbb`` -> class index (``class_colours(label_map)``).
        base: the pre-filled mask (uint8, H x W); copied, never changed. None: background.

    Returns:
        uint8 (H, W) mask; later strokes win.

    Raises:
        AnnotationError: the JSON is not a canvas, nothing is drawn, a stroke lies
            entirely outside the picture, a colour is not a class, the base does not
            fit, or the drawing is absurdly large.
    """
    shape = (geometry.image_height, geometry.image_width)
    if base is not None:
        if not isinstance(base, np.ndarray) or base.dtype != np.uint8 or base.shape != shape:
            shown = f"{base.shape} {base.dtype}" if isinstance(base, np.ndarray) else type(base).__name__
            raise AnnotationError(
                f"the pre-filled mask is {shown}; it must be uint8 of the picture's size {shape}"
            )
    lookup = {parse_colour(colour): int(value) for colour, value in colours.items()}
    if any(not 0 <= value < IGNORE_INDEX for value in lookup.values()):
        raise AnnotationError(f"class indices must be 0-{IGNORE_INDEX - 1}")
    label_map_name = getattr(colours, "label_map_name", "the label map")
    return paint_canvas(
        canvas_json, geometry, lambda value, where: _colour_class(value, lookup, label_map_name, where), base
    )


# --- masks <-> COCO annotations ----------------------------------------------------------


def check_mask(mask: Any, label_map: LabelMap) -> np.ndarray:
    """The mask as uint8 (H, W) if every value is a class of ``label_map`` or 255 (not drawn)."""
    if not isinstance(mask, np.ndarray) or mask.ndim != 2 or mask.dtype != np.uint8 or 0 in mask.shape:
        shown = f"{mask.shape} {mask.dtype}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise AnnotationError(f"a mask must be a non-empty uint8 (height, width) array, got {shown}")
    present = np.unique(mask)
    strange = [int(value) for value in present if value >= label_map.num_classes and value != IGNORE_INDEX]
    if strange:
        raise AnnotationError(
            f"the mask holds class {strange[0]}, but {label_map.name} has classes 0-{label_map.num_classes - 1}"
        )
    return mask


def mask_to_annotations(mask: np.ndarray, label_map: LabelMap, image_id: int, first_id: int) -> list[dict]:
    """One COCO annotation (compressed RLE, pycocotools area and bbox, iscrowd 0) per class present.

    255 (not drawn) and background are left out; ``category_id`` is the label map's COCO id
    of the class. Raises AnnotationError for a mask without any class to save.
    """
    check_mask(mask, label_map)
    annotations = coco_annotations(mask, label_map, image_id=image_id, first_id=first_id)
    if not annotations:
        raise AnnotationError("nothing to save: the mask holds no class other than background")
    for annotation in annotations:
        if annotation["area"] <= 0:
            raise AnnotationError(f"class {annotation['category_id']} has a region of zero area")
    return annotations


def annotations_to_mask(annotations: list[dict], label_map: LabelMap, height: int, width: int) -> np.ndarray:
    """The class-index mask of saved annotations (the inverse of ``mask_to_annotations``)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for annotation in annotations:
        class_index = label_map.class_of(annotation.get("category_id"))
        if class_index == 0:
            raise AnnotationError(
                f"category {annotation.get('category_id')!r} is not a class of {label_map.name}"
            )
        problem = segmentation_error(annotation.get("segmentation"), height, width)
        if problem:
            raise AnnotationError(f"annotation {annotation.get('id')!r}: {problem.message}")
        mask[instance_mask(annotation["segmentation"], height, width) > 0] = class_index
    return mask
