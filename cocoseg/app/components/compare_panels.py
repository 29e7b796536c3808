"""The Compare page's layout: the chooser panel, the grid of linked image panels, the metrics table.

Pure builders (no callbacks). The grid draws a ``comparison.Comparison``: each panel is a
Plotly image, so a browser-side callback can relay one panel's zoom to all of them.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import numpy as np
import plotly.graph_objects as go
from dash import dcc, html

from cocoseg.app.components.figures import LIGHT, iou_heatmap, plot_text, short_label
from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.components.segmentation import data_url
from cocoseg.app.ids import Compare, Frame
from cocoseg.pipeline.data import colorize, image_jpeg, overlay
from cocoseg.pipeline.inference import STRATEGIES, Comparison, IouTable, disagreement_picture

PANEL_OPACITY = 0.6


def _controls(
    datasets: list[str],
    default: str | None,
    models: list,
    ensembles: list,
    max_upload_bytes: int,
    chosen: list,
):
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
            max_size=max_upload_bytes,
            className="upload-zone mt-2 py-2",
            children=html.Div([html.I(className="bi bi-cloud-arrow-up me-1"), "drop or choose an image"]),
        ),
        html.Div(str(max_upload_bytes), id=Frame.UPLOAD_LIMIT, hidden=True),
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
            value=chosen,
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


def compare_page(
    datasets: list[str], default: str | None, entries: list, max_upload_bytes: int, members: list[str] = ()
) -> html.Div:
    """The page; with fewer than two models (ensembles aside), how to get them.

    ``members`` preselects models (names that are not models are ignored); else the first two.
    """
    models = [entry for entry in entries if entry.kind != "ensemble"]
    ensembles = [entry for entry in entries if entry.kind == "ensemble"]
    header = html.Div(
        [
            html.H2("Compare"),
            html.Span(
                "members and ensemble on one image; Ctrl + wheel zooms a panel, drag pans, double-click "
                "resets, and all panels follow",
                className="text-muted small",
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
    names = [entry.name for entry in models]
    chosen = [name for name in members if name in names] or names[:2]
    controls = _controls(datasets, default, models, ensembles, max_upload_bytes, chosen)
    grid = dcc.Loading(html.Div(id=Compare.GRID, className="compare-grid"), delay_show=200)
    return html.Div(
        [
            header,
            dbc.Row(
                [dbc.Col(panel("Choose", controls, icon="sliders"), lg=3), dbc.Col(grid, lg=9)],
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


def _figure(picture: np.ndarray, title: str) -> go.Figure:
    # the pointer's pixel position on hover, not the panel's RGBA value there (which says nothing)
    figure = go.Figure(go.Image(source=data_url(image_jpeg(picture), "image/jpeg"), hoverinfo="x+y"))
    figure.update_layout(
        title={"text": plot_text(title), "font": {"size": 12}, "x": 0.01, "y": 0.99, "yanchor": "top"},
        margin={"l": 0, "r": 0, "t": 26, "b": 0},
        dragmode="pan",
        template=LIGHT,
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


def _panel(index: int, picture: np.ndarray, title: str) -> dbc.Col:
    graph = dcc.Graph(
        id={"type": Compare.PANEL, "index": index},
        figure=_figure(picture, title),
        className="compare-panel",
        config={"displaylogo": False, "scrollZoom": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
    )
    return dbc.Col(html.Div(graph, className="panel compare-cell"), md=4)


def _iou_text(value) -> str:
    return "" if value is None else f" · mIoU {value * 100:.1f}"


def comparison_grid(picture: np.ndarray, name: str, result: Comparison, strategy: str) -> dbc.Row:
    """Original, truth (when known), each member and the ensemble over the image, and where they disagree."""
    label_map = result.label_map
    panels = [(picture, f"original · {name}")]
    if result.truth is not None:
        panels.append((colorize(result.truth, label_map), "ground truth (white = ignored)"))
    for title, mask in result.masks.items():
        # a run's name is cut in the middle, so the panel's mIoU stays in view (the table below has it whole)
        shown = f"ensemble ({strategy})" if title == "ensemble" else short_label(title, 22)
        panels.append(
            (overlay(picture, mask, label_map, PANEL_OPACITY), shown + _iou_text(result.ious[title]))
        )
    share = result.disagreement.mean() * 100
    panels.append(
        (disagreement_picture(picture, result.disagreement), f"disagreement · {share:.1f} % of pixels")
    )
    return dbc.Row(
        [_panel(index, image, title) for index, (image, title) in enumerate(panels)], className="g-2"
    )


def metrics_view(found: list[tuple]) -> html.Div | dbc.Row:
    """A table of the reference results (``evaluate.reference_evaluations``) and their per-class IoU."""
    if not found:
        return empty_state(
            "No validation results for these models yet.",
            "Evaluate them on the Evaluate page or with `cocoseg evaluate MODEL`.",
        )
    rows, ious = [], IouTable()
    for entry, result in found:
        where = result["protocol"]
        miou = f"{result['miou'] * 100:.2f}" if result["miou"] is not None else "n/a"
        cells = [entry.kind, f"{where['dataset']}/{where['split']}", miou]
        # a run's name is long: it breaks inside its column rather than run under the heatmap
        name = html.Td(entry.name, className="text-break")
        rows.append(html.Tr([name, *[html.Td(cell) for cell in cells]]))
        ious.add(f"{entry.name} ({where['dataset']}/{where['split']})", result)
    table = dbc.Table(
        [
            html.Thead(html.Tr([html.Th("Model"), html.Th("Kind"), html.Th("Split"), html.Th("mIoU %")])),
            html.Tbody(rows),
        ],
        size="sm",
        className="mb-2",
    )
    heatmap = html.Div(
        dcc.Graph(
            figure=iou_heatmap(ious.labels, ious.classes, ious.values),
            config={"displaylogo": False},
        ),
        className="heatmap-scroll",
    )
    return dbc.Row([dbc.Col(table, lg=4), dbc.Col(heatmap, lg=8)])
