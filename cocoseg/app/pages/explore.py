"""Explore: a dataset split's classes, sizes and co-occurrence, and its images with their masks.

Everything numeric comes from the cached statistics (``cocoseg.pipeline.data.stats.split_stats``,
keyed by the file's hash), including the per-image class index the image browser
filters and pages with (``cocoseg.pipeline.data.thumbnails``); only opening one image's
detail reads its annotations. The layout is ``components.explore_panels``.
"""

from __future__ import annotations

import logging

import dash
from dash import ALL, ClientsideFunction, Input, Output, State, callback, ctx, no_update

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.choosers import default_split, parse_split, split_choices
from cocoseg.app.components.explore_figures import class_bars
from cocoseg.app.components.explore_panels import (
    DEFAULT_LABELS,
    DEFAULT_METRIC,
    DEFAULT_ORDER,
    class_filter_options,
    cooccurrence_graph,
    detail_view,
    explore_page,
    no_image_chosen,
    page_label,
    sizes_pane,
    summary_cards,
    thumbnail_tiles,
    validation_summary,
)
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import Explore
from cocoseg.pipeline.data import (
    CocoFileError,
    ImageError,
    LabelMapError,
    get_dataset,
    image_page,
    known_report,
    list_datasets,
    split_image_detail,
    split_stats,
    thumbnails_of,
)

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/explore", name="Explore", order=10, icon="bar-chart-line")

STATS_ERRORS = (CocoFileError, LabelMapError, ValueError, OSError)


def layout(**_query):
    """The page, already showing the default split (summary, problems, class chart) from the
    cached statistics: no callback round trip and no second chart drawing before it is seen."""
    choices = split_choices(list_datasets(current_workspace()))
    default = default_split(choices)
    stats = _load(default, DEFAULT_LABELS)  # once: at COCO scale the statistics are megabytes
    summary, problems, filter_options = _dataset_view(default, DEFAULT_LABELS, stats)
    figure = _class_figure(stats, DEFAULT_METRIC, DEFAULT_ORDER, [])
    return explore_page(choices, default, summary, problems, filter_options, figure)


def _stats(choice: str | None, labels: str) -> dict:
    return split_stats(
        current_workspace(), *parse_split(choice), current_settings().max_annotation_bytes, labels
    )


def _load(choice: str | None, labels: str) -> dict | Exception:
    """The split's cached statistics, or the error that says why there are none."""
    try:
        return _stats(choice, labels)
    except STATS_ERRORS as error:
        return error


def _dataset_view(choice: str | None, labels: str, stats: dict | Exception) -> tuple:
    """Summary cards, the validation report and the class filter's choices of one split."""
    if isinstance(stats, Exception):
        return alert(f"{choice}: {stats}", "danger"), None, []
    dataset, split = parse_split(choice)
    report = known_report(current_workspace(), dataset, split, current_settings().max_annotation_bytes)
    problems, note, details = validation_summary(report, dataset)
    return summary_cards(stats, labels, problems, note), details, class_filter_options(stats)


def _class_figure(stats: dict | Exception, metric: str | None, order: str | None, options: list | None):
    if isinstance(stats, Exception):
        return None
    options = options or []
    return class_bars(
        stats, metric or DEFAULT_METRIC, order or DEFAULT_ORDER, "log" in options, "group" in options
    )


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
    except STATS_ERRORS as error:
        return alert(f"{choice}: {error}", "danger"), no_update
    if tab == "sizes":
        return sizes_pane(stats), no_update
    return no_update, cooccurrence_graph(stats)


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
    workspace, (dataset, split) = current_workspace(), parse_split(choice)
    try:
        stats = _stats(choice, labels)
        folder = get_dataset(workspace, dataset).split(split).images
    except STATS_ERRORS:
        return no_update, no_update
    shown = image_page(stats["image_index"], classes or [], "all" in (match or []), page)
    thumbnails = thumbnails_of(workspace, folder, [name for _image_id, name in shown.images])
    return thumbnail_tiles(shown.images, thumbnails), page_label(shown)


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
        return no_image_chosen(), None
    try:
        detail = split_image_detail(
            current_workspace(),
            *parse_split(choice),
            int(image_id),
            current_settings().max_annotation_bytes,
            labels,
        )
    except (KeyError, ImageError, CocoFileError, ValueError) as error:
        return alert(f"cannot show this image: {error}", "warning"), None
    return detail_view(detail, opacity)


dash.clientside_callback(
    ClientsideFunction(namespace="cocoseg", function_name="setOpacity"),
    Output(Explore.DETAIL_LAYER, "style"),
    Input(Explore.OPACITY, "value"),
    prevent_initial_call=True,
)
