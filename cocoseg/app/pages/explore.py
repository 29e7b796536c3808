"""Explore: a dataset split's classes, sizes and co-occurrence, and its images with their masks.

Everything numeric comes from the cached statistics (``cocoseg.pipeline.data.stats.dataset_stats``,
keyed by the file's hash), including the per-image class index the image browser
filters with; only opening one image's detail reads its annotations.
"""

from __future__ import annotations

import logging

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import ALL, ClientsideFunction, Input, Output, State, callback, ctx, dcc, html, no_update

from cocoseg.app.components.explore_figures import (
    class_bars,
    cooccurrence_heatmap,
    object_sizes,
    objects_histogram,
    size_scatter,
)
from cocoseg.app.components.panels import panel
from cocoseg.app.components.segmentation import class_legend, data_url
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import Explore
from cocoseg.pipeline.data.coco import CocoFileError
from cocoseg.pipeline.data.images import ImageError
from cocoseg.pipeline.data.labels import PRESETS, LabelMapError, label_map_from_dict
from cocoseg.pipeline.data.registry import cached_split, get_dataset, list_datasets, split_report
from cocoseg.pipeline.data.stats import dataset_stats
from cocoseg.pipeline.data.thumbnails import filter_images, image_detail, thumbnail
from cocoseg.pipeline.inference.rendering import encode_png, image_jpeg, mask_layer

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/explore", name="Explore", order=10, icon="bar-chart-line")

PAGE_SIZE = 12
LABEL_CHOICES = [preset for preset in PRESETS if preset != "custom"]
DEFAULT_OPACITY = 0.5
DEFAULT_LABELS, DEFAULT_METRIC, DEFAULT_ORDER = "coco80", "instances", "value"


def _choices(workspace) -> list[str]:
    return [f"{entry.name}/{split}" for entry in list_datasets(workspace) for split in entry.splits]


def _no_image_chosen() -> html.Div:
    return html.Div("Choose an image on the left.", className="text-muted small py-4 text-center")


def _classes_tab(figure: go.Figure | None) -> dbc.Tab:
    controls = html.Div(
        [
            dbc.RadioItems(
                id=Explore.METRIC,
                options=[
                    {"label": "instances", "value": "instances"},
                    {"label": "images", "value": "images"},
                    {"label": "pixel share", "value": "pixel_share"},
                ],
                value=DEFAULT_METRIC,
                inline=True,
            ),
            dbc.RadioItems(
                id=Explore.ORDER,
                options=[{"label": "by value", "value": "value"}, {"label": "by name", "value": "name"}],
                value=DEFAULT_ORDER,
                inline=True,
            ),
            dbc.Checklist(
                id=Explore.OPTIONS,
                options=[
                    {"label": "log scale", "value": "log"},
                    {"label": "group by supercategory", "value": "group"},
                ],
                value=[],
                inline=True,
                switch=True,
            ),
        ],
        className="d-flex flex-wrap gap-4 mb-2 small",
    )
    graph = dcc.Graph(
        id=Explore.CLASSES,
        figure=figure if figure is not None else {},
        config={"displaylogo": False},
        style={"height": "52vh"},
    )
    return dbc.Tab([controls, graph], label="Classes", tab_id="classes")


def _sizes_pane(stats: dict) -> dbc.Row:
    def graph(figure, width: int) -> dbc.Col:
        return dbc.Col(
            dcc.Graph(figure=figure, config={"displaylogo": False}, style={"height": "28vh"}), md=width
        )

    return dbc.Row(
        [graph(size_scatter(stats), 6), graph(objects_histogram(stats), 6), graph(object_sizes(stats), 12)],
        className="g-2",
        id=Explore.SIZES,
    )


def _images_tab(filter_options: list[dict]) -> dbc.Tab:
    browser = html.Div(
        [
            html.Div(
                [
                    dcc.Dropdown(
                        id=Explore.FILTER,
                        options=filter_options,
                        value=[],
                        multi=True,
                        placeholder="filter by class (any of)",
                        className="flex-grow-1",
                    ),
                    dbc.Checklist(
                        id=Explore.MATCH,
                        options=[{"label": "all of them", "value": "all"}],
                        value=[],
                        switch=True,
                        className="small ms-2",
                    ),
                ],
                className="d-flex align-items-center",
            ),
            html.Div(
                [
                    dbc.Button(
                        html.I(className="bi bi-chevron-left"),
                        id=Explore.PREVIOUS,
                        size="sm",
                        color="light",
                        title="previous page (←)",
                    ),
                    html.Span(id=Explore.PAGE_LABEL, className="small text-muted mx-2"),
                    dbc.Button(
                        html.I(className="bi bi-chevron-right"),
                        id=Explore.NEXT,
                        size="sm",
                        color="light",
                        title="next page (→)",
                    ),
                ],
                className="d-flex align-items-center my-2",
            ),
            html.Div(id=Explore.THUMBNAILS, className="thumbnail-grid"),
            dcc.Store(id=Explore.PAGE, data=0),
        ]
    )
    detail = html.Div(
        [
            html.Div(_no_image_chosen(), id=Explore.DETAIL, className="picture-stack"),
            dbc.Label("Mask opacity", className="mt-2 mb-0 small text-muted"),
            dcc.Slider(id=Explore.OPACITY, min=0, max=1, step=0.05, value=DEFAULT_OPACITY, marks=None),
            html.Div(id=Explore.LEGEND, className="mt-1"),
            dcc.Store(id=Explore.SELECTED),
        ]
    )
    return dbc.Tab(
        dbc.Row([dbc.Col(browser, lg=5), dbc.Col(detail, lg=7)], className="g-3"),
        label="Images",
        tab_id="images",
    )


def layout(**_query) -> html.Div:
    """The page, already showing the default split (summary, problems, class chart) from the
    cached statistics: no callback round trip and no second chart drawing before it is seen."""
    choices = _choices(current_workspace())
    default = "demo/val" if "demo/val" in choices else (choices[0] if choices else None)
    stats = _load(default, DEFAULT_LABELS)  # once: at COCO scale the statistics are megabytes
    summary, problems, filter_options = _dataset_view(default, DEFAULT_LABELS, stats)
    figure = _class_figure(stats, DEFAULT_METRIC, DEFAULT_ORDER, [])
    selectors = html.Div(
        [
            dcc.Dropdown(
                id=Explore.DATASET,
                options=choices,
                value=default,
                clearable=False,
                style={"minWidth": "14rem"},
            ),
            dcc.Dropdown(
                id=Explore.LABELS,
                options=LABEL_CHOICES,
                value=DEFAULT_LABELS,
                clearable=False,
                style={"minWidth": "10rem"},
            ),
        ],
        className="d-flex gap-2 ms-auto",
    )
    header = html.Div(
        [
            html.H2("Explore"),
            html.Span("classes, sizes and images of a dataset split", className="text-muted small"),
            selectors,
        ],
        className="page-header",
    )
    # Sizes and Co-occurrence are filled when first shown: Plotly renders every mounted
    # graph, hidden tabs included, and that cost most of the page's first second
    tabs = dbc.Tabs(
        [
            _classes_tab(figure),
            dbc.Tab(html.Div(id=f"{Explore.SIZES}-pane"), label="Sizes", tab_id="sizes"),
            dbc.Tab(
                html.Div(id=f"{Explore.COOCCURRENCE}-pane"), label="Co-occurrence", tab_id="cooccurrence"
            ),
            _images_tab(filter_options),
        ],
        active_tab="classes",
        className="mb-2",
        id=Explore.TABS,
    )
    return html.Div(
        [
            header,
            dcc.Loading(html.Div(summary, id=Explore.SUMMARY, className="summary-cards"), delay_show=300),
            html.Div(problems, id=Explore.PROBLEMS),
            panel("Dataset", tabs, icon="bar-chart-line"),
        ],
        className="page page-explore",
    )


def _split(choice: str) -> tuple[str, str]:
    dataset, _, split = (choice or "demo/val").partition("/")
    return dataset, split


def _stats(choice: str, labels: str) -> dict:
    workspace, settings = current_workspace(), current_settings()
    dataset, split = _split(choice)
    source = get_dataset(workspace, dataset).split(split)
    return dataset_stats(workspace, source.annotations, settings.max_annotation_bytes, labels)


def _card(title: str, value, note: str = "", colour: str = "") -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(title, className="summary-title"),
                html.Div(value, className=f"summary-value {colour}"),
                html.Small(note, className="text-muted"),
            ]
        ),
        className="summary-card",
    )


def _problems(choice: str):
    """The cached validation report of the split (computed on the Home page or by `data validate`)."""
    workspace, settings = current_workspace(), current_settings()
    dataset, split = _split(choice)
    try:
        report = split_report(
            workspace, get_dataset(workspace, dataset), split, settings.max_annotation_bytes, compute=False
        )
    except (CocoFileError, ValueError):
        report = None
    if report is None:
        return "not checked", f"cocoseg data validate {dataset}", None
    payload = report.to_dict()
    if not payload["checks"]:
        return "none", "validated: no problems found", None
    items = [
        html.Li(
            [
                html.B(f"{check['title']} ({check['count']})"),
                html.Span(f" {check['severity']}", className="text-muted"),
                html.Ul(
                    [html.Li(f"{example['location']}: {example['message']}") for example in check["examples"]]
                ),
            ]
        )
        for check in payload["checks"]
    ]
    details = html.Details(
        [html.Summary("full validation report"), html.Ul(items, className="small")], className="mt-2"
    )
    return f"{payload['errors']} errors, {payload['warnings']} warnings", "", details


@callback(
    Output(f"{Explore.SIZES}-pane", "children"),
    Output(f"{Explore.COOCCURRENCE}-pane", "children"),
    Input(Explore.TABS, "active_tab"),
    Input(Explore.DATASET, "value"),
    Input(Explore.LABELS, "value"),
    prevent_initial_call=True,
)
def fill_visible_tab(tab, choice, labels):
    """Build the Sizes or Co-occurrence charts when that tab is shown (and again after a dataset change)."""
    if tab not in ("sizes", "cooccurrence"):
        return no_update, no_update
    try:
        stats = _stats(choice, labels)
    except (CocoFileError, LabelMapError, ValueError, OSError) as error:
        return dbc.Alert(f"{choice}: {error}", color="danger"), no_update
    if tab == "sizes":
        return _sizes_pane(stats), no_update
    return no_update, dcc.Graph(
        id=Explore.COOCCURRENCE,
        figure=cooccurrence_heatmap(stats),
        config={"displaylogo": False},
        style={"height": "58vh"},
    )


def _load(choice: str | None, labels: str) -> dict | Exception:
    """The split's cached statistics, or the error that says why there are none."""
    try:
        return _stats(choice, labels)
    except (CocoFileError, LabelMapError, ValueError, OSError) as error:
        return error


def _dataset_view(choice: str | None, labels: str, stats: dict | Exception) -> tuple:
    """Summary cards, the validation report and the class filter's choices of one split."""
    if isinstance(stats, Exception):
        return dbc.Alert(f"{choice}: {stats}", color="danger"), None, []
    totals = stats["totals"]
    problems, note, details = _problems(choice)
    cards = [
        _card("images", f"{totals['images']:,}"),
        _card("annotations", f"{totals['annotations']:,}", f"{totals['annotations_used']:,} used"),
        _card(
            "categories", f"{totals['categories']:,}", f"label map {labels}: {len(stats['classes'])} classes"
        ),
        _card("crowd regions", f"{totals['crowd']:,}"),
        _card("validation problems", problems, note, "text-success" if problems == "none" else ""),
    ]
    options = [
        {"label": row["name"], "value": row["index"]}
        for row in stats["classes"]
        if row["index"] > 0 and row["images"]
    ]
    return dbc.Row([dbc.Col(card) for card in cards], className="g-2 mb-2"), details, options


def _class_figure(
    stats: dict | Exception, metric: str | None, order: str | None, options: list | None
) -> go.Figure | None:
    if isinstance(stats, Exception):
        return None
    options = options or []
    return class_bars(
        stats, metric or DEFAULT_METRIC, order or DEFAULT_ORDER, "log" in options, "group" in options
    )


@callback(
    Output(Explore.SUMMARY, "children"),
    Output(Explore.PROBLEMS, "children"),
    Output(Explore.FILTER, "options"),
    Output(Explore.FILTER, "value"),
    Output(Explore.PAGE, "data"),
    Input(Explore.DATASET, "value"),
    Input(Explore.LABELS, "value"),
    prevent_initial_call=True,
)
def show_dataset(choice, labels):
    summary, problems, options = _dataset_view(choice, labels, _load(choice, labels))
    return summary, problems, options, [], 0


@callback(
    Output(Explore.CLASSES, "figure"),
    Input(Explore.DATASET, "value"),
    Input(Explore.LABELS, "value"),
    Input(Explore.METRIC, "value"),
    Input(Explore.ORDER, "value"),
    Input(Explore.OPTIONS, "value"),
    prevent_initial_call=True,
)
def show_classes(choice, labels, metric, order, options):
    figure = _class_figure(_load(choice, labels), metric, order, options)
    return no_update if figure is None else figure


@callback(
    Output(Explore.PAGE, "data", allow_duplicate=True),
    Input(Explore.PREVIOUS, "n_clicks"),
    Input(Explore.NEXT, "n_clicks"),
    Input(Explore.FILTER, "value"),
    Input(Explore.MATCH, "value"),
    State(Explore.PAGE, "data"),
    prevent_initial_call=True,
)
def turn_page(_previous, _next, _filter, _match, page):
    if ctx.triggered_id == Explore.PREVIOUS:
        return max(0, (page or 0) - 1)
    if ctx.triggered_id == Explore.NEXT:
        return (page or 0) + 1
    return 0


@callback(
    Output(Explore.THUMBNAILS, "children"),
    Output(Explore.PAGE_LABEL, "children"),
    Input(Explore.PAGE, "data"),
    Input(Explore.FILTER, "value"),
    Input(Explore.MATCH, "value"),
    Input(Explore.TABS, "active_tab"),
    State(Explore.DATASET, "value"),
    State(Explore.LABELS, "value"),
    prevent_initial_call=True,
)
def show_thumbnails(page, classes, match, tab, choice, labels):
    """One page of thumbnails of the images that contain the chosen classes (built when the tab is shown)."""
    if tab != "images":
        return no_update, no_update
    workspace = current_workspace()
    try:
        stats = _stats(choice, labels)
        dataset, split = _split(choice)
        coco_images = get_dataset(workspace, dataset).split(split).images
    except (CocoFileError, LabelMapError, ValueError, OSError):
        return no_update, no_update
    index = stats["image_index"]
    positions = filter_images(index, classes or [], "all" in (match or []))
    pages = max(1, -(-len(positions) // PAGE_SIZE))
    page = min(page or 0, pages - 1)
    tiles = []
    for position in positions[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]:
        name = index["files"][position]
        try:
            source = data_url(thumbnail(workspace, coco_images / name), "image/jpeg")
            picture = html.Img(src=source, alt=name)
        except (ImageError, OSError, ValueError):
            picture = html.Div("unreadable", className="thumbnail-missing")
        tiles.append(
            html.Button(
                [picture, html.Div(name, className="thumbnail-name")],
                id={"type": Explore.THUMBNAIL, "index": index["ids"][position]},
                className="thumbnail",
                title=name,
                n_clicks=0,
            )
        )
    label = (
        f"{len(positions):,} images · page {page + 1} of {pages}"
        if positions
        else "no image has these classes"
    )
    return tiles, label


@callback(
    Output(Explore.SELECTED, "data"),
    Input({"type": Explore.THUMBNAIL, "index": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def select_image(clicks):
    if not ctx.triggered_id or not any(clicks or []):
        return no_update
    return ctx.triggered_id["index"]


@callback(
    Output(Explore.DETAIL, "children"),
    Output(Explore.LEGEND, "children"),
    Input(Explore.SELECTED, "data"),
    State(Explore.DATASET, "value"),
    State(Explore.LABELS, "value"),
    State(Explore.OPACITY, "value"),
    prevent_initial_call=True,
)
def show_detail(image_id, choice, labels, opacity):
    """The chosen image with its semantic mask and instance outlines, and the classes in it."""
    if image_id is None:
        return _no_image_chosen(), None
    workspace, settings = current_workspace(), current_settings()
    dataset, split = _split(choice)
    try:
        stats = _stats(choice, labels)
        label_map = label_map_from_dict(stats["label_map"])
        detail = image_detail(
            cached_split(workspace, dataset, split, settings.max_annotation_bytes), int(image_id), label_map
        )
    except (KeyError, ImageError, CocoFileError, ValueError) as error:
        return dbc.Alert(f"cannot show this image: {error}", color="warning"), None
    layer, outlines = mask_layer(detail["mask"], label_map, show_ignored=True), detail["outlines"]
    picture = [
        html.Img(
            src=data_url(image_jpeg(detail["picture"]), "image/jpeg"),
            className="stacked-picture",
            alt=detail["record"]["file_name"],
        ),
        html.Img(
            src=data_url(encode_png(layer), "image/png"),
            id=Explore.DETAIL_LAYER,
            className="stacked-layer",
            style={"opacity": opacity if opacity is not None else DEFAULT_OPACITY},
            alt="mask",
        ),
        html.Img(
            src=data_url(encode_png(outlines), "image/png"),
            className="stacked-layer",
            alt="instance outlines",
        ),
    ]
    rows = [{**row, "share": 0.0} for row in detail["present"]]
    caption = html.Div(
        f"{detail['record']['file_name']} · {detail['picture'].shape[1]}×{detail['picture'].shape[0]} · "
        f"{detail['annotations']} annotations · {detail['ignored']:,} ignored pixels (white)",
        className="small text-muted",
    )
    return picture, [class_legend(rows), caption]


dash.clientside_callback(
    ClientsideFunction(namespace="cocoseg", function_name="setOpacity"),
    Output(Explore.DETAIL_LAYER, "style"),
    Input(Explore.OPACITY, "value"),
    prevent_initial_call=True,
)
