"""Segment: upload images, run a model or ensemble through ONNX Runtime, see and download the masks.

A normal callback (inference is sub-second). Each upload is decoded once, kept
server-side under a random key (``cocoseg.pipeline.inference.uploads``), and only the key travels
back and forth; the prediction and the downloads are
``cocoseg.pipeline.inference.upload_predictions``. The mask layer is a transparent PNG whose
opacity the browser changes without asking the server. The layout is ``components.segment_panels``.
"""

from __future__ import annotations

import logging

import dash
from dash import ClientsideFunction, Input, Output, State, callback, ctx, dcc, no_update

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.segment_panels import (
    DEFAULT_OPACITY,
    FP32_ONLY,
    UPLOADS_LISTED,
    legend_hint,
    model_options,
    segment_page,
    shares_hint,
    timing_text,
    upload_item,
    upload_options,
    variant_options,
)
from cocoseg.app.components.segmentation import class_legend, data_url, share_table
from cocoseg.app.context import UPLOAD_ROUTE, current_settings, current_workspace
from cocoseg.app.ids import Segment
from cocoseg.pipeline.data import InvalidUpload, decode_upload
from cocoseg.pipeline.inference import (
    InferenceInputError,
    ModelError,
    get_entry,
    list_entries,
    predict_upload,
    result_download,
    store_upload,
)

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/segment", name="Segment", order=30, icon="magic")

DOWNLOADS = {
    Segment.DOWNLOAD_MASK: "mask",
    Segment.DOWNLOAD_OVERLAY: "overlay",
    Segment.DOWNLOAD_COCO: "coco",
}


def layout(**_query):
    return segment_page(model_options(list_entries(current_workspace())), current_settings().max_upload_bytes)


def _message(text: str, colour: str = "danger"):
    """An upload or segmentation message the user can close."""
    return alert(text, colour, dismissable=True, class_name="small upload-message")


@callback(
    Output(Segment.UPLOADS, "data"),
    Output(Segment.CURRENT, "options"),
    Output(Segment.CURRENT, "value"),
    Output(Segment.MESSAGES, "children"),
    Output(Segment.UPLOAD, "contents"),
    Input(Segment.UPLOAD, "contents"),
    State(Segment.UPLOAD, "filename"),
    State(Segment.UPLOADS, "data"),
    prevent_initial_call=True,
)
def receive_uploads(contents, filenames, uploads):
    """Decode each file once, keep it server-side and list it.

    The upload component is cleared, so the same file can come again.
    """
    if not contents:
        return no_update, no_update, no_update, no_update, no_update
    settings, workspace = current_settings(), current_workspace()
    uploads, messages, newest = list(uploads or []), [], None
    names = filenames if isinstance(filenames, list) else [filenames] * len(contents)
    for content, name in zip(contents, names):
        try:
            upload = decode_upload(content, name, settings.max_upload_bytes, settings.max_upload_pixels)
        except InvalidUpload as error:
            messages.append(_message(str(error)))
            continue
        newest = store_upload(workspace, upload)
        uploads.append(upload_item(newest, upload))
    uploads = uploads[-UPLOADS_LISTED:]
    return uploads, upload_options(uploads), newest or no_update, messages, None


@callback(Output(Segment.VARIANT, "options"), Output(Segment.VARIANT, "value"), Input(Segment.MODEL, "value"))
def list_variants(model):
    try:
        return variant_options(get_entry(current_workspace(), model)), "fp32"
    except (ModelError, TypeError):
        return FP32_ONLY, "fp32"


@callback(
    Output(Segment.ORIGINAL, "src"),
    Output(f"{Segment.OVERLAY}-picture", "src"),
    Output(Segment.LAYER, "src"),
    Output(Segment.LEGEND, "children"),
    Output(Segment.SHARES, "children"),
    Output(Segment.TIMING, "children"),
    Output(Segment.RESULT, "data"),
    Output(Segment.DOWNLOAD_MASK, "disabled"),
    Output(Segment.DOWNLOAD_OVERLAY, "disabled"),
    Output(Segment.DOWNLOAD_COCO, "disabled"),
    Input(Segment.CURRENT, "value"),
    Input(Segment.MODEL, "value"),
    Input(Segment.VARIANT, "value"),
    prevent_initial_call=True,
)
def segment(key, model, variant):
    """Run the chosen model on the chosen upload; everything shown comes from one prediction."""
    blank = (None, None, None, legend_hint(), shares_hint(), None, None, True, True, True)
    if not key or not model:
        return blank
    variant = variant or "fp32"
    try:
        shown = predict_upload(current_workspace(), key, model, variant)
    except (ModelError, InferenceInputError) as error:
        return (*blank[:3], _message(str(error)), *blank[4:])
    if shown is None:
        return (
            *blank[:3],
            _message("This upload has expired; upload the image again.", "warning"),
            *blank[4:],
        )
    picture = f"{UPLOAD_ROUTE}{key}.jpg"
    return (
        picture,
        picture,
        data_url(shown.layer_png, "image/png"),
        class_legend(shown.shares),
        share_table(shown.shares),
        timing_text(shown),
        {"key": key, "model": model, "variant": variant},
        False,
        False,
        False,
    )


dash.clientside_callback(
    ClientsideFunction(namespace="cocoseg", function_name="setOpacity"),
    Output(Segment.LAYER, "style"),
    Input(Segment.OPACITY, "value"),
)


@callback(
    Output(Segment.DOWNLOAD, "data"),
    Output(Segment.MESSAGES, "children", allow_duplicate=True),
    Input(Segment.DOWNLOAD_MASK, "n_clicks"),
    Input(Segment.DOWNLOAD_OVERLAY, "n_clicks"),
    Input(Segment.DOWNLOAD_COCO, "n_clicks"),
    State(Segment.RESULT, "data"),
    State(Segment.OPACITY, "value"),
    prevent_initial_call=True,
)
def download(_mask_clicks, _overlay_clicks, _coco_clicks, result, opacity):
    """The current result as a class-index PNG, an overlay PNG or COCO RLE JSON.

    The model may have been deleted (another tab, the CLI) since the result was shown: a message, not a 500.
    """
    if not isinstance(result, dict) or ctx.triggered_id not in DOWNLOADS:
        return no_update, no_update
    try:
        file = result_download(
            current_workspace(),
            str(result["key"]),
            str(result["model"]),
            str(result["variant"]),
            DOWNLOADS[ctx.triggered_id],
            opacity or DEFAULT_OPACITY,
        )
    except (ModelError, ValueError) as error:  # ValueError: a forged key, refused by its name check
        return no_update, _message(f"Cannot download this result: {error}")
    except KeyError:
        file = None
    if file is None:
        return no_update, _message("This upload has expired; upload the image again.", "warning")
    if isinstance(file.content, str):
        return dcc.send_string(file.content, file.file_name), no_update
    return dcc.send_bytes(file.content, file.file_name), no_update
