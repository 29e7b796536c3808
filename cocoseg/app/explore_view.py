"""What Explore shows for one split and label map, computed from caches only.

``split_view`` is the page's view model: summary cards, problems, class filter, class chart,
label-map choices and, when the statistics are not cached yet, the first-statistics job to
wait for (``cocoseg.app.explore_stats``). ``cached_stats`` never computes: no request parses a
big COCO file.
"""

from __future__ import annotations

import time

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.choosers import parse_split
from cocoseg.app.components.explore_figures import class_bars
from cocoseg.app.components.explore_panels import (
    DEFAULT_METRIC,
    DEFAULT_ORDER,
    class_filter_options,
    known_cards,
    stats_progress,
    summary_cards,
    validation_summary,
    view_title,
    waiting_figure,
)
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.explore_stats import stats_job
from cocoseg.pipeline.data import (
    CocoFileError,
    LabelMapError,
    RegistryError,
    default_preset,
    fitting_presets,
    get_dataset,
    known_report,
    split_categories,
    split_stats,
)
from cocoseg.pipeline.data.stats import known_categories

STATS_ERRORS = (CocoFileError, LabelMapError, ValueError, OSError)
# categories of a file smaller than this are read in the request; a bigger file's come with its
# first statistics (the job caches them), so no callback ever parses a COCO-train file
CATEGORIES_IN_REQUEST_BYTES = 50 * 1024 * 1024


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


def cached_stats(choice: str | None, labels: str | None) -> dict | None:
    return split_stats(
        current_workspace(),
        *parse_split(choice),
        current_settings().max_annotation_bytes,
        labels,
        compute=False,
    )


def split_view(
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
        stats = cached_stats(choice, labels)
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
        job = stats_job(dataset, split, labels)
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
    figure = class_figure(stats, choice, metric, order, options)
    return {
        **view,
        "summary": summary_cards(stats, view["labels"], problems, note),
        "problems": details,
        "filter": class_filter_options(stats),
        "figure": figure,
        "title": view_title(choice, stats["label_map"]["name"]),
    }


def class_figure(stats: dict | None, choice, metric, order, options):
    if stats is None:
        return waiting_figure(f"computing the statistics of {choice}...", choice)
    options = options or []
    figure = class_bars(
        stats, metric or DEFAULT_METRIC, order or DEFAULT_ORDER, "log" in options, "group" in options
    )
    figure.update_layout(meta={"split": choice, "labels": stats["label_map"]["name"], "ready": True})
    return figure
