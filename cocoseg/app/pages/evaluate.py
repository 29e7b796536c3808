"""Evaluate: the leaderboard per dataset split with its protocol, per-class IoU, confusion matrix;
evaluate a model that has no result yet (background job), and ensemble selected rows.

Results are read through ``cocoseg.pipeline.inference.evaluate``; the layout is
``components.evaluate_panels``.
"""

from __future__ import annotations

import logging

import dash
from dash import Input, Output, State, callback, no_update

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.choosers import DEFAULT_SPLIT, parse_split
from cocoseg.app.components.evaluate_panels import (
    evaluate_page,
    evaluated_splits,
    pending_options,
    selected_models,
    table_rows,
)
from cocoseg.app.components.figures import confusion_heatmap, iou_heatmap
from cocoseg.app.context import current_workspace
from cocoseg.app.ids import Evaluate
from cocoseg.app.jobs import run_job_process, run_short_job
from cocoseg.pipeline.inference import (
    ModelError,
    leaderboard,
    leaderboard_ious,
    list_entries,
    protocol_text,
    split_results,
    unevaluated,
)
from cocoseg.pipeline.jobs import RunError, queue

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/evaluate", name="Evaluate", order=50, icon="clipboard-data")


def layout(**_query):
    workspace = current_workspace()
    entries = list_entries(workspace)
    if not entries:
        return evaluate_page(False, [])
    choices = evaluated_splits(leaderboard(workspace)) or [f"{entries[0].dataset or 'demo'}/val"]
    return evaluate_page(True, choices)


@callback(
    Output(Evaluate.TABLE, "data"),
    Output(Evaluate.TABLE, "selected_rows"),
    Output(Evaluate.IOU, "figure"),
    Output(Evaluate.PENDING_MODEL, "options"),
    Output(Evaluate.SPLIT, "options"),
    Input(Evaluate.SPLIT, "value"),
    Input(Evaluate.REFRESH, "data"),
)
def show_split(choice, _refresh):
    """Leaderboard rows, the per-class IoU heatmap, and the models still to evaluate on this split."""
    workspace = current_workspace()
    everything = leaderboard(workspace)
    dataset, split = parse_split(choice)
    rows = [row for row in everything if (row["dataset"], row["split"]) == (dataset, split)]
    ious = leaderboard_ious(rows, split_results(workspace, dataset, split))
    figure = iou_heatmap(ious.labels, ious.classes, ious.values)
    choices = sorted(set(evaluated_splits(everything)) | {choice or DEFAULT_SPLIT})
    return table_rows(rows), [], figure, pending_options(unevaluated(workspace, rows)), choices


@callback(
    Output(Evaluate.CONFUSION, "figure"),
    Output(Evaluate.PROTOCOL, "children"),
    Input(Evaluate.TABLE, "active_cell"),
    Input(Evaluate.TABLE, "data"),
    State(Evaluate.SPLIT, "value"),
)
def show_confusion(active_cell, data, choice):
    if not data:
        return confusion_heatmap([], []), ""
    key = (active_cell or {}).get("row_id") or data[0]["id"]
    result = split_results(current_workspace(), *parse_split(choice)).get(key)
    if result is None:
        return confusion_heatmap([], []), ""
    title = f"{result['model']} ({result['variant']}), row-normalised"
    return confusion_heatmap(result["confusion_matrix"], result["classes"], title), protocol_text(result)


@callback(
    Output(Evaluate.RUN_MESSAGE, "children"),
    Output(Evaluate.REFRESH, "data"),
    Input(Evaluate.RUN, "n_clicks"),
    State(Evaluate.PENDING_MODEL, "value"),
    State(Evaluate.SPLIT, "value"),
    State(Evaluate.REFRESH, "data"),
    background=True,
    prevent_initial_call=True,
    running=[(Output(Evaluate.RUN, "disabled"), True, False)],
    progress=[Output(Evaluate.PROGRESS, "value"), Output(Evaluate.PROGRESS, "label")],
)
def run_evaluation(set_progress, _clicks, model, choice, refresh):
    """Evaluate one model on the chosen split in a background job, reporting images done."""
    if not model:
        return alert("Choose a model to evaluate.", "warning"), no_update
    dataset, split = parse_split(choice)

    def progress(event: dict) -> None:
        done, total = event.get("done", 0), event.get("total") or 1
        set_progress((round(100 * done / total), f"{done}/{total} images"))

    try:
        job = queue(current_workspace(), "evaluate", {"model": model, "dataset": dataset, "split": split})
        outcome = run_job_process("evaluate", job.name, progress)
    except (RunError, ValueError, OSError) as error:
        return alert(str(error), "danger"), no_update
    if not outcome.ok:
        return alert(outcome.message or f"evaluation {outcome.status}", "danger"), no_update
    result = outcome.result
    score = f"{model}: mIoU {result['miou'] * 100:.2f} % on {dataset}/{split} ({result['images']} images)"
    return alert(score, "success"), (refresh or 0) + 1


@callback(
    Output(Evaluate.ENSEMBLE_MESSAGE, "children"),
    Output(Evaluate.REFRESH, "data", allow_duplicate=True),
    Input(Evaluate.ENSEMBLE_CREATE, "n_clicks"),
    State(Evaluate.ENSEMBLE_NAME, "value"),
    State(Evaluate.ENSEMBLE_STRATEGY, "value"),
    State(Evaluate.TABLE, "selected_rows"),
    State(Evaluate.TABLE, "data"),
    State(Evaluate.REFRESH, "data"),
    background=True,
    prevent_initial_call=True,
    running=[(Output(Evaluate.ENSEMBLE_CREATE, "disabled"), True, False)],
)
def create_from_rows(_clicks, name, strategy, selected, data, refresh):
    """Fuse the selected rows' models into an ensemble (FP32 members) in an ``ensemble`` job, then list it.

    What needs no graph is checked here first, so a bad name or mismatched members answer at once.
    """
    from cocoseg.pipeline.inference import EnsembleError, check_ensemble_request

    members, strategy = selected_models(selected, data), strategy or "mean"
    if not name:
        return alert("Give the ensemble a name.", "warning"), no_update
    request = {"name": name.strip(), "members": members, "strategy": strategy}
    try:
        check_ensemble_request(current_workspace(), request["name"], members, strategy)
        outcome = run_short_job("ensemble", request)
    except (EnsembleError, ModelError, RunError, ValueError, OSError) as error:
        return alert(str(error), "danger"), no_update
    if not outcome.ok:
        return alert(outcome.message or f"creating the ensemble {outcome.status}", "danger"), no_update
    created = f"ensemble {request['name']} created ({strategy} of {', '.join(members)}); evaluate it here."
    return alert(created, "success"), (refresh or 0) + 1
