"""Review: which images to correct first. A model or ensemble ranks a split by how unsure it is
(``pipeline.inference.ranking``, a ``rank`` job in its own process, cancellable); the queue
shows the images in that order, each one click from Annotate, pre-filled with that model.

Images already corrected (saved on Annotate into the dataset's annotations) are marked and
drop to the end. The queue's links go to the app frame's session Store (``Review.NEXT``) so
that Annotate's "Next in queue" (key N) moves on without coming back here. Layout:
``components.review_panels``; keys in ``assets/cocoseg.js``.
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, no_update

from cocoseg.app import limits
from cocoseg.app.components import review_panels as panels
from cocoseg.app.components.alerts import alert
from cocoseg.app.components.choosers import default_split, parse_split, split_choices
from cocoseg.app.context import current_workspace
from cocoseg.app.ids import Review
from cocoseg.app.jobs import cancel_stored_job, run_job_process, stored_job
from cocoseg.app.links import annotate_link
from cocoseg.pipeline import annotation
from cocoseg.pipeline.data import list_datasets
from cocoseg.pipeline.inference import (
    ModelError,
    RankingError,
    check_score,
    get_entry,
    list_entries,
    load_ranking,
    queue_pictures,
    review_queue,
)
from cocoseg.pipeline.jobs import RunError, queue

dash.register_page(__name__, path="/review", name="Review", order=34, icon="sort-down")


def layout(model: str | None = None, dataset: str | None = None, split: str | None = None, **_query):
    workspace = current_workspace()
    choices = split_choices(list_datasets(workspace))
    wanted = f"{dataset}/{split or 'val'}" if dataset else None
    return panels.page_layout(
        list_entries(workspace), choices, model, wanted if wanted in choices else default_split(choices)
    )


@callback(Output(Review.SCORE, "options"), Input(Review.MODEL, "value"))
def score_choices(model):
    """Disagreement and BALD compare an ensemble's members: offered for ensembles only."""
    try:
        return panels.score_options(get_entry(current_workspace(), model).kind == "ensemble")
    except ModelError:
        return panels.score_options(False)


@callback(
    Output(Review.QUEUE, "children"),
    Output(Review.SUMMARY, "children"),
    Output(Review.CLASSES, "options"),
    Output(Review.NEXT, "data"),
    Input(Review.MODEL, "value"),
    Input(Review.SPLIT, "value"),
    Input(Review.SCORE, "value"),
    Input(Review.CLASSES, "value"),
    Input(Review.REFRESH, "data"),
)
def show_queue(model, choice, by, classes, _refresh):
    """The saved ranking as a queue (score order, class filter, corrected last)."""
    if not model or not choice:
        return [], "", [], no_update
    workspace, (dataset, split) = current_workspace(), parse_split(choice)
    ranking = load_ranking(workspace, model, dataset, split)
    if ranking is None:
        return panels.not_ranked(model, choice), "", [], no_update
    by = by if by in ranking.available_scores else ranking.by
    items = review_queue(ranking, by, classes or (), annotation.corrected_files(workspace, dataset))
    shown = items[: panels.QUEUE_SHOWN]
    cards = panels.queue_cards(shown, queue_pictures(workspace, ranking, shown), ranking, by)
    corrected = sum(item.corrected for item in items)
    options = sorted({name for row in ranking.rows for name in row.classes})
    links = [
        {"file": item.row.file_name, "link": annotate_link(dataset, split, item.row.file_name, model)}
        for item in items
        if not item.corrected
    ]
    return cards, panels.summary(ranking, by, len(shown), len(items), corrected), options, links


@callback(Output(Review.QUEUE, "className"), Input(Review.MAPS, "value"))
def show_maps(maps):
    return "review-grid review-show-maps" if maps else "review-grid"


@callback(
    Output(Review.MESSAGE, "children"),
    Output(Review.QUEUED, "data"),
    Input(Review.RANK, "n_clicks"),
    State(Review.MODEL, "value"),
    State(Review.SPLIT, "value"),
    State(Review.SCORE, "value"),
    prevent_initial_call=True,
)
def start_ranking(_clicks, model, choice, by):
    """Queue a ranking job (refused here, beside the button, when the model cannot give that score)."""
    if refused := limits.refusal():
        return alert(f"Not started: {refused}.", "warning"), no_update
    workspace, (dataset, split) = current_workspace(), parse_split(choice)
    try:
        check_score(get_entry(workspace, model or ""), by or "entropy")
        job = queue(workspace, "rank", {"model": model, "dataset": dataset, "split": split, "by": by})
    except (RankingError, ModelError, RunError, OSError) as error:
        return alert(f"Not started: {error}", "warning"), no_update
    return alert(f"Ranking {dataset}/{split} with {model}…"), {"job": job.name}


@callback(
    Output(Review.MESSAGE, "children", allow_duplicate=True),
    Output(Review.REFRESH, "data"),
    Input(Review.QUEUED, "data"),
    State(Review.REFRESH, "data"),
    background=True,
    prevent_initial_call=True,
    running=[
        (Output(Review.RANK, "disabled"), True, False),
        (Output(Review.CANCEL, "disabled"), False, True),
    ],
    progress=[Output(Review.PROGRESS, "value"), Output(Review.PROGRESS, "label")],
)
def watch_ranking(set_progress, queued, refresh):
    """Run the ranking job in its own process to its end, with images done on the bar."""
    entry = stored_job(queued)  # the Store is the browser's: a forged or stale name is no job
    if entry is None:
        return no_update, no_update

    def progress(event: dict) -> None:
        done, total = event.get("done", 0), event.get("total") or 1
        set_progress((round(100 * done / total), f"{done}/{total} images"))

    try:
        outcome = run_job_process("rank", entry.name, progress)
    except (RunError, OSError) as error:
        return alert(str(error), "danger"), no_update
    if outcome.status == "cancelled":
        return alert("Cancelled: the images scored so far are kept, marked partial.", "warning"), refresh + 1
    if not outcome.ok:
        return alert(outcome.message or f"ranking {outcome.status}", "danger"), refresh + 1
    result = outcome.result
    skipped = f"; {result['skipped']} unreadable images skipped" if result["skipped"] else ""
    return alert(f"Ranked {result['ranked']} images by {result['by']}{skipped}.", "success"), refresh + 1


@callback(
    Output(Review.MESSAGE, "children", allow_duplicate=True),
    Input(Review.CANCEL, "n_clicks"),
    State(Review.QUEUED, "data"),
    prevent_initial_call=True,
)
def cancel_ranking(clicks, queued):
    """Ask the ranking job to stop after its current batch (through the registry, like every job)."""
    return cancel_stored_job(clicks, queued)
