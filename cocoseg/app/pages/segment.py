"""Segment: upload images, run a model or ensemble through ONNX Runtime, see and download the masks.

A normal callback (inference is sub-second). Each upload is decoded once, kept
server-side under a random key (``cocoseg.pipeline.inference.uploads``), and only the key travels
back and forth; the mask layer is a transparent PNG whose opacity the browser changes
without asking the server.
"""

from __future__ import annotations

import json
import logging
import time

import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, callback, ctx, dcc, html, no_update

from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.components.segmentation import class_legend, data_url, share_table
from cocoseg.app.context import UPLOAD_ROUTE, current_settings, current_workspace
from cocoseg.app.ids import Segment
from cocoseg.pipeline.data.images import UPLOAD_ACCEPT, InvalidUpload, decode_upload
from cocoseg.pipeline.inference.batch import CocoPredictions
from cocoseg.pipeline.inference.model_store import ModelError, get_entry, list_entries
from cocoseg.pipeline.inference.predictor import InferenceInputError, Predictor
from cocoseg.pipeline.inference.rendering import (
    image_png,
    mask_layer_png,
    mask_png,
    overlay,
    pixel_shares,
)
from cocoseg.pipeline.inference.uploads import (
    display_size,
    load_result,
    load_upload,
    store_result,
    store_upload,
)

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/segment", name="Segment", order=30, icon="magic")

DEFAULT_OPACITY = 0.55


def model_options(workspace) -> list[dict]:
    return [
        {"label": f"{entry.name} ({entry.kind}, {entry.size} px)", "value": entry.name}
        for entry in list_entries(workspace)
    ]


def variant_options(entry) -> list[dict]:
    options = [{"label": "FP32", "value": "fp32"}]
    for variant in entry.variants()[1:]:
        record = entry.card["variants"][variant]
        delta = record.get("miou_delta_points")
        shown = f"{variant.upper()} ({record.get('device', '?')}"
        shown += f", {delta:+.1f} mIoU pts" if delta is not None else ""
        shown += ")" if record.get("recommended", True) else ", not recommended)"
        options.append({"label": shown, "value": variant})
    return options


def _controls(models: list[dict]) -> list:
    upload = dcc.Upload(
        id=Segment.UPLOAD,
        multiple=True,
        accept=UPLOAD_ACCEPT,
        max_size=current_settings().max_upload_bytes,
        children=html.Div(
            [
                html.I(className="bi bi-cloud-arrow-up upload-icon"),
                html.Div("Drop images here or click to choose"),
                html.Small("JPEG, PNG, WebP, BMP, TIFF", className="text-muted"),
            ]
        ),
        className="upload-zone",
    )
    return [
        upload,
        html.Div(str(current_settings().max_upload_bytes), id="upload-limit-bytes", hidden=True),
        html.Div(id=Segment.MESSAGES, className="mt-2"),
        dbc.Label("Images", className="mt-3 mb-1 small text-muted"),
        dbc.RadioItems(id=Segment.CURRENT, options=[], value=None, className="upload-list"),
        dbc.Label("Model or ensemble", className="mt-3 mb-1 small text-muted"),
        dcc.Dropdown(
            id=Segment.MODEL, options=models, value=models[0]["value"] if models else None, clearable=False
        ),
        dbc.Label("Variant", className="mt-3 mb-1 small text-muted"),
        dbc.RadioItems(
            id=Segment.VARIANT, options=[{"label": "FP32", "value": "fp32"}], value="fp32", inline=True
        ),
        dbc.Label("Mask opacity", className="mt-3 mb-1 small text-muted"),
        dcc.Slider(
            id=Segment.OPACITY,
            min=0,
            max=1,
            step=0.05,
            value=DEFAULT_OPACITY,
            marks=None,
            tooltip={"placement": "bottom"},
        ),
        dcc.Store(id=Segment.UPLOADS, data=[]),
        dcc.Store(id=Segment.RESULT, data=None),
    ]


def _results() -> list:
    downloads = html.Div(
        [
            dbc.Button(
                [html.I(className="bi bi-download me-1"), "Mask"],
                id=Segment.DOWNLOAD_MASK,
                title="class-index PNG at the image size",
                size="sm",
                color="secondary",
                outline=True,
                disabled=True,
            ),
            dbc.Button(
                [html.I(className="bi bi-download me-1"), "Overlay"],
                id=Segment.DOWNLOAD_OVERLAY,
                title="coloured overlay PNG",
                size="sm",
                color="secondary",
                outline=True,
                disabled=True,
            ),
            dbc.Button(
                [html.I(className="bi bi-download me-1"), "COCO"],
                id=Segment.DOWNLOAD_COCO,
                title="COCO JSON with one RLE annotation per class",
                size="sm",
                color="secondary",
                outline=True,
                disabled=True,
            ),
            dcc.Download(id=Segment.DOWNLOAD),
        ],
        className="d-flex gap-2",
    )
    pictures = dbc.Row(
        [
            dbc.Col(
                panel(
                    "Original",
                    html.Div(
                        html.Img(id=Segment.ORIGINAL, className="stacked-picture", alt="original"),
                        className="picture-stack",
                    ),
                    icon="image",
                ),
                md=6,
            ),
            dbc.Col(
                panel(
                    "Overlay",
                    dcc.Loading(
                        html.Div(
                            [
                                html.Img(
                                    id=f"{Segment.OVERLAY}-picture",
                                    className="stacked-picture",
                                    alt="overlay base",
                                ),
                                html.Img(
                                    id=Segment.LAYER,
                                    className="stacked-layer",
                                    alt="class mask",
                                    style={"opacity": DEFAULT_OPACITY},
                                ),
                            ],
                            id=Segment.OVERLAY,
                            className="picture-stack",
                        ),
                        delay_show=150,
                    ),
                    icon="layers",
                    actions=downloads,
                ),
                md=6,
            ),
        ],
        className="g-3",
    )
    details = dbc.Row(
        [
            dbc.Col(
                panel(
                    "Classes found",
                    [
                        html.Div(id=Segment.LEGEND),
                        html.Div(id=Segment.TIMING, className="small text-muted mt-2"),
                    ],
                    icon="palette",
                ),
                md=6,
            ),
            dbc.Col(panel("Pixel share", html.Div(id=Segment.SHARES), icon="bar-chart"), md=6),
        ],
        className="g-3 mt-1",
    )
    return [pictures, details]


def layout(**_query) -> html.Div:
    models = model_options(current_workspace())
    header = html.Div(
        [
            html.H2("Segment"),
            html.Span("upload images and segment them with ONNX Runtime", className="text-muted small"),
        ],
        className="page-header",
    )
    if not models:
        guidance = empty_state(
            "No models yet.",
            "Train one on the Train page or with `cocoseg train PREPARED`, then "
            "`cocoseg export RUN` (or `cocoseg models import FILE.onnx --card card.json`).",
            icon="box",
        )
        return html.Div([header, panel("Models", guidance, icon="box")], className="page page-segment")
    return html.Div(
        [
            header,
            dbc.Row(
                [dbc.Col(panel("Input", _controls(models), icon="sliders"), lg=3), dbc.Col(_results(), lg=9)],
                className="g-3",
            ),
        ],
        className="page page-segment",
    )


def _alert(text: str, colour: str = "danger") -> dbc.Alert:
    return dbc.Alert(text, color=colour, className="py-1 px-2 mb-1 small upload-message", dismissable=True)


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
            messages.append(_alert(str(error)))
            continue
        newest = store_upload(workspace, upload)
        note = f" ({', '.join(upload.notes)})" if upload.notes else ""
        uploads.append({"key": newest, "label": f"{upload.name} · {upload.width}×{upload.height}{note}"})
    uploads = uploads[-20:]
    options = [{"label": item["label"], "value": item["key"]} for item in uploads]
    return uploads, options, newest or no_update, messages, None


@callback(Output(Segment.VARIANT, "options"), Output(Segment.VARIANT, "value"), Input(Segment.MODEL, "value"))
def list_variants(model):
    try:
        return variant_options(get_entry(current_workspace(), model)), "fp32"
    except (ModelError, TypeError):
        return [{"label": "FP32", "value": "fp32"}], "fp32"


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
    import cv2

    blank = (None, None, None, None, None, None, None, True, True, True)
    if not key or not model:
        return blank
    workspace = current_workspace()
    upload = load_upload(workspace, key)
    if upload is None:
        return (*blank[:3], _alert("This upload has expired; upload the image again.", "warning"), *blank[4:])
    started = time.perf_counter()
    try:
        entry = get_entry(workspace, model)
        predictor = Predictor(entry, variant or "fp32")
        prediction = predictor.predict(upload.image)
    except (ModelError, InferenceInputError) as error:
        return (*blank[:3], _alert(str(error)), *blank[4:])
    store_result(workspace, key, model, variant or "fp32", prediction.mask)
    label_map = entry.label_map()
    width, height = display_size(upload.width, upload.height)
    layer = cv2.resize(prediction.mask, (width, height), interpolation=cv2.INTER_NEAREST)
    picture = f"{UPLOAD_ROUTE}{key}.jpg"
    rows = pixel_shares(prediction.mask, label_map)
    total = time.perf_counter() - started
    timing = (
        f"inference {prediction.seconds * 1000:.0f} ms on {prediction.provider} ({variant or 'fp32'}), "
        f"{total * 1000:.0f} ms in all · {upload.width}×{upload.height} px · "
        f"model input {entry.size} px {entry.resize}"
    )
    result = {"key": key, "model": model, "variant": variant or "fp32"}
    return (
        picture,
        picture,
        data_url(mask_layer_png(layer, label_map), "image/png"),
        class_legend(rows),
        share_table(rows),
        timing,
        result,
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
    Input(Segment.DOWNLOAD_MASK, "n_clicks"),
    Input(Segment.DOWNLOAD_OVERLAY, "n_clicks"),
    Input(Segment.DOWNLOAD_COCO, "n_clicks"),
    State(Segment.RESULT, "data"),
    State(Segment.OPACITY, "value"),
    prevent_initial_call=True,
)
def download(_mask_clicks, _overlay_clicks, _coco_clicks, result, opacity):
    """The current result as a class-index PNG, an overlay PNG or COCO RLE JSON."""
    if not result or not ctx.triggered_id:
        return no_update
    workspace = current_workspace()
    upload = load_upload(workspace, result["key"])
    mask = load_result(workspace, result["key"], result["model"], result["variant"])
    if upload is None or mask is None:
        return no_update
    stem = (
        "".join(
            character if character.isalnum() or character in "-_" else "_"
            for character in upload.name.rsplit(".", 1)[0]
        )[:60]
        or "upload"
    )
    label_map = get_entry(workspace, result["model"]).label_map()
    if ctx.triggered_id == Segment.DOWNLOAD_MASK:
        return dcc.send_bytes(mask_png(mask), f"{stem}.mask.png")
    if ctx.triggered_id == Segment.DOWNLOAD_OVERLAY:
        return dcc.send_bytes(
            image_png(overlay(upload.image, mask, label_map, opacity or DEFAULT_OPACITY)),
            f"{stem}.overlay.png",
        )
    coco = CocoPredictions(label_map).add(upload.name, mask).to_dict()
    return dcc.send_string(json.dumps(coco), f"{stem}.coco.json")
