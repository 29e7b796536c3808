"""Annotate's correction loop: register the saved corrections as a dataset, and one click that
fine-tunes the pre-fill model on them (``training.plan_round`` plans it in the request, beside
the button; a ``finetune`` job does the rest and says each stage). Registered by
``main.CALLBACK_MODULES``; the Annotate page owns the layout (``components.annotate_panels``).
"""

from __future__ import annotations

from dash import Input, Output, State, callback, no_update

from cocoseg.app import limits
from cocoseg.app.components import annotate_panels as panels
from cocoseg.app.components.alerts import alert
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import Annotate
from cocoseg.app.jobs import run_queued_with_lines
from cocoseg.pipeline import annotation
from cocoseg.pipeline.core import ConfigError
from cocoseg.pipeline.jobs import RunError, queue
from cocoseg.pipeline.training import plan_round

ERRORS = annotation.SESSION_ERRORS


def _collection(current: dict | None, choice: str | None) -> str:
    """The annotations collection of the open image (or of the chosen split when none is open)."""
    return annotation.collection_of(annotation.OpenImage.from_dict(current) if current else None, choice)


@callback(
    Output(Annotate.REGISTER_MESSAGE, "children"),
    Input(Annotate.REGISTER, "n_clicks"),
    State(Annotate.REGISTER_NAME, "value"),
    State(Annotate.REGISTER_MODE, "value"),
    State(Annotate.CURRENT, "data"),
    State(Annotate.DATASET, "value"),
    prevent_initial_call=True,
)
def register(_clicks, name, mode, current, choice):
    """Register the saved corrections as a dataset, so the next preparation and training use them."""
    if not name:
        return alert("Give the new dataset a name.", "warning")
    collection, max_bytes = (
        _collection(current, choice),
        current_settings().max_annotation_bytes,
    )
    try:
        registered = annotation.register_corrections(
            current_workspace(), collection, name.strip(), mode or "overlay", max_bytes
        )
    except ERRORS as error:
        return alert(f"Not registered: {error}", "danger")
    return alert(panels.registered_note(registered), "success")


@callback(
    Output(Annotate.FINETUNE_MESSAGE, "children"),
    Output(Annotate.FINETUNE_QUEUED, "data"),
    Input(Annotate.FINETUNE, "n_clicks"),
    State(Annotate.MODEL, "value"),
    State(Annotate.CURRENT, "data"),
    State(Annotate.DATASET, "value"),
    prevent_initial_call=True,
)
def start_round(_clicks, model, current, choice):
    """Plan a round of the correction loop (refused here, beside the button) and queue its job."""
    if refused := limits.refusal():
        return alert(f"Not started: {refused}.", "warning"), no_update
    collection = _collection(current, choice)
    workspace = current_workspace()
    try:
        planned = plan_round(workspace, model, collection)
        queued = queue(workspace, "finetune", planned.to_dict())
    except ConfigError as error:
        return alert(f"Not started: {error.message}", "warning"), no_update
    except (RunError, OSError) as error:
        return alert(f"Not started: {error}", "danger"), no_update
    return alert(panels.round_plan_text(planned)), {"job": queued.name}


@callback(
    Output(Annotate.FINETUNE_RESULT, "children"),
    Input(Annotate.FINETUNE_QUEUED, "data"),
    background=True,
    prevent_initial_call=True,
    progress=[Output(Annotate.FINETUNE_RESULT, "children")],
    running=[(Output(Annotate.FINETUNE, "disabled"), True, False)],
)
def run_round(set_progress, queued):
    """Run the round in a job process; each stage's line shows here, then the child beside its parent."""
    return run_queued_with_lines("finetune", queued, set_progress, panels.round_note)
