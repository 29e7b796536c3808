"""Explore: a dataset split's classes, sizes and co-occurrence, and its images with their masks.

Everything numeric comes from the cached statistics (``cocoseg.pipeline.data.stats.split_stats``,
keyed by the file's hash and the resolved label map, the keys ``cocoseg data stats`` uses too),
including the per-image class index the image browser filters and pages with
(``cocoseg.pipeline.data.thumbnails``); only opening one image's detail reads its annotations.
No callback computes statistics: those not cached are computed by a ``stats`` job in a fresh
process, with progress and Cancel, while the page shows what the cached validation report says.

The label maps offered are those that fit the split (``labels.fitting_presets``), the default
preselected (``labels.default_preset``, the CLI's rule). One callback (``show_dataset``) draws
everything that belongs to a split at once, and dims the previous view while it runs, so a chart,
card or picture is never shown under another split's name. The layout is ``components.explore_panels``.
"""

from __future__ import annotations

import logging
import time

import dash
from dash import ALL, ClientsideFunction, Input, Output, State, callback, ctx, html, no_update

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.choosers import default_split, parse_split, split_choices
from cocoseg.app.components.explore_figures import class_bars
from cocoseg.app.components.explore_panels import (
    DEFAULT_METRIC,
    DEFAULT_ORDER,
    class_filter_options,
    cooccurrence_graph,
    detail_view,
    explore_page,
    known_cards,
    no_image_chosen,
    page_label,
    sizes_pane,
    stats_progress,
    summary_cards,
    thumbnail_tiles,
    validation_summary,
    view_title,
    waiting_figure,
)
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import AddDataset, Explore
from cocoseg.app.jobs import run_job_process
from cocoseg.pipeline.core.workspace import read_json
from cocoseg.pipeline.data import (
    CocoFileError,
    ImageError,
    LabelMapError,
    RegistryError,
    default_preset,
    fitting_presets,
    get_dataset,
    image_page,
    known_report,
    list_datasets,
    split_categories,
    split_image_detail,
    split_stats,
    thumbnails_of,
)
from cocoseg.pipeline.data.stats import known_categories
from cocoseg.pipeline.jobs import RunError, RunFolder, cancel, observe, queue, supervise

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/explore", name="Explore", order=10, icon="bar-chart-line")

STATS_ERRORS = (CocoFileError, LabelMapError, ValueError, OSError)
# categories of a file smaller than this are read in the request; a bigger file's come with its
# first statistics (the job caches them), so no callback ever parses a COCO-train file
CATEGORIES_IN_REQUEST_BYTES = 50 * 1024 * 1024


def layout(split: str | None = None, **_query):
    """The page, already showing the split (``?split=dataset/split``, else the default) from its cached
    statistics; without them, the first-statistics job is queued and its progress shown instead."""
    workspace = current_workspace()
    datasets = list_datasets(workspace)
    choices = split_choices(datasets)
    choice = split if split in choices else default_split(choices)
    view = _view(choice, None)
    add_form = None
    if len(datasets) == 1:  # only the demo: offer to add one's own dataset here too
        from cocoseg.app import add_dataset  # noqa: F401 - registers the form's callbacks
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


def _source(choice: str | None):
    dataset, split = parse_split(choice)
    return get_dataset(current_workspace(), dataset).split(split)


def label_choices(choice: str | None) -> tuple[list[str], str | None]:
    """(presets that fit the split, its default preset); ([], None) while its categories are unknown.

    The default is ``labels.default_preset``: the one rule the CLI follows too.
    """
    from cocoseg.pipeline.core.cache import known_sha256

    workspace, settings = current_workspace(), current_settings()
    source = _source(choice)
    digest = known_sha256(workspace, source.annotations)  # never hashes a big file in a request
    categories = None if digest is None else known_categories(workspace, digest)
    if categories is None:
        if source.annotations.stat().st_size >= CATEGORIES_IN_REQUEST_BYTES:
            return [], None
        categories = split_categories(workspace, *parse_split(choice), settings.max_annotation_bytes)
    return fitting_presets(categories), default_preset(categories)


def _cached(choice: str | None, labels: str | None) -> dict | None:
    return split_stats(
        current_workspace(),
        *parse_split(choice),
        current_settings().max_annotation_bytes,
        labels,
        compute=False,
    )


def _view(
    choice: str | None, labels: str | None, metric=DEFAULT_METRIC, order=DEFAULT_ORDER, options=()
) -> dict:
    """Everything the page shows for one split and label map, from caches only.

    ``labels`` None: the split's default preset. Without cached statistics, the first-statistics
    job is queued (or the one already running is joined) and the view is emptied: cards from
    the cached validation report if there is one, a chart that says it is waiting.
    """
    view = {
        "label_options": [],
        "labels": labels,
        "job": None,
        "progress": None,
        "filter": [],
        "problems": None,
        "summary": None,
    }
    try:
        options, default = label_choices(choice)
        if labels not in options:
            labels = default
        view.update(label_options=options, labels=labels)
        stats = _cached(choice, labels)
    except (RegistryError, *STATS_ERRORS) as error:
        return {
            **view,
            "summary": alert(f"{choice}: {error}", "danger"),
            "figure": waiting_figure("no statistics: see the message above", choice),
            "title": view_title(choice, labels, "(failed)"),
        }
    dataset, split = parse_split(choice)
    report = known_report(current_workspace(), dataset, split, current_settings().max_annotation_bytes)
    if stats is None:
        job = _stats_job(dataset, split, labels)
        return {
            **view,
            "summary": known_cards(report, dataset),
            "figure": waiting_figure(f"computing the statistics of {choice}...", choice),
            "title": view_title(choice, labels, "(statistics being computed)"),
            "job": {"job": job, "choice": choice, "labels": labels, "started": time.time()},
            "progress": stats_progress(choice, labels, "queued", {}, ""),
        }
    if view["labels"] is None:  # categories were unknown until these statistics
        options, default = label_choices(choice)
        view.update(label_options=options, labels=stats["label_map"]["name"])
    problems, note, details = validation_summary(report, dataset)
    figure = _class_figure(stats, choice, metric, order, options)
    return {
        **view,
        "summary": summary_cards(stats, view["labels"], problems, note),
        "problems": details,
        "filter": class_filter_options(stats),
        "figure": figure,
        "title": view_title(choice, stats["label_map"]["name"]),
    }


def _stats_job(dataset: str, split: str, labels: str | None) -> str:
    """The active first-statistics job for this request, or a new queued one."""
    workspace = current_workspace()
    request = {"dataset": dataset, "split": split, "labels": labels}
    if workspace.jobs_dir.is_dir():
        for folder in sorted(workspace.jobs_dir.glob("stats-*"), reverse=True):
            entry = RunFolder(folder)
            config = read_json(folder / "config.json", default={}) or {}
            if all(config.get(key) == value for key, value in request.items()) and observe(entry).active:
                return entry.name
    return queue(workspace, "stats", request).name


def _class_figure(stats: dict | None, choice, metric, order, options):
    if stats is None:
        return waiting_figure(f"computing the statistics of {choice}...", choice)
    options = options or []
    figure = class_bars(
        stats, metric or DEFAULT_METRIC, order or DEFAULT_ORDER, "log" in options, "group" in options
    )
    figure.update_layout(meta={"split": choice, "labels": stats["label_map"]["name"], "ready": True})
    return figure


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
        stats = _cached(choice, labels)
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
    view = _view(choice, labels, metric, order, options)
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
        stats = _cached(choice, labels)
    except (RegistryError, *STATS_ERRORS):
        stats = None
    return _class_figure(stats, choice, metric, order, options)


@callback(
    Output(Explore.STATS_RUN, "data"),
    Input(Explore.STATS_JOB, "data"),
    background=True,
)
def run_stats(job):
    """Run the queued first-statistics job in a fresh process (one already taken is watched by the poll)."""
    if not job or not job.get("job"):
        return no_update
    entry = RunFolder(current_workspace().jobs_dir / job["job"])
    if observe(entry).state != "queued":
        return no_update
    try:
        outcome = run_job_process("stats", job["job"])
    except (RunError, OSError) as error:
        return {**job, "status": "failed", "message": str(error)}
    return {**job, "status": outcome.status, "message": outcome.message}


@callback(
    Output(Explore.STATS_PROGRESS, "children", allow_duplicate=True),
    Output(Explore.STATS_READY, "data"),
    Output(Explore.STATS_POLL, "disabled", allow_duplicate=True),
    Input(Explore.STATS_POLL, "n_intervals"),
    State(Explore.STATS_JOB, "data"),
    State(Explore.DATASET, "value"),
    prevent_initial_call=True,
)
def poll_stats(_ticks, job, choice):
    """The job's progress with an ETA; once it has finished, the view is drawn from the cache."""
    if not job or not job.get("job"):
        return None, no_update, True
    entry = RunFolder(current_workspace().jobs_dir / job["job"])
    supervise(entry)
    status = observe(entry)
    if job.get("choice") != choice:
        return None, no_update, True  # the split changed; its own view took over
    if status.active:
        progress = status.progress
        eta = ""
        total, done = progress.get("total") or 0, progress.get("done") or 0
        elapsed = time.time() - float(job.get("started") or time.time())
        if progress.get("stage") == "annotations" and total and 0.02 < done / total < 1:
            from cocoseg.app.components.jobs import duration_text

            eta = f" · about {duration_text(elapsed * (total - done) / done)} left"
        return stats_progress(choice, job.get("labels"), status.state, progress, eta), no_update, False
    if status.state == "finished":
        result = read_json(entry.folder / "result.json", default={}) or {}
        return None, {"choice": choice, "labels": result.get("labels"), "job": job["job"]}, True
    message = status.message or status.state
    tone = "secondary" if status.state == "cancelled" else "danger"
    return (
        alert(f"Statistics of {choice} {status.state}: {message}. Choose the split again to retry.", tone),
        no_update,
        True,
    )


@callback(
    Output(Explore.DATASET, "options"),
    Input(AddDataset.DONE, "data"),
    prevent_initial_call=True,
)
def offer_added_splits(_done):
    """The splits again once the add-dataset form (shown here while only the demo is) registered one."""
    return split_choices(list_datasets(current_workspace()))


@callback(
    Output(Explore.STATS_PROGRESS, "children", allow_duplicate=True),
    Input(Explore.STATS_CANCEL, "n_clicks"),
    State(Explore.STATS_JOB, "data"),
    prevent_initial_call=True,
)
def cancel_stats(clicks, job):
    """Ask the statistics job to stop (it checks at every progress step)."""
    if not clicks or not job or not job.get("job"):
        return no_update
    return alert(cancel(RunFolder(current_workspace().jobs_dir / job["job"]), "browser"), "warning")


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
    Output(Explore.THUMBNAILS, "children", allow_duplicate=True),
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
        stats = _cached(choice, labels)
        folder = get_dataset(workspace, dataset).split(split).images
    except (RegistryError, *STATS_ERRORS):
        return [], ""
    if stats is None:
        return [], f"the statistics of {choice} are being computed"
    shown = image_page(stats["image_index"], classes or [], "all" in (match or []), page)
    thumbnails = thumbnails_of(workspace, folder, [name for _image_id, name in shown.images])
    return thumbnail_tiles(shown.images, thumbnails), page_label(shown)


@callback(
    Output(Explore.SELECTED, "data", allow_duplicate=True),
    Input({"type": Explore.THUMBNAIL, "index": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def select_image(clicks):
    if not ctx.triggered_id or not any(clicks or []):
        return no_update
    return ctx.triggered_id["index"]


@callback(
    Output(Explore.DETAIL, "children", allow_duplicate=True),
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
