"""The runs table's buttons on Train: cancel, resume, export, evaluate, delete (with its
confirmation checked on the server). Resume, export and evaluate only queue a request; the
page's job watchers (``pages/train.py``) run it. Registered by ``main.CALLBACK_MODULES``; the
Train page owns the layout (``components.run_cards``).
"""

from __future__ import annotations

import time

from dash import ALL, Input, Output, State, callback, ctx, no_update

from cocoseg.app import limits
from cocoseg.app.components.alerts import alert
from cocoseg.app.context import current_workspace
from cocoseg.app.ids import Train
from cocoseg.pipeline.jobs import RunError, RunFolder, cancel, delete_confirmed_run, get_run, request_delete


@callback(
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    Output(Train.REFRESH_NOW, "data", allow_duplicate=True),
    Input({"type": Train.CANCEL, "run": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def cancel_run(clicks):
    """Ask the run to stop (it stops within one batch); a queued run nobody picked up stops at once."""
    try:
        folder = _clicked_run(clicks)
    except (RunError, ValueError) as error:
        return alert(str(error), "danger"), no_update
    if folder is None:
        return no_update, no_update
    return alert(cancel(folder, "browser"), "warning"), time.time()


def _clicked_run(clicks) -> RunFolder | None:
    """The run whose button was clicked (None: no click yet, a re-render); raises for an unknown run."""
    if not ctx.triggered_id or not any(clicks or []):
        return None
    return get_run(current_workspace(), ctx.triggered_id["run"])


def _action_button(action: str) -> Input:
    return Input({"type": Train.ACTION, "action": action, "run": ALL}, "n_clicks")


def _job_request(clicks, describe, **extra) -> tuple:
    """(the job's request, a note saying what starts) for the clicked run; nothing for a re-render."""
    try:
        folder = _clicked_run(clicks)
    except (RunError, ValueError) as error:
        return no_update, alert(str(error), "danger")
    if folder is None:
        return no_update, no_update
    if refused := limits.refusal():
        return no_update, alert(f"Not started: {refused}.", "warning")
    return {"run": folder.name, "queued": time.time(), **extra}, alert(describe(folder))


@callback(
    Output(Train.QUEUED, "data", allow_duplicate=True),
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    _action_button("resume"),
    prevent_initial_call=True,
)
def resume_run(clicks):
    """Queue the run again for the training job, which resumes it from its last checkpoint."""
    return _job_request(
        clicks,
        lambda folder: f"Resuming {folder.name} from epoch {folder.state().get('epoch', 0)}.",
        export=True,
        resume=True,
    )


@callback(
    Output(Train.EXPORT_REQUEST, "data"),
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    _action_button("export"),
    prevent_initial_call=True,
)
def export_run(clicks):
    return _job_request(
        clicks,
        lambda folder: (
            f"Exporting {folder.name} to ONNX (parity check and INT8/FP16 variants take a minute)."
        ),
    )


@callback(
    Output(Train.EVALUATE_REQUEST, "data"),
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    _action_button("evaluate"),
    prevent_initial_call=True,
)
def evaluate_run(clicks):
    return _job_request(clicks, lambda folder: f"Evaluating {folder.name} on its validation split.")


@callback(
    Output(Train.DELETE_CONFIRM, "displayed"),
    Output(Train.DELETE_CONFIRM, "message"),
    Output(Train.DELETE_PENDING, "data"),
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    _action_button("delete"),
    prevent_initial_call=True,
)
def ask_delete(clicks):
    """Deleting needs a confirmation, checked on the server: the run's name and a one-time token wait in a
    store until the dialog sends them back (``registry.request_delete``)."""
    try:
        folder = _clicked_run(clicks)
        if folder is None:
            return (no_update,) * 4
        pending = request_delete(current_workspace(), folder.name)
    except (RunError, ValueError, OSError) as error:
        return no_update, no_update, no_update, alert(str(error), "danger")
    question = f"Delete run {folder.name} and its checkpoints? Its exported model (if any) stays."
    return True, question, pending, no_update


@callback(
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    Output(Train.REFRESH_NOW, "data", allow_duplicate=True),
    Input(Train.DELETE_CONFIRM, "submit_n_clicks"),
    State(Train.DELETE_PENDING, "data"),
    prevent_initial_call=True,
)
def delete_confirmed(_submitted, pending):
    """Delete only what the request confirms: the run's name with the token ``ask_delete`` gave."""
    if not pending:
        return no_update, no_update
    try:
        name = delete_confirmed_run(current_workspace(), pending)
    except (RunError, ValueError, OSError) as error:
        return alert(str(error), "danger"), no_update
    return alert(f"Deleted run {name}.", "secondary"), time.time()
