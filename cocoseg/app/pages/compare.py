"""Compare: members and their ensemble side by side on one image, with IoU against the truth.

Panels are Plotly images; zooming or panning one moves all of them (a browser-side
callback relays the axis ranges). Below, the members' and saved ensembles' validation
metrics from their evaluations. The masks come from ``cocoseg.pipeline.inference.comparison``;
the layout is ``components.compare_panels``.
"""

from __future__ import annotations

import logging

import dash
from dash import ALL, ClientsideFunction, Input, Output, State, callback, no_update

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.choosers import default_split, parse_split, split_choices
from cocoseg.app.components.compare_panels import compare_page, comparison_grid, metrics_view
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import Compare
from cocoseg.pipeline.data import ImageError, InvalidUpload, decode_upload, list_datasets
from cocoseg.pipeline.inference import (
    ModelError,
    compare,
    dataset_image,
    get_entry,
    list_entries,
    reference_evaluations,
    split_images,
    store_upload,
    upload_image,
)

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/compare", name="Compare", order=40, icon="layout-split")

MAX_IMAGES_LISTED = 500


def layout(members: str | None = None, **_query):
    """``?members=parent,child`` (the correction loop's link) chooses the members to compare."""
    workspace = current_workspace()
    datasets = split_choices(list_datasets(workspace))
    chosen = [name for name in (members or "").split(",") if name]
    return compare_page(
        datasets,
        default_split(datasets),
        list_entries(workspace),
        current_settings().max_upload_bytes,
        chosen,
    )


@callback(Output(Compare.IMAGE, "options"), Output(Compare.IMAGE, "value"), Input(Compare.DATASET, "value"))
def list_split_images(choice):
    if not choice:
        return [], None
    try:
        images = split_images(
            current_workspace(), *parse_split(choice), current_settings().max_annotation_bytes
        )
    except (ValueError, KeyError) as error:
        logger.warning("cannot list %s: %s", choice, error)
        return [], None
    options = [{"label": name, "value": image_id} for image_id, name in images[:MAX_IMAGES_LISTED]]
    return options, options[0]["value"] if options else None


@callback(
    Output(Compare.UPLOAD_KEY, "data"),
    Output(Compare.SOURCE, "value"),
    Output(Compare.MESSAGE, "children", allow_duplicate=True),
    Output(Compare.UPLOAD, "contents"),
    Input(Compare.UPLOAD, "contents"),
    State(Compare.UPLOAD, "filename"),
    prevent_initial_call=True,
)
def receive_upload(contents, filename):
    if not contents:
        return no_update, no_update, no_update, no_update
    settings = current_settings()
    try:
        upload = decode_upload(contents, filename, settings.max_upload_bytes, settings.max_upload_pixels)
    except InvalidUpload as error:
        return no_update, no_update, alert(str(error), "danger"), None
    return store_upload(current_workspace(), upload), "upload", None, None


@callback(
    Output(Compare.MEMBERS, "value"),
    Output(Compare.STRATEGY, "value"),
    Input(Compare.SAVED, "value"),
    prevent_initial_call=True,
)
def use_saved(name):
    if not name:
        return no_update, no_update
    card = get_entry(current_workspace(), name).card
    return card["members"], card["strategy"]


def _image(source, image_id, upload_key, label_map, choice):
    """(picture, truth or None, name) of the upload or of the chosen dataset image."""
    workspace = current_workspace()
    if source == "upload":
        return upload_image(workspace, upload_key)
    if image_id is None or not choice:
        raise ValueError("choose a dataset image")
    max_bytes = current_settings().max_annotation_bytes
    return dataset_image(workspace, *parse_split(choice), int(image_id), max_bytes, label_map)


@callback(
    Output(Compare.GRID, "children"),
    Output(Compare.MESSAGE, "children"),
    Input(Compare.SOURCE, "value"),
    Input(Compare.IMAGE, "value"),
    Input(Compare.UPLOAD_KEY, "data"),
    Input(Compare.MEMBERS, "value"),
    Input(Compare.STRATEGY, "value"),
    State(Compare.DATASET, "value"),
)
def show_comparison(source, image_id, upload_key, members, strategy, choice):
    """Original, truth, each member, the ensemble and the disagreement map, with per-image mIoU."""
    workspace, members, strategy = current_workspace(), members or [], strategy or "mean"
    try:
        if not members:
            raise ValueError("choose at least two members")
        label_map = get_entry(workspace, members[0]).label_map()
        picture, truth, name = _image(source, image_id, upload_key, label_map, choice)
        result = compare(workspace, members, strategy, picture, truth)
    except (ModelError, ValueError, ImageError) as error:
        return no_update, alert(str(error), "warning")
    return comparison_grid(picture, name, result, strategy), None


@callback(Output(Compare.METRICS, "children"), Input(Compare.MEMBERS, "value"), Input(Compare.SAVED, "value"))
def show_metrics(members, saved):
    """Saved validation results (FP32, whole split) of the members and of the chosen saved ensemble."""
    names = list(members or []) + ([saved] if saved else [])
    return metrics_view(reference_evaluations(current_workspace(), names))


dash.clientside_callback(
    ClientsideFunction(namespace="cocoseg", function_name="syncPanels"),
    Output(Compare.SYNC, "data"),
    Input({"type": Compare.PANEL, "index": ALL}, "relayoutData"),
    prevent_initial_call=True,
)
