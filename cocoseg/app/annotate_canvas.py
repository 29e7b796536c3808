"""What Annotate's callbacks share: the outputs that open an image (or give it a new starting
layer), the states that choose the label map and the canvas tool, and mounting a canvas on an
image. The page (``pages/annotate.py``) and the click-to-mask tools (``app/click_to_mask.py``)
both mount canvases through ``with_canvas``.
"""

from __future__ import annotations

from dash import Output, State

from cocoseg.app.components import annotate_panels as panels
from cocoseg.app.context import UPLOAD_ROUTE, current_settings, current_workspace
from cocoseg.app.ids import Annotate
from cocoseg.pipeline import annotation

OPENED = (  # what opening an image, or giving it a new starting layer, changes
    Output(Annotate.CURRENT, "data", allow_duplicate=True),
    Output(Annotate.CANVAS_AREA, "children", allow_duplicate=True),
    Output(Annotate.MESSAGE, "children", allow_duplicate=True),
)
SELECTION = (State(Annotate.LABELS, "value"), State(Annotate.DATASET, "value"))  # (preset, choice)
CANVAS_SETTINGS = tuple(State(name, "value") for name in (Annotate.CLASS, Annotate.BRUSH, Annotate.TOOL))


def selection_from(preset, choice) -> annotation.Selection:
    return annotation.Selection(choice, preset, current_settings().max_annotation_bytes)


def current_image(data) -> annotation.OpenImage | None:
    return annotation.OpenImage.from_dict(data) if data else None


def with_canvas(image: annotation.OpenImage, selection, holder: str, canvas_settings, note) -> tuple:
    """The image's state, a new canvas on it (strokes start empty) and a note on what happened.

    ``holder`` names the canvas: a new name mounts a new canvas (dash-canvas reads its picture once).
    """
    width = panels.canvas_width(image.width, image.height)
    background, height = annotation.canvas_view(current_workspace(), image, selection, width)
    picture = f"{UPLOAD_ROUTE}{background}.jpg"
    canvas = panels.canvas_holder(holder, picture, (width, height), *canvas_settings)
    return image.to_dict(), canvas, note
