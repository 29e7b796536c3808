"""Compare: members and their ensemble side by side on one image, with IoU against the truth.

Panels are Plotly images; zooming or panning one moves all of them (a browser-side
callback relays the axis ranges). Below, the members' and saved ensembles' validation
metrics from their evaluations.
"""

from __future__ import annotations

import logging

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import ALL, ClientsideFunction, Input, Output, State, callback, dcc, html, no_update

from cocoseg.app.components.figures import LIGHT, iou_heatmap
from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.components.segmentation import data_url
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import Compare
from cocoseg.pipeline.data.images import ImageError, InvalidUpload, decode_upload
from cocoseg.pipeline.data.masks import colorize
from cocoseg.pipeline.data.registry import list_datasets
from cocoseg.pipeline.inference.comparison import compare, dataset_image, disagreement_picture, split_images
from cocoseg.pipeline.inference.evaluate import saved_evaluations
from cocoseg.pipeline.inference.model_store import ModelError, get_entry, list_entries
from cocoseg.pipeline.inference.onnx_graph import STRATEGIES
from cocoseg.pipeline.inference.rendering import image_jpeg, overlay
from cocoseg.pipeline.inference.uploads import load_upload, store_upload

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/compare", name="Compare", order=40, icon="layout-split")

PANEL_OPACITY = 0.6
MAX_IMAGES_LISTED = 500


def _dataset_choices(workspace) -> list[str]:
    return [f"{entry.name}/{split}" for entry in list_datasets(workspace) for split in entry.splits]


def _controls(workspace, models: list, ensembles: list) -> list:
    datasets = _dataset_choices(workspace)
    default = "demo/val" if "demo/val" in datasets else (datasets[0] if datasets else None)
    return [
        dbc.RadioItems(
            id=Compare.SOURCE,
            options=[{"label": "dataset image", "value": "dataset"}, {"label": "upload", "value": "upload"}],
            value="dataset",
            inline=True,
        ),
        html.Div(
            [
                dcc.Dropdown(
                    id=Compare.DATASET, options=datasets, value=default, clearable=False, className="mt-2"
                ),
                dcc.Dropdown(id=Compare.IMAGE, options=[], placeholder="image", className="mt-2"),
            ],
            id=f"{Compare.SOURCE}-dataset",
        ),
        dcc.Upload(
            id=Compare.UPLOAD,
            accept="image/*",
            max_size=current_settings().max_upload_bytes,
            className="upload-zone mt-2 py-2",
            children=html.Div([html.I(className="bi bi-cloud-arrow-up me-1"), "drop or choose an image"]),
        ),
        html.Div(str(current_settings().max_upload_bytes), id="upload-limit-bytes", hidden=True),
        dcc.Store(id=Compare.UPLOAD_KEY),
        dbc.Label("Saved ensemble", className="mt-3 mb-1 small text-muted"),
        dcc.Dropdown(
            id=Compare.SAVED,
            options=[entry.name for entry in ensembles],
            placeholder="(or choose members below)",
        ),
        dbc.Label("Members", className="mt-2 mb-1 small text-muted"),
        dcc.Dropdown(
            id=Compare.MEMBERS,
            options=[entry.name for entry in models],
            value=[entry.name for entry in models[:2]],
            multi=True,
        ),
        dbc.Label("Strategy", className="mt-2 mb-1 small text-muted"),
        dbc.RadioItems(
            id=Compare.STRATEGY,
            options=[{"label": name, "value": name} for name in STRATEGIES],
            value="mean",
            inline=True,
        ),
        html.Div(id=Compare.MESSAGE, className="mt-2 small"),
    ]


def layout(**_query) -> html.Div:
    workspace = current_workspace()
    entries = list_entries(workspace)
    models = [entry for entry in entries if entry.kind != "ensemble"]
    ensembles = [entry for entry in entries if entry.kind == "ensemble"]
    header = html.Div(
        [
            html.H2("Compare"),
            html.Span(
                "members and ensemble on one image; zoom one panel, all follow", className="text-muted small"
            ),
        ],
        className="page-header",
    )
    if len(models) < 2:
        guidance = empty_state(
            "Comparing needs at least two models.",
            "Train and export two runs (`cocoseg train ...`, "
            "`cocoseg export RUN`) or import models (`cocoseg models import FILE.onnx --card card.json`).",
            icon="layout-split",
        )
        return html.Div([header, panel("Models", guidance, icon="box")], className="page page-compare")
    return html.Div(
        [
            header,
            dbc.Row(
                [
                    dbc.Col(panel("Choose", _controls(workspace, models, ensembles), icon="sliders"), lg=3),
                    dbc.Col(
                        dcc.Loading(html.Div(id=Compare.GRID, className="compare-grid"), delay_show=200), lg=9
                    ),
                ],
                className="g-3",
            ),
            dbc.Row(
                dbc.Col(panel("Validation metrics", html.Div(id=Compare.METRICS), icon="grid-3x3")),
                className="g-3 mt-1",
            ),
            dcc.Store(id=Compare.SYNC),
        ],
        className="page page-compare",
    )


@callback(Output(Compare.IMAGE, "options"), Output(Compare.IMAGE, "value"), Input(Compare.DATASET, "value"))
def list_split_images(choice):
    if not choice:
        return [], None
    dataset, _, split = choice.partition("/")
    try:
        images = split_images(current_workspace(), dataset, split, current_settings().max_annotation_bytes)
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
        return no_update, no_update, dbc.Alert(str(error), color="danger", className="py-1 px-2 mb-0"), None
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


def _figure(picture, title: str) -> go.Figure:
    figure = go.Figure(go.Image(source=data_url(image_jpeg(picture), "image/jpeg")))
    figure.update_layout(
        title={"text": title, "font": {"size": 13}, "x": 0.01, "y": 0.99, "yanchor": "top"},
        margin={"l": 0, "r": 0, "t": 26, "b": 0},
        dragmode="pan",
        template=LIGHT,
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


def _panel(index: int, picture, title: str) -> dbc.Col:
    graph = dcc.Graph(
        id={"type": Compare.PANEL, "index": index},
        figure=_figure(picture, title),
        className="compare-panel",
        config={"displaylogo": False, "scrollZoom": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
    )
    return dbc.Col(html.Div(graph, className="panel compare-cell"), md=4)


def _iou_text(value) -> str:
    return "" if value is None else f" · mIoU {value * 100:.1f}"


def _image(source, image_id, upload_key, label_map, choice):
    workspace, settings = current_workspace(), current_settings()
    if source == "upload":
        upload = load_upload(workspace, upload_key)
        if upload is None:
            raise ValueError("upload an image first (or it expired: upload it again)")
        return upload.image, None, upload.name
    if image_id is None or not choice:
        raise ValueError("choose a dataset image")
    dataset, _, split = choice.partition("/")
    return dataset_image(workspace, dataset, split, int(image_id), settings.max_annotation_bytes, label_map)


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
    workspace = current_workspace()
    members = members or []
    try:
        label_map = get_entry(workspace, members[0]).label_map() if members else None
        if label_map is None:
            raise ValueError("choose at least two members")
        picture, truth, name = _image(source, image_id, upload_key, label_map, choice)
        result = compare(workspace, members, strategy or "mean", picture, truth)
    except (ModelError, ValueError, ImageError) as error:
        return no_update, dbc.Alert(str(error), color="warning", className="py-1 px-2 mb-0")
    panels = [(picture, f"original · {name}")]
    if truth is not None:
        panels.append((colorize(truth, label_map), "ground truth (white = ignored)"))
    for title, mask in result.masks.items():
        shown = "ensemble (" + (strategy or "mean") + ")" if title == "ensemble" else title
        panels.append(
            (overlay(picture, mask, label_map, PANEL_OPACITY), shown + _iou_text(result.ious[title]))
        )
    share = result.disagreement.mean() * 100
    panels.append(
        (disagreement_picture(picture, result.disagreement), f"disagreement · {share:.1f} % of pixels")
    )
    grid = dbc.Row(
        [_panel(index, image, title) for index, (image, title) in enumerate(panels)], className="g-2"
    )
    return grid, None


@callback(Output(Compare.METRICS, "children"), Input(Compare.MEMBERS, "value"), Input(Compare.SAVED, "value"))
def show_metrics(members, saved):
    """Saved validation results (FP32, whole split) of the members and of the chosen saved ensemble."""
    workspace = current_workspace()
    names = list(members or []) + ([saved] if saved else [])
    labels, values, classes, rows = [], [], [], []
    for name in names:
        try:
            entry = get_entry(workspace, name)
        except ModelError:
            continue
        for result in saved_evaluations(entry):
            if result["variant"] != "fp32" or result["protocol"].get("image_limit"):
                continue
            classes = classes or result["classes"]
            where = result["protocol"]
            rows.append(
                html.Tr(
                    [
                        html.Td(name),
                        html.Td(entry.kind),
                        html.Td(f"{where['dataset']}/{where['split']}"),
                        html.Td(f"{result['miou'] * 100:.2f}" if result["miou"] is not None else "n/a"),
                    ]
                )
            )
            if result["classes"] == classes:
                labels.append(f"{name} ({where['dataset']}/{where['split']})")
                values.append(result["per_class_iou"])
    if not rows:
        return empty_state(
            "No validation results for these models yet.",
            "Evaluate them on the Evaluate page or with `cocoseg evaluate MODEL`.",
        )
    table = dbc.Table(
        [
            html.Thead(html.Tr([html.Th("Model"), html.Th("Kind"), html.Th("Split"), html.Th("mIoU %")])),
            html.Tbody(rows),
        ],
        size="sm",
        className="mb-2",
    )
    return dbc.Row(
        [
            dbc.Col(table, lg=4),
            dbc.Col(
                dcc.Graph(
                    figure=iou_heatmap(labels, classes, values, "per-class IoU (%)"),
                    config={"displaylogo": False},
                    style={"height": "30vh"},
                ),
                lg=8,
            ),
        ]
    )


dash.clientside_callback(
    ClientsideFunction(namespace="cocoseg", function_name="syncPanels"),
    Output(Compare.SYNC, "data"),
    Input({"type": Compare.PANEL, "index": ALL}, "relayoutData"),
    prevent_initial_call=True,
)
