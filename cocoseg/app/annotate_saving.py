"""Annotate's saving and moving on: Save (the canvas publishes its strokes first, clientside),
the saved images of the open dataset, and "Next in queue" (the Review queue's next image not
corrected yet). Registered by ``main.CALLBACK_MODULES``; the Annotate page
(``pages/annotate.py``) owns the layout (``components.annotate_panels``).
"""

from __future__ import annotations

from dash import Input, Output, State, callback, clientside_callback, no_update

from cocoseg.app.annotate_canvas import SELECTION, current_image, selection_from
from cocoseg.app.components import annotate_panels as panels
from cocoseg.app.components.alerts import alert
from cocoseg.app.context import current_workspace
from cocoseg.app.ids import Annotate, Frame, Review
from cocoseg.app.links import next_in_queue
from cocoseg.pipeline import annotation

ERRORS = annotation.SESSION_ERRORS


clientside_callback(
    panels.PREVIEW_THEN_SAVE,
    Output(Annotate.SAVE_REQUEST, "data"),
    Input(Annotate.SAVE, "n_clicks"),
    prevent_initial_call=True,
)


@callback(
    Output(Annotate.MESSAGE, "children", allow_duplicate=True),
    Output(Annotate.CURRENT, "data", allow_duplicate=True),
    Output(Annotate.HISTORY_REFRESH, "data"),
    Input(Annotate.SAVE_REQUEST, "data"),
    State(Annotate.CANVAS, "json_data"),
    State(Annotate.CURRENT, "data"),
    *SELECTION,
    prevent_initial_call=True,
)
def save(_request, canvas_json, current, preset, choice):
    """Save the open image's mask as COCO annotations (refused when the file changed since it was opened)."""
    current = current_image(current)
    if current is None:
        return alert("Open an image first.", "warning"), no_update, no_update
    selection = selection_from(preset, choice)
    try:
        width = panels.canvas_width(current.width, current.height)
        saved = annotation.save(current_workspace(), current, canvas_json, selection, width)
    except annotation.VersionConflict as error:
        return alert(f"Not saved: {current.collection} {error}", "danger"), no_update, no_update
    except ERRORS as error:
        return alert(f"Not saved: {error}", "danger"), no_update, no_update
    message = f"Saved {saved.file_name} into annotations/{saved.collection}.json."
    return alert(message, "success"), saved.to_dict(), saved.version


@callback(
    Output(Frame.URL, "href"),
    Output(Annotate.MESSAGE, "children", allow_duplicate=True),
    Input(Annotate.NEXT, "n_clicks"),
    State(Review.NEXT, "data"),
    State(Annotate.CURRENT, "data"),
    State(Annotate.DATASET, "value"),
    prevent_initial_call=True,
)
def open_next(clicks, queue, current, choice):
    """Move on to the Review queue's next image not corrected yet (key N).

    Dash calls this once when the page is shown, whatever ``prevent_initial_call`` says,
    because its ``url`` output lives in the app frame, outside the page (dash-docs #1081):
    without a click it must do nothing, or every visit would say the queue is empty.
    """
    if not clicks:
        return no_update, no_update
    current = current_image(current)
    corrected = annotation.corrected_files(current_workspace(), annotation.collection_of(current, choice))
    link = next_in_queue(queue, current.file_name if current else None, corrected)
    if link is None:
        return no_update, alert("Nothing left in the review queue: rank a split on Review.", "info")
    return link, no_update


@callback(
    Output(Annotate.HISTORY, "children"),
    Input(Annotate.HISTORY_REFRESH, "data"),
    Input(Annotate.CURRENT, "data"),
    State(Annotate.DATASET, "value"),
)
def history(_refresh, current, choice):
    collection = annotation.collection_of(current_image(current), choice)
    try:
        return panels.saved_list(annotation.saved_images(current_workspace(), collection), collection)
    except ERRORS as error:
        return alert(str(error), "warning")
