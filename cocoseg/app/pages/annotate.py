"""Annotate: correct a model's mask (or draw from scratch) with dash-canvas, save it as COCO.

The canvas shows the image (with the starting mask blended in, when there is one) and
records strokes; ``cocoseg.pipeline.annotation`` keeps the image server-side, turns the
strokes into a class mask at full resolution over the starting mask, and saves it with a
version check, so two tabs cannot overwrite each other. The browser only holds keys
(``OpenImage.to_dict()`` in ``Annotate.CURRENT``). Layout: ``components.annotate_panels``.

Keys (``assets/cocoseg.js``): 1-9 pick a class, E the eraser, [ and ] the brush, P/L/R/H
pencil, line, rectangle, pan; B/C/S/W/M/G the click-to-mask tools (box, clicks, superpixel snap,
magic wand, model regions, grow from uncertainty); Enter starts a new object; Ctrl+Z undoes a
stroke, or the last tool call when the canvas has none; Space refreshes the preview; Ctrl+S saves;
N opens the next image of the Review queue not corrected yet (the queue is the app frame's
``Review.NEXT``).

Click-to-mask (``annotation.tools``) lives in ``cocoseg.app.click_to_mask``; the outputs and
states that open an image, and mounting a canvas on it, in ``cocoseg.app.annotate_canvas``; the
controls that follow each other (source, split -> label maps and images, palette, canvas tool)
in ``cocoseg.app.annotate_controls``.

Deep link (``cocoseg.app.links.annotate_link``): ``/annotate?dataset=D&split=S&image=FILE&model=M``
sets the dropdowns (the model's label map too) and opens the image pre-filled by ``open_link``;
``layout`` checks it (``annotation.resolve_link``) and says why a bad one opens nothing.

Saving, the saved list and "Next in queue" live in ``cocoseg.app.annotate_saving``.
Registering the corrections and "Fine-tune on corrections" live in ``cocoseg.app.correction_round``.
"""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, callback, ctx, html, no_update

from cocoseg.app.annotate_canvas import (
    CANVAS_SETTINGS,
    OPENED,
    SELECTION,
    current_image,
    selection_from,
    with_canvas,
)
from cocoseg.app.components import annotate_panels as panels
from cocoseg.app.components.alerts import alert
from cocoseg.app.components.choosers import split_choices
from cocoseg.app.context import UPLOAD_ROUTE, current_settings, current_workspace
from cocoseg.app.ids import Annotate
from cocoseg.pipeline import annotation
from cocoseg.pipeline.annotation import tools
from cocoseg.pipeline.data import decode_upload, list_datasets
from cocoseg.pipeline.inference import list_entries

dash.register_page(__name__, path="/annotate", name="Annotate", order=35, icon="brush")

ERRORS = annotation.SESSION_ERRORS


def _opens(trigger: Input, *states: State):
    """A callback that opens an image or gives it a new starting layer; its last arguments are
    (preset, choice, colour, width, tool)."""
    return callback(*OPENED, trigger, *states, *SELECTION, *CANVAS_SETTINGS, prevent_initial_call=True)


def layout(**query) -> html.Div:
    """The page; a deep link in ``query`` is checked once, here (other query parameters are ignored)."""
    workspace, settings = current_workspace(), current_settings()
    datasets, entries = list_datasets(workspace), list_entries(workspace)
    link, refusal = None, ""
    try:
        link = annotation.resolve_link(workspace, query, settings.max_annotation_bytes, panels.LABEL_PRESETS)
    except ERRORS as error:
        refusal = str(error)
    choices = split_choices(datasets)
    try:
        preset = annotation.starting_preset(
            workspace,
            choices[0] if choices else None,
            entries,
            panels.LABEL_PRESETS,
            settings.max_annotation_bytes,
        )
    except ERRORS:
        preset = annotation.DEFAULT_PRESET  # the split's file is unreadable; choosing it says why
    return panels.page_layout(datasets, entries, settings.max_upload_bytes, preset, link, refusal)


def _opened(image: annotation.OpenImage, selection, canvas_settings) -> tuple:
    tools.warm_up()  # the click-to-mask tools' imports, before the first click
    note = (
        "its saved mask is the starting layer" if image.base else "draw the classes, or pre-fill from a model"
    )
    return with_canvas(
        image, selection, image.key[:12], canvas_settings, alert(f"Opened {image.file_name}: {note}.")
    )


def _prefilled(updated: annotation.OpenImage, prediction, model: str, selection, canvas_settings) -> tuple:
    timing = f"{prediction.seconds * 1000:.0f} ms on {prediction.provider}"
    note = alert(f"Pre-filled with {model} ({timing}); paint over what it got wrong.", "success")
    return with_canvas(updated, selection, f"{updated.key[:12]}-{model}"[:60], canvas_settings, note)


def _refused(reason: Exception | str, colour: str = "danger") -> tuple:
    """Nothing opened or changed, and why."""
    return no_update, no_update, alert(str(reason), colour)


# --- opening an image ----------------------------------------------------------------------


@_opens(Input(Annotate.IMAGE, "value"))
def open_dataset_image(file_name, preset, choice, *canvas_settings):
    """A dataset image, with its own annotations shown until something is drawn."""
    if not file_name or not choice:
        return (no_update,) * 3
    selection = selection_from(preset, choice)
    try:
        opened = annotation.open_dataset_image(current_workspace(), selection, file_name)
        return _opened(opened, selection, canvas_settings)
    except ERRORS as error:
        return _refused(error)


@_opens(Input(Annotate.UPLOAD, "contents"), State(Annotate.UPLOAD, "filename"))
def open_upload(contents, upload_name, preset, choice, *canvas_settings):
    """An uploaded image (decoded and checked like a Segment upload)."""
    if not contents:
        return (no_update,) * 3
    settings, selection = current_settings(), selection_from(preset, choice)
    try:
        upload = decode_upload(
            contents, upload_name or "upload", settings.max_upload_bytes, settings.max_upload_pixels
        )
        return _opened(
            annotation.open_upload(current_workspace(), upload, selection), selection, canvas_settings
        )
    except ERRORS as error:
        return _refused(error)


@_opens(Input({"type": Annotate.REOPEN, "file": ALL}, "n_clicks"), State(Annotate.CURRENT, "data"))
def reopen_saved(reopen_clicks, current, preset, choice, *canvas_settings):
    """A saved image again, from the history list."""
    if not ctx.triggered_id or not any(reopen_clicks or []):
        return (no_update,) * 3
    selection = selection_from(preset, choice)
    collection = annotation.collection_of(current_image(current), choice)
    try:
        opened = annotation.reopen_saved(current_workspace(), collection, ctx.triggered_id["file"], selection)
        return _opened(opened, selection, canvas_settings)
    except ERRORS as error:
        return _refused(error)


# --- starting layers and preview ------------------------------------------------------------


@_opens(Input(Annotate.PREFILL, "n_clicks"), State(Annotate.MODEL, "value"), State(Annotate.CURRENT, "data"))
def prefill(_clicks, model, current, preset, choice, *canvas_settings):
    """Run the chosen model on the open image; its mask becomes the editable starting layer."""
    current, selection = current_image(current), selection_from(preset, choice)
    if current is None:
        return _refused("Open an image first.", "warning")
    try:
        updated, prediction = annotation.prefill(current_workspace(), current, model or "", selection)
    except ERRORS as error:
        return _refused(error)
    return _prefilled(updated, prediction, model, selection, canvas_settings)


@callback(*OPENED, Input(Annotate.LINK, "data"), *CANVAS_SETTINGS, prevent_initial_call="initial_duplicate")
def open_link(link, *canvas_settings):
    """A deep link (checked by ``layout``) on page load: its image opened, then pre-filled by its model."""
    if not link:
        return (no_update,) * 3
    request = annotation.LinkRequest.from_dict(link)
    selection = selection_from(request.preset, request.choice)
    try:
        opened = annotation.open_dataset_image(current_workspace(), selection, request.image)
        if not request.model:
            return _opened(opened, selection, canvas_settings)
        updated, prediction = annotation.prefill(current_workspace(), opened, request.model, selection)
    except ERRORS as error:
        return _refused(error)
    return _prefilled(updated, prediction, request.model, selection, canvas_settings)


@_opens(Input(Annotate.FROM_DATASET, "n_clicks"), State(Annotate.CURRENT, "data"))
def start_from_dataset(_clicks, current, preset, choice, *canvas_settings):
    """The image's own annotations become the editable starting layer (to correct the dataset itself)."""
    updated = annotation.start_from_dataset(current_workspace(), current_image(current))
    if updated is None:
        return _refused("Open a dataset image first (uploads have no annotations).", "warning")
    note = alert("Started from the dataset's annotations; paint the corrections.", "success")
    return with_canvas(
        updated, selection_from(preset, choice), f"{updated.key[:12]}-dataset", canvas_settings, note
    )


@callback(
    Output(Annotate.PREVIEW, "children"),
    Output(Annotate.LEGEND, "children"),
    Input(Annotate.CANVAS, "json_data"),
    Input(Annotate.CURRENT, "data"),
    *SELECTION,
)
def preview(canvas_json, current, preset, choice):
    """The class mask the strokes make, beside the canvas (refreshed by the canvas's Preview or Space)."""
    current = current_image(current)
    if current is None:
        return no_update, no_update
    selection, width = selection_from(preset, choice), panels.canvas_width(current.width, current.height)
    try:
        layer = annotation.preview_layer(current_workspace(), current, canvas_json, selection, width)
    except ERRORS as error:
        return no_update, alert(str(error), "warning")
    picture = f"{UPLOAD_ROUTE}{current.key}.jpg"
    return panels.preview_view(picture, current.file_name, layer.mask, layer.label_map, layer.from_dataset)
