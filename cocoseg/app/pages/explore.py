"""Explore: a dataset split's classes, sizes and co-occurrence, and its images with their masks.

Everything numeric comes from the cached statistics (``cocoseg.pipeline.data.stats.split_stats``,
keyed by the file's hash and the resolved label map, the keys ``cocoseg data stats`` uses too),
including the per-image class index the image browser filters and pages with
(``cocoseg.pipeline.data.thumbnails``); only opening one image's detail reads its annotations.
No callback computes statistics: those not cached are computed by a ``stats`` job in a fresh
process, with progress and Cancel (``cocoseg.app.explore_stats``), while the page shows what
the cached validation report says.

The label maps offered are those that fit the split (``labels.fitting_presets``), the default
preselected (``labels.default_preset``, the CLI's rule). One callback (``show_dataset``) draws
everything that belongs to a split at once, and dims the previous view while it runs, so a chart,
card or picture is never shown under another split's name. The layout is ``components.explore_panels``;
the image browser's callbacks (pages of thumbnails, choosing one, its detail) are
``cocoseg.app.explore_browser``.
"""

from __future__ import annotations

import logging

import dash
from dash import ClientsideFunction, Input, Output, State, callback, ctx, html

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.choosers import default_split, split_choices
from cocoseg.app.components.explore_panels import (
    cooccurrence_graph,
    explore_page,
    no_image_chosen,
    sizes_pane,
)
from cocoseg.app.context import current_workspace
from cocoseg.app.explore_view import STATS_ERRORS, cached_stats, class_figure, split_view
from cocoseg.app.ids import AddDataset, Explore
from cocoseg.pipeline.data import (
    RegistryError,
    list_datasets,
)

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/explore", name="Explore", order=10, icon="bar-chart-line")


def layout(split: str | None = None, **_query):
    """The page, already showing the split (``?split=dataset/split``, else the default) from its cached
    statistics; without them, the first-statistics job is queued and its progress shown instead."""
    workspace = current_workspace()
    datasets = list_datasets(workspace)
    choices = split_choices(datasets)
    choice = split if split in choices else default_split(choices)
    view = split_view(choice, None)
    add_form = None
    if len(datasets) == 1:  # only the demo: offer to add one's own dataset here too
        from cocoseg.app.components.dataset_form import dataset_form
        from cocoseg.app.context import browse_roots, registration_roots

        add_form = dataset_form(registration_roots(), browse_roots())
    return explore_page(
        choices,
        choice,
        view["summary"],
        view["problems"],
        view["filter"],
        view["figure"],
        view["label_options"],
        view["labels"],
        view["title"],
        view["job"],
        view["progress"],
        add_form,
    )


@callback(
    Output(f"{Explore.SIZES}-pane", "children"),
    Output(f"{Explore.COOCCURRENCE}-pane", "children"),
    Input(Explore.TABS, "active_tab"),
    Input(Explore.DATASET, "value"),
    Input(Explore.LABELS, "value"),
    Input(Explore.STATS_READY, "data"),
    prevent_initial_call=True,
)
def fill_visible_tab(tab, choice, labels, _ready):
    """Build the Sizes or Co-occurrence charts when that tab is shown (and again after a split change);
    empty while the split's statistics are not there, never the previous split's."""
    if tab not in ("sizes", "cooccurrence"):
        return None, None
    try:
        stats = cached_stats(choice, labels)
    except (RegistryError, *STATS_ERRORS) as error:
        return alert(f"{choice}: {error}", "danger"), None
    if stats is None:
        waiting = html.Div(f"The statistics of {choice} are being computed.", className="text-muted small")
        return waiting, waiting
    if tab == "sizes":
        return sizes_pane(stats), None
    return None, cooccurrence_graph(stats)


@callback(
    Output(Explore.SUMMARY, "children"),
    Output(Explore.PROBLEMS, "children"),
    Output(Explore.FILTER, "options"),
    Output(Explore.FILTER, "value"),
    Output(Explore.PAGE, "data"),
    Output(Explore.CLASSES, "figure"),
    Output(Explore.VIEW_TITLE, "children"),
    Output(Explore.LABELS, "options"),
    Output(Explore.LABELS, "value"),
    Output(Explore.STATS_JOB, "data"),
    Output(Explore.STATS_POLL, "disabled"),
    Output(Explore.STATS_PROGRESS, "children"),
    Output(Explore.THUMBNAILS, "children"),
    Output(Explore.DETAIL, "children"),
    Output(Explore.SELECTED, "data"),
    Input(Explore.DATASET, "value"),
    Input(Explore.LABELS, "value"),
    Input(Explore.STATS_READY, "data"),
    State(Explore.METRIC, "value"),
    State(Explore.ORDER, "value"),
    State(Explore.OPTIONS, "value"),
    prevent_initial_call=True,
    running=[(Output(Explore.VIEW, "className"), "explore-view loading", "explore-view")],
)
def show_dataset(choice, labels, ready, metric, order, options):
    """Everything about one split, at once: never a chart, card or picture of the split before.

    A new split starts from its own default label map (``labels.default_preset``); while the view
    is computed the old one is dimmed (``running``), and without cached statistics it is emptied.
    """
    if ctx.triggered_id == Explore.DATASET:
        labels = None
    elif ctx.triggered_id == Explore.STATS_READY:
        if not ready or ready.get("choice") != choice:
            raise dash.exceptions.PreventUpdate
        labels = ready.get("labels") or labels
    view = split_view(choice, labels, metric, order, options)
    return (
        view["summary"],
        view["problems"],
        view["filter"],
        [],
        0,
        view["figure"],
        view["title"],
        view["label_options"],
        view["labels"],
        view["job"],
        view["job"] is None,
        view["progress"],
        [],
        no_image_chosen(),
        None,
    )


@callback(
    Output(Explore.CLASSES, "figure", allow_duplicate=True),
    Input(Explore.METRIC, "value"),
    Input(Explore.ORDER, "value"),
    Input(Explore.OPTIONS, "value"),
    State(Explore.DATASET, "value"),
    State(Explore.LABELS, "value"),
    prevent_initial_call=True,
)
def show_classes(metric, order, options, choice, labels):
    try:
        stats = cached_stats(choice, labels)
    except (RegistryError, *STATS_ERRORS):
        stats = None
    return class_figure(stats, choice, metric, order, options)


@callback(
    Output(Explore.DATASET, "options"),
    Input(AddDataset.DONE, "data"),
    prevent_initial_call=True,
)
def offer_added_splits(_done):
    """The splits again once the add-dataset form (shown here while only the demo is) registered one."""
    return split_choices(list_datasets(current_workspace()))


dash.clientside_callback(
    ClientsideFunction(namespace="cocoseg", function_name="setOpacity"),
    Output(Explore.DETAIL_LAYER, "style"),
    Input(Explore.OPACITY, "value"),
    prevent_initial_call=True,
)
