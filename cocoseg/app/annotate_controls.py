"""Annotate's controls that follow each other: the image source (dataset or upload), the split's
fitting label maps and its images, the palette of the chosen label map, and the canvas tool the
palette and brush give dash-canvas. Registered by ``main.CALLBACK_MODULES``; the Annotate page
(``pages/annotate.py``) owns the layout (``components.annotate_panels``).
"""

from __future__ import annotations

import logging

from dash import Input, Output, State, callback, ctx, no_update

from cocoseg.app.annotate_canvas import selection_from
from cocoseg.app.components import annotate_panels as panels
from cocoseg.app.context import current_workspace
from cocoseg.app.ids import Annotate
from cocoseg.pipeline import annotation
from cocoseg.pipeline.data import default_preset, fitting_presets

logger = logging.getLogger(__name__)

ERRORS = annotation.SESSION_ERRORS


@callback(
    Output(Annotate.DATASET_CONTROLS, "style"),
    Output(Annotate.UPLOAD, "style"),
    Input(Annotate.SOURCE, "value"),
)
def show_source(source):
    hidden = {"display": "none"}
    return (hidden, {}) if source == "upload" else ({}, hidden)


@callback(
    Output(Annotate.LABELS, "options"),
    Output(Annotate.LABELS, "value"),
    Input(Annotate.DATASET, "value"),
    State(Annotate.LABELS, "value"),
)
def offer_label_maps(choice, preset):
    """Only the presets that fit the split (``labels.fitting_presets``); a preset that does not fit the
    new split gives way to the split's default (``labels.default_preset``, the CLI's rule too)."""
    # the value is always given back (never no_update), so the palette, which hangs on it, is drawn
    if not choice:
        return no_update, preset
    try:
        categories = selection_from(None, choice).coco(current_workspace()).categories
    except ERRORS:
        return no_update, preset
    options = [name for name in fitting_presets(categories) if name in panels.LABEL_PRESETS]
    return options, preset if preset in options else default_preset(categories)


@callback(
    Output(Annotate.IMAGE, "options"), Output(Annotate.IMAGE, "value"), Input(Annotate.DATASET, "value")
)
def image_choices(choice):
    """The split's images; a new split clears the image, but on page load a deep link's image stays shown
    (``open_link`` opens it: setting the value here would open it twice)."""
    if not choice:
        return [], None
    try:
        names = annotation.image_names(current_workspace(), selection_from(None, choice))
    except ERRORS as error:
        logger.warning("cannot list %s: %s", choice, error)
        return [], None
    return [{"label": name, "value": name} for name in names], None if ctx.triggered_id else no_update


@callback(
    Output(Annotate.CLASS, "options"),
    Output(Annotate.CLASS, "value"),
    Input(Annotate.LABELS, "value"),
    State(Annotate.DATASET, "value"),
)
def show_palette(preset, choice):
    try:
        options = panels.palette_options(selection_from(preset, choice).label_map(current_workspace()))
    except ERRORS as error:
        return [{"label": str(error), "value": "", "disabled": True}], None
    return options, options[0]["value"] if len(options) > 1 else None


@callback(
    Output(Annotate.CANVAS, "lineColor"),
    Output(Annotate.CANVAS, "lineWidth"),
    Output(Annotate.CANVAS, "tool"),
    Input(Annotate.CLASS, "value"),
    Input(Annotate.BRUSH, "value"),
    Input(Annotate.TOOL, "value"),
)
def canvas_tools(colour, width, tool):
    return colour or annotation.ERASER_COLOUR, width or 12, panels.canvas_tool(tool)
