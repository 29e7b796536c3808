"""Train: start a run from a form, watch it live, cancel it; the runs table with its actions.

Start checks the form (``training.config_from_form`` and ``create``: no TensorFlow) and queues a run
folder; a background callback then trains it in a job process of its own
(``cocoseg.pipeline.jobs.runner``). Everything the page shows comes from the run registry on disk
(``training.run_board``), polled every second, so a reload, a second tab or a server restart shows the
same live state. Cancel is a request in the registry; the runner stops within one batch.

The runs table's buttons (cancel, resume, export, evaluate, delete) live in
``cocoseg.app.run_actions``; resume, export and evaluate queue requests that this page's job
watchers run.
"""

from __future__ import annotations

import time

import dash
from dash import Input, Output, State, callback, html, no_update

from cocoseg.app import limits
from cocoseg.app.components.alerts import alert
from cocoseg.app.components.run_cards import evaluation_note, export_note, live_cards, runs_table
from cocoseg.app.components.train_form import (
    FIELDS,
    FORM_VALUES,
    augmentation_summary,
    summary_text,
    train_page,
)
from cocoseg.app.context import current_workspace
from cocoseg.app.ids import Frame, Train
from cocoseg.app.jobs import run_job_process, run_short_job
from cocoseg.pipeline.core import ConfigError
from cocoseg.pipeline.jobs import RunError
from cocoseg.pipeline.training import (
    architecture_fields,
    availability_note,
    cached_model_summary,
    check_model_choice,
    config_from_form,
    create,
    find_parent,
    run_board,
)

dash.register_page(__name__, path="/train", name="Train", order=25, icon="cpu")


def layout(**_query) -> html.Div:
    return train_page(current_workspace())


@callback(
    Output(Train.MODEL_INFO, "children"),
    Output(Train.OPTIONS, "children"),
    Output(Train.SUMMARY_REQUEST, "data"),
    Output(Train.BASE_FILTERS, "disabled"),
    Output(Train.DEPTH, "disabled"),
    Output(Train.ENCODER, "disabled"),
    Output(Train.ENCODER_WEIGHTS, "disabled"),
    Input(Train.MODEL, "value"),
    Input(Train.BASE_FILTERS, "value"),
    Input(Train.DEPTH, "value"),
    Input(Train.PREPARED, "value"),
    Input(Train.ENCODER, "value"),
    Input(Train.ENCODER_WEIGHTS, "value"),
)
def describe_model(model, base_filters, depth, prepared_name, encoder, encoder_weights):
    """Check the architecture choice against the prepared set at once; ask a job for its size."""
    choice = check_model_choice(
        current_workspace(), model, base_filters, depth, prepared_name, encoder, encoder_weights
    )
    if choice is None:
        return "", "", None, False, False, False, False
    fixed, plain = not choice.takes_depth, not choice.pretrained
    if choice.problem:
        problem = html.Span(choice.problem, className="text-danger")
        return problem, choice.description, None, fixed, fixed, plain, plain
    info = f"{choice.description}; input {choice.size} px, {choice.classes} classes."
    if choice.options.get("encoder_weights") == "imagenet":
        info += " " + availability_note(current_workspace(), choice.options["encoder"])
    return info, "", choice.summary_request(), fixed, fixed, plain, plain


@callback(
    Output(Train.MODEL, "value"),
    Output(Train.BASE_FILTERS, "value"),
    Output(Train.DEPTH, "value"),
    Output(Train.ENCODER, "value"),
    Output(Train.MODEL, "disabled"),
    Input(Train.START_FROM, "value"),
    prevent_initial_call=True,
)
def follow_parent(parent_name):
    """A fine-tuned run keeps its parent's architecture: fill it in and hold the choice."""
    try:
        fields = architecture_fields(find_parent(current_workspace(), parent_name)) if parent_name else None
    except ConfigError:  # deleted since the page loaded: Start says so beside the field
        fields = None
    if fields is None:
        return no_update, no_update, no_update, no_update, False
    kept = [fields.get(name, no_update) for name in ("base_filters", "depth", "encoder")]
    return fields["model"], *kept, True


@callback(
    Output(Train.MODEL_SUMMARY, "children"),
    Input(Train.SUMMARY_REQUEST, "data"),
    background=True,
    prevent_initial_call=True,
    running=[(Output(Train.MODEL_SUMMARY, "className"), "ms-1 text-muted summary-pending", "ms-1")],
)
def summarise_model(request):
    """Parameters and FLOPs need the model built (TensorFlow): a job process does it, once per choice."""
    if not request:
        return ""
    workspace = current_workspace()
    summary = cached_model_summary(
        workspace, request["model"], request["options"], request["size"], request["classes"]
    )
    if summary is None:
        try:
            outcome = run_short_job("summary", request)
        except (RunError, OSError) as error:
            return html.Span(str(error), className="text-danger")
        if not outcome.ok:
            return html.Span(outcome.message or f"no summary ({outcome.status})", className="text-danger")
        summary = outcome.result
    return summary_text(summary)


@callback(
    Output(Train.AUGMENT_SUMMARY, "children"),
    Input(Frame.AUGMENTATION, "data"),
    Input(Train.AUGMENT, "value"),
)
def show_augmentation(stored, augment):
    return augmentation_summary(stored, augment)


@callback(
    FIELDS.outputs() + [Output(Train.FORM_MESSAGE, "children"), Output(Train.QUEUED, "data")],
    Input(Train.START, "n_clicks"),
    *[State(component_id, "value") for component_id in FORM_VALUES.values()],
    State(Train.EXPORT, "value"),
    State(Frame.AUGMENTATION, "data"),
    prevent_initial_call=True,
    running=[(Output(Train.START, "disabled"), True, False)],
)
def start_training(_clicks, *values):
    """Check every field (the message goes beside the one at fault), then queue the run for the job."""
    *form, export, strengths = values
    if refused := limits.refusal():
        return FIELDS.marks() + [alert(f"Not started: {refused}.", "warning"), no_update]
    try:
        config = config_from_form(**dict(zip(FORM_VALUES, form, strict=True)), augmentation=strengths)
        folder = create(current_workspace(), config)
    except ConfigError as error:
        return FIELDS.marks_for(error) + [alert(f"Not started: {error}", "warning"), no_update]
    except (RunError, OSError) as error:
        return FIELDS.marks() + [alert(f"Not started: {error}", "danger"), no_update]
    queued = {"run": folder.name, "export": bool(export), "resume": False, "queued": time.time()}
    return FIELDS.marks() + [alert(f"Queued run {folder.name}; it starts in a moment."), queued]


# --- jobs ----------------------------------------------------------------------------------


@callback(
    Output(Train.JOB_RESULT, "data"),
    Input(Train.QUEUED, "data"),
    background=True,
    prevent_initial_call=True,
    progress=[Output(Train.JOB_HEARTBEAT, "children")],
)
def run_training(set_progress, queued):
    """Start the job process that trains (or resumes) the queued run, then exports it; watch it to the end."""
    if not queued or not queued.get("run"):
        return no_update

    def relay(event: dict) -> None:
        set_progress(f"job for {queued['run']} is alive: epoch {event.get('epoch')} of {event.get('epochs')}")

    kind = "resume" if queued.get("resume") else "train"
    try:
        outcome = run_job_process(kind, queued["run"], relay, export=queued.get("export", True))
    except (RunError, OSError) as error:
        return {"run": queued["run"], "error": str(error)}
    if outcome.status == "refused":
        return {"run": queued["run"], "error": outcome.message}
    return {"run": queued["run"], "status": outcome.status, "message": outcome.message}


@callback(
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    Input(Train.EXPORT_REQUEST, "data"),
    background=True,
    prevent_initial_call=True,
)
def run_export(request):
    """Export a stopped run to ONNX in a job process."""
    return _short_job_note(request, "export", "run", export_note)


@callback(
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    Input(Train.EVALUATE_REQUEST, "data"),
    background=True,
    prevent_initial_call=True,
)
def run_evaluation(request):
    """Evaluate the run's exported model on its dataset's val split, in a job process (ONNX Runtime)."""
    return _short_job_note(request, "evaluate", "model", evaluation_note)


def _short_job_note(request, kind: str, key: str, note):
    """Run a short job on ``request["run"]`` and say how it went (the Export and Evaluate buttons)."""
    if not request:
        return no_update
    try:
        outcome = run_short_job(kind, {key: request["run"]})
    except (RunError, OSError) as error:
        return alert(str(error), "danger")
    return note(request["run"], outcome)


# --- live state ---------------------------------------------------------------------------


@callback(
    Output(Train.LIVE, "children"),
    Output(Train.RUNS, "children"),
    Output(Train.SIGNATURE, "data"),
    Input(Train.POLL, "n_intervals"),
    Input(Train.QUEUED, "data"),
    Input(Train.REFRESH_NOW, "data"),
    State(Train.SIGNATURE, "data"),
)
def refresh(_ticks, _queued, _now, signature):
    """Re-read the registry; redraw only when something changed (cheap when nothing did).

    Its inputs are never outputs of a background callback: Dash holds back a callback
    while one of its inputs is pending, which would freeze this panel for a whole run.
    """
    board = run_board(current_workspace())
    if board.signature == signature:
        return no_update, no_update, no_update
    return live_cards(board.live()), runs_table(board.folders, board.exported), board.signature
