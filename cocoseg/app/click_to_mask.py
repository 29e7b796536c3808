"""Annotate's click-to-mask tools (``annotation.tools``): the browser sends each mark as fractions
of the canvas (``Annotate.TOOL_REQUEST``); ``use_tool`` makes a new starting layer and mounts a
canvas on it, so the brush and the eraser keep editing the result; ``Annotate.TOOL_STATE`` keeps
the layer names Undo goes back through and the object being built, never pixels. Registered by
``main.CALLBACK_MODULES``; the Annotate page owns the layout (``components.annotate_panels``).
"""

from __future__ import annotations

from dash import Input, Output, State, callback, no_update

from cocoseg.app import annotate_canvas as canvas
from cocoseg.app.components import annotate_panels as panels
from cocoseg.app.components.alerts import alert
from cocoseg.app.context import UPLOAD_ROUTE, current_settings, current_workspace
from cocoseg.app.ids import Annotate
from cocoseg.pipeline import annotation
from cocoseg.pipeline.annotation import tools

ERRORS = annotation.SESSION_ERRORS

TOOL_OUTPUTS = (*canvas.OPENED, Output(Annotate.TOOL_STATE, "data"), Output(Annotate.TOOL_STATUS, "children"))


def _tool_refused(reason, colour: str = "warning") -> tuple:
    return no_update, no_update, alert(str(reason), colour), no_update, no_update


def _on_layer(
    image: annotation.OpenImage, state: tools.ToolState, selection, canvas_settings, status
) -> tuple:
    """The image on its new starting layer, a canvas mounted on it, the tool state and a status line."""
    holder = f"{image.key[:12]}-{image.layer}"
    opened = canvas.with_canvas(image, selection, holder, canvas_settings, None)
    return (*opened, state.to_dict(), status)


@callback(
    *TOOL_OUTPUTS,
    Input(Annotate.TOOL_REQUEST, "data"),
    State(Annotate.CANVAS, "json_data"),
    State(Annotate.CURRENT, "data"),
    State(Annotate.TOOL_STATE, "data"),
    *canvas.SELECTION,
    *canvas.CANVAS_SETTINGS,
    prevent_initial_call=True,
)
def use_tool(mark, canvas_json, current, tool_state, preset, choice, *canvas_settings):
    """One mark; its result becomes the starting layer (a bad mark or a timeout changes nothing)."""
    current, selection = canvas.current_image(current), canvas.selection_from(preset, choice)
    if current is None:
        return _tool_refused("Open an image first, then use a click-to-mask tool.")
    workspace = current_workspace()
    try:
        request = tools.ToolRequest.from_dict(mark)
        class_index = tools.class_of_colour(canvas_settings[0], selection, workspace)
        state = tools.ToolState.for_image(tool_state, current)
        width = panels.canvas_width(current.width, current.height)
        timeout = current_settings().tool_timeout_seconds
        outcome = tools.apply_tool(
            workspace, current, canvas_json, selection, width, request, state, class_index, timeout
        )
    except ERRORS as error:
        return _tool_refused(error)
    status = panels.tool_status(request.tool, outcome)
    return _on_layer(outcome.current, outcome.state, selection, canvas_settings, status)


@callback(
    *TOOL_OUTPUTS,
    Input(Annotate.TOOL_UNDO, "n_clicks"),
    State(Annotate.CURRENT, "data"),
    State(Annotate.TOOL_STATE, "data"),
    *canvas.SELECTION,
    *canvas.CANVAS_SETTINGS,
    prevent_initial_call=True,
)
def undo_tool(_clicks, current, tool_state, preset, choice, *canvas_settings):
    """Back to the starting layer before the last tool call (strokes drawn since are dropped with it)."""
    current = canvas.current_image(current)
    if current is None:
        return _tool_refused("Open an image first.")
    undone = tools.undo(current_workspace(), current, tools.ToolState.for_image(tool_state, current))
    if undone is None:
        return no_update, no_update, no_update, no_update, "Nothing to undo: no tool call on this image yet."
    image, state = undone
    undid = "Undid the last tool call."
    return _on_layer(image, state, canvas.selection_from(preset, choice), canvas_settings, undid)


@callback(
    Output(Annotate.TOOL_STATE, "data", allow_duplicate=True),
    Output(Annotate.TOOL_STATUS, "children", allow_duplicate=True),
    Input(Annotate.TOOL_NEW_OBJECT, "n_clicks"),
    State(Annotate.CURRENT, "data"),
    State(Annotate.TOOL_STATE, "data"),
    prevent_initial_call=True,
)
def new_object(_clicks, current, tool_state):
    """The box and clicks tools' next mark starts a new object."""
    current = canvas.current_image(current)
    if current is None:
        return no_update, no_update
    state = tools.new_object(tools.ToolState.for_image(tool_state, current))
    return state.to_dict(), "New object: the next box or click starts it."


@callback(
    Output(Annotate.TOOL_MARKS, "children"),
    Input(Annotate.TOOL_STATE, "data"),
    Input(Annotate.CURRENT, "data"),
)
def show_marks(tool_state, current):
    return panels.object_marks(tool_state, current)


@callback(
    Output(Annotate.UNCERTAINTY, "src"),
    Output(Annotate.UNCERTAINTY, "style"),
    Input(Annotate.TOOL, "value"),
    Input(Annotate.CURRENT, "data"),
)
def show_uncertainty(tool, current):
    """Grow shows where the pre-fill model was unsure, over the canvas; a click there is a positive click."""
    return panels.uncertainty_overlay(tool, current, UPLOAD_ROUTE)
