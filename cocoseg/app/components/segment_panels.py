"""The Segment page's layout: the input panel (upload, images, model, variant, opacity), the
original and overlay pictures with their downloads, the classes found and their pixel shares.

Pure builders (no callbacks); what they show comes from
``cocoseg.pipeline.inference.upload_predictions``.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.ids import Frame, Segment
from cocoseg.pipeline.data import UPLOAD_ACCEPT
from cocoseg.pipeline.inference import UploadPrediction, signed_points

DEFAULT_OPACITY = 0.55
FP32_ONLY = [{"label": "FP32", "value": "fp32"}]
UPLOADS_LISTED = 20


def model_options(entries) -> list[dict]:
    return [
        {"label": f"{entry.name} ({entry.kind}, {entry.size} px)", "value": entry.name} for entry in entries
    ]


def variant_options(entry) -> list[dict]:
    """FP32, then each quantised variant with its device and mIoU change (and whether it is advised)."""
    options = list(FP32_ONLY)
    for variant in entry.variant_summaries():
        shown = f"{variant.name.upper()} ({variant.device}"
        shown += (
            f", {signed_points(variant.miou_delta_points, 1)} mIoU pts"
            if variant.miou_delta_points is not None
            else ""
        )
        shown += ")" if variant.recommended else ", not recommended)"
        options.append({"label": shown, "value": variant.name})
    return options


def upload_item(key: str, upload) -> dict:
    """How an upload is listed: name, size and what decoding changed (``UploadedImage.notes``)."""
    note = f" ({', '.join(upload.notes)})" if upload.notes else ""
    return {"key": key, "label": f"{upload.name} · {upload.width}×{upload.height}{note}"}


def upload_options(uploads: list[dict]) -> list[dict]:
    return [{"label": item["label"], "value": item["key"]} for item in uploads]


def timing_text(shown: UploadPrediction) -> str:
    upload, entry = shown.upload, shown.entry
    return (
        f"inference {shown.inference_seconds * 1000:.0f} ms on {shown.provider} ({shown.variant}), "
        f"{shown.total_seconds * 1000:.0f} ms in all · {upload.width}×{upload.height} px · "
        f"model input {entry.size} px {entry.resize}"
    )


def _controls(models: list[dict], max_upload_bytes: int) -> list:
    upload = dcc.Upload(
        id=Segment.UPLOAD,
        multiple=True,
        accept=UPLOAD_ACCEPT,
        max_size=max_upload_bytes,
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
        html.Div(str(max_upload_bytes), id=Frame.UPLOAD_LIMIT, hidden=True),
        html.Div(id=Segment.MESSAGES, className="mt-2"),
        dbc.Label("Images", className="mt-3 mb-1 small text-muted"),
        dbc.RadioItems(id=Segment.CURRENT, options=[], value=None, className="upload-list"),
        dbc.Label("Model or ensemble", className="mt-3 mb-1 small text-muted"),
        dcc.Dropdown(
            id=Segment.MODEL, options=models, value=models[0]["value"] if models else None, clearable=False
        ),
        dbc.Label("Variant", className="mt-3 mb-1 small text-muted"),
        dbc.RadioItems(id=Segment.VARIANT, options=FP32_ONLY, value="fp32", inline=True),
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


def _download_button(label: str, button_id: str, title: str) -> dbc.Button:
    return dbc.Button(
        [html.I(className="bi bi-download me-1"), label],
        id=button_id,
        title=title,
        size="sm",
        color="secondary",
        outline=True,
        disabled=True,
    )


def _pictures() -> dbc.Row:
    downloads = html.Div(
        [
            _download_button("Mask", Segment.DOWNLOAD_MASK, "class-index PNG at the image size"),
            _download_button("Overlay", Segment.DOWNLOAD_OVERLAY, "coloured overlay PNG"),
            _download_button("COCO", Segment.DOWNLOAD_COCO, "COCO JSON with one RLE annotation per class"),
            dcc.Download(id=Segment.DOWNLOAD),
        ],
        className="segment-downloads d-flex gap-2",
    )
    original = html.Div(
        [
            html.Img(id=Segment.ORIGINAL, className="stacked-picture", alt="original"),
            _hint("Drop images in Input (or choose one there); the chosen image shows here."),
        ],
        className="picture-stack",
    )
    overlay = html.Div(
        [
            html.Img(id=f"{Segment.OVERLAY}-picture", className="stacked-picture", alt="overlay base"),
            _hint("The model's classes over the image; Mask, Overlay and COCO download them."),
            html.Img(
                id=Segment.LAYER,
                className="stacked-layer",
                alt="class mask",
                style={"opacity": DEFAULT_OPACITY},
            ),
        ],
        id=Segment.OVERLAY,
        className="picture-stack",
    )
    return dbc.Row(
        [
            dbc.Col(panel("Original", original, icon="image"), md=6),
            dbc.Col(
                panel("Overlay", dcc.Loading(overlay, delay_show=150), icon="layers", actions=downloads), md=6
            ),
        ],
        className="g-3",
    )


def _hint(text: str) -> html.Div:
    """What a panel will show, until it does (a picture's hint hides once the picture has a source)."""
    return html.Div(text, className="picture-hint small text-muted")


def legend_hint() -> html.Div:
    return _hint("Each class the model found, in its colour.")


def shares_hint() -> html.Div:
    return _hint("How much of the image each class covers.")


def _details() -> dbc.Row:
    found = [
        html.Div(legend_hint(), id=Segment.LEGEND),
        html.Div(id=Segment.TIMING, className="small text-muted mt-2"),
    ]
    shares = html.Div(shares_hint(), id=Segment.SHARES)
    return dbc.Row(
        [
            dbc.Col(panel("Classes found", found, icon="palette"), md=6),
            dbc.Col(panel("Pixel share", shares, icon="bar-chart"), md=6),
        ],
        className="g-3 mt-1",
    )


def segment_page(models: list[dict], max_upload_bytes: int) -> html.Div:
    """The page; without models, how to get one."""
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
    controls = panel("Input", _controls(models, max_upload_bytes), icon="sliders")
    return html.Div(
        [
            header,
            dbc.Row(
                [dbc.Col(controls, lg=3), dbc.Col([_pictures(), _details()], lg=9)],
                className="g-3",
            ),
        ],
        className="page page-segment",
    )
