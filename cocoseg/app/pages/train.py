"""Train: start a run from a form, watch it live, cancel it; the runs table with its actions.

Start validates the form here (no TensorFlow: ``TrainConfig`` and the architecture
catalog are pure Python) and queues a run folder; a background callback then trains it
(in a job process of its own: ``cocoseg.pipeline.jobs.runner``). Everything the page shows comes from the run
registry on disk, polled every second, so a reload, a second tab or a server restart
shows the same live state. Cancel is a request in the registry; the runner stops
within one batch.
"""

from __future__ import annotations

import logging
import time

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.components.run_cards import live_card, runs_table
from cocoseg.app.context import current_workspace
from cocoseg.app.ids import Train
from cocoseg.app.jobs import run_job_process
from cocoseg.pipeline.core.errors import ConfigError
from cocoseg.pipeline.inference.model_store import list_entries
from cocoseg.pipeline.jobs import cancel, observe, queue, recent, supervise
from cocoseg.pipeline.jobs.registry import RunError, RunFolder, delete_run, get_run, list_runs
from cocoseg.pipeline.prepare.sets import find_prepared, list_prepared
from cocoseg.pipeline.training import (
    CATALOG,
    LOSS_NAMES,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    cached_model_summary,
    check_model_settings,
    create,
)

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/train", name="Train", order=25, icon="cpu")

FIELDS = {
    "prepared": Train.PREPARED,
    "model": Train.MODEL,
    "model_options": Train.OPTIONS,
    "epochs": Train.EPOCHS,
    "batch_size": Train.BATCH_SIZE,
    "learning_rate": Train.LEARNING_RATE,
    "seed": Train.SEED,
}
INPUT_FIELDS = ("epochs", "batch_size", "learning_rate", "seed")  # dbc.Input fields that take ``invalid``


def _feedback(field: str) -> html.Div:
    return html.Div(id=f"{FIELDS[field]}-feedback", className="field-feedback")


def _number(component_id: str, value, step, label: str) -> dbc.Col:
    """A number field; its range is checked by the config (one message, beside the field), not the browser."""
    field = next((name for name, identifier in FIELDS.items() if identifier == component_id), None)
    return dbc.Col(
        [
            dbc.Label(label, html_for=component_id, className="small mb-0"),
            dbc.Input(id=component_id, type="number", value=value, step=step, size="sm", debounce=True),
            _feedback(field) if field else None,
        ]
    )


def _select(component_id: str, label: str, options, value) -> dbc.Col:
    return dbc.Col(
        [
            dbc.Label(label, html_for=component_id, className="small mb-0"),
            dbc.Select(
                id=component_id,
                options=[{"label": option, "value": option} for option in options],
                value=value,
                size="sm",
            ),
        ]
    )


def prepared_options(workspace) -> list[dict]:
    options = []
    for prepared in list_prepared(workspace):
        manifest = prepared.manifest
        train = manifest["splits"].get("train", {}).get("examples", 0)
        options.append(
            {
                "label": f"{prepared.name} · {manifest['config']['size']} px · {len(manifest['label_map']['classes'])} classes · "
                f"{train} train images",
                "value": prepared.name,
            }
        )
    return options


def _form(workspace) -> list:
    choices = prepared_options(workspace)
    if not choices:
        return [
            empty_state(
                "No prepared set yet.",
                "Prepare one on the Prepare page or with `cocoseg prepare demo --labels voc21`.",
                icon="sliders",
            ),
            dcc.Link("Go to Prepare", href="/prepare"),
        ]
    return [
        dbc.Label("Prepared set", html_for=Train.PREPARED, className="small mb-0"),
        dcc.Dropdown(id=Train.PREPARED, options=choices, value=choices[0]["value"], clearable=False),
        _feedback("prepared"),
        dbc.Row(
            [
                dbc.Col(
                    [
                        dbc.Label("Architecture", html_for=Train.MODEL, className="small mb-0"),
                        dcc.Dropdown(
                            id=Train.MODEL,
                            options=[
                                {"label": name, "value": name, "title": info.description}
                                for name, info in CATALOG.items()
                            ],
                            value="unet",
                            clearable=False,
                        ),
                        _feedback("model"),
                    ],
                    width=6,
                ),
                _number(Train.BASE_FILTERS, 32, 1, "Base filters"),
                _number(Train.DEPTH, 4, 1, "Depth"),
            ],
            className="g-2 mt-1",
        ),
        html.Div(id=Train.OPTIONS, className="small text-muted"),
        _feedback("model_options"),
        html.Div(
            [html.Span(id=Train.MODEL_INFO), html.Span(id=Train.MODEL_SUMMARY, className="ms-1")],
            className="small model-info",
        ),
        dbc.Row(
            [
                _number(Train.EPOCHS, 20, 1, "Epochs"),
                _number(Train.BATCH_SIZE, 8, 1, "Batch size"),
                _number(Train.LEARNING_RATE, 0.001, "any", "Learning rate"),
                _number(Train.SEED, 0, 1, "Seed"),
            ],
            className="g-2 mt-1",
        ),
        dbc.Row(
            [
                _select(Train.OPTIMIZER, "Optimizer", OPTIMIZERS, "adam"),
                _select(Train.SCHEDULE, "Schedule", SCHEDULES, "cosine"),
                _select(Train.LOSS, "Loss", LOSS_NAMES, "cross_entropy"),
                _select(Train.SAMPLING, "Sampling", ("none", "repeat-factor"), "none"),
            ],
            className="g-2 mt-1",
        ),
        dbc.Row(
            [
                dbc.Col(dbc.Switch(id=Train.AUGMENT, label="Augment", value=True)),
                dbc.Col(dbc.Switch(id=Train.EXPORT, label="Export to ONNX when finished", value=True)),
            ],
            className="mt-2",
        ),
        dbc.Button(
            [html.I(className="bi bi-play-fill me-1"), "Start training"],
            id=Train.START,
            color="primary",
            size="sm",
            className="mt-2",
            title="Start training (Ctrl+Enter)",
        ),
        html.Div(id=Train.FORM_MESSAGE, className="small mt-2"),
        html.Div(id="train-job-heartbeat", className="small text-muted mt-1"),
    ]


def layout(**_query) -> html.Div:
    workspace = current_workspace()
    header = html.Div(
        [
            html.H2("Train"),
            html.Span(
                "background jobs that survive reloads and restarts; curves update as epochs end",
                className="text-muted small",
            ),
        ],
        className="page-header",
    )
    stores = [
        dcc.Store(id=Train.QUEUED),
        dcc.Store(id=Train.JOB_RESULT),
        dcc.Store(id="train-summary-request"),
        dcc.Store(id="train-export-request"),
        dcc.Store(id="train-evaluate-request"),
        dcc.Store(id="train-refresh-now"),
        dcc.Store(id="train-signature"),
        dcc.Store(id="train-delete-pending"),
        dcc.Interval(id=Train.POLL, interval=1000),
        dcc.ConfirmDialog(id="train-delete-confirm"),
    ]
    form = panel("New run", _form(workspace), icon="sliders2")
    live = panel(
        "Live",
        html.Div(
            id=Train.LIVE,
            children=empty_state("No run is active.", "Start one on the left.", icon="activity"),
        ),
        icon="activity",
    )
    runs = panel(
        "Runs",
        [html.Div(id=Train.ACTION_MESSAGE, className="small mb-1"), html.Div(id=Train.RUNS)],
        icon="list-task",
    )
    return html.Div(
        [
            header,
            *stores,
            html.Div(
                [html.Div(form, className="train-form"), html.Div([live, runs], className="train-side")],
                className="train-grid",
            ),
        ],
        className="page page-train",
    )


# --- form --------------------------------------------------------------------------------


def model_options(model: str, base_filters, depth) -> dict:
    """The options the form sets for an architecture (the others keep their defaults)."""
    info = CATALOG.get(model)
    if info is None:
        return {}
    names = {option.name for option in info.options}
    chosen = {"base_filters": base_filters, "depth": depth}
    return {name: value for name, value in chosen.items() if name in names and value is not None}


@callback(
    Output(Train.MODEL_INFO, "children"),
    Output(Train.OPTIONS, "children"),
    Output("train-summary-request", "data"),
    Output(Train.BASE_FILTERS, "disabled"),
    Output(Train.DEPTH, "disabled"),
    Input(Train.MODEL, "value"),
    Input(Train.BASE_FILTERS, "value"),
    Input(Train.DEPTH, "value"),
    Input(Train.PREPARED, "value"),
)
def describe_model(model, base_filters, depth, prepared_name):
    """Check the architecture choice against the prepared set at once; ask a job for its size."""
    info = CATALOG.get(model)
    if info is None or not prepared_name:
        return "", "", None, False, False
    options = model_options(model, base_filters, depth)
    takes_levels = "depth" in {option.name for option in info.options}
    try:
        manifest = find_prepared(current_workspace(), prepared_name).manifest
        size, classes = manifest["config"]["size"], len(manifest["label_map"]["classes"])
        check_model_settings(model, options, size)
    except ValueError as error:
        return (
            html.Span(str(error), className="text-danger"),
            info.description,
            None,
            not takes_levels,
            not takes_levels,
        )
    request = {"model": model, "options": options, "size": size, "classes": classes}
    return (
        f"{info.description}; input {size} px, {classes} classes.",
        "",
        request,
        not takes_levels,
        not takes_levels,
    )


@callback(
    Output(Train.MODEL_SUMMARY, "children"),
    Input("train-summary-request", "data"),
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
            outcome = run_job_process("summary", queue(workspace, "summary", request).name)
        except (RunError, OSError) as error:
            return html.Span(str(error), className="text-danger")
        if not outcome.ok:
            return html.Span(outcome.message or f"no summary ({outcome.status})", className="text-danger")
        summary = outcome.result
    return f"{summary['parameters'] / 1e6:.2f} M parameters · {summary['gflops']:.2f} GFLOPs per image"


def field_marks(field: str | None, message: str = "") -> list:
    """``invalid`` flags of the input fields, then the feedback text of every field."""
    flags = [field == name for name in INPUT_FIELDS]
    feedback = [html.Span(message, className="text-danger small") if field == name else "" for name in FIELDS]
    return flags + feedback


def _whole(value, field: str) -> int:
    if value is None or float(value) != int(value):
        raise ConfigError(field, "enter a whole number")
    return int(value)


def _config_from_form(
    prepared,
    model,
    base_filters,
    depth,
    epochs,
    batch_size,
    learning_rate,
    seed,
    optimizer,
    schedule,
    loss,
    sampling,
    augment,
) -> TrainConfig:
    if learning_rate is None:
        raise ConfigError("learning_rate", "enter a positive number such as 0.001")
    return TrainConfig(
        prepared or "",
        model=model or "",
        model_options=model_options(model, base_filters, depth),
        epochs=_whole(epochs, "epochs"),
        batch_size=_whole(batch_size, "batch_size"),
        learning_rate=float(learning_rate),
        optimizer=optimizer,
        schedule=schedule,
        loss=loss,
        sampling=sampling,
        augment=bool(augment),
        seed=_whole(seed, "seed"),
    )


@callback(
    [Output(FIELDS[name], "invalid") for name in INPUT_FIELDS]
    + [Output(f"{FIELDS[name]}-feedback", "children") for name in FIELDS]
    + [Output(Train.FORM_MESSAGE, "children"), Output(Train.QUEUED, "data")],
    Input(Train.START, "n_clicks"),
    State(Train.PREPARED, "value"),
    State(Train.MODEL, "value"),
    State(Train.BASE_FILTERS, "value"),
    State(Train.DEPTH, "value"),
    State(Train.EPOCHS, "value"),
    State(Train.BATCH_SIZE, "value"),
    State(Train.LEARNING_RATE, "value"),
    State(Train.SEED, "value"),
    State(Train.OPTIMIZER, "value"),
    State(Train.SCHEDULE, "value"),
    State(Train.LOSS, "value"),
    State(Train.SAMPLING, "value"),
    State(Train.AUGMENT, "value"),
    State(Train.EXPORT, "value"),
    prevent_initial_call=True,
    running=[(Output(Train.START, "disabled"), True, False)],
)
def start_training(
    _clicks,
    prepared,
    model,
    base_filters,
    depth,
    epochs,
    batch_size,
    learning_rate,
    seed,
    optimizer,
    schedule,
    loss,
    sampling,
    augment,
    export,
):
    """Validate every field (the message goes beside it), then queue the run for the job."""
    try:
        config = _config_from_form(
            prepared,
            model,
            base_filters,
            depth,
            epochs,
            batch_size,
            learning_rate,
            seed,
            optimizer,
            schedule,
            loss,
            sampling,
            augment,
        )
        folder = create(current_workspace(), config)
    except ConfigError as error:
        message = str(error).partition(": ")[2] or str(error)
        return field_marks(error.field if error.field in FIELDS else None, message) + [
            dbc.Alert(f"Not started: {error}", color="warning", className="py-1 px-2 mb-0"),
            no_update,
        ]
    except (RunError, OSError) as error:
        return field_marks(None) + [
            dbc.Alert(f"Not started: {error}", color="danger", className="py-1 px-2 mb-0"),
            no_update,
        ]
    notice = dbc.Alert(
        f"Queued run {folder.name}; it starts in a moment.", color="info", className="py-1 px-2 mb-0"
    )
    return field_marks(None) + [
        notice,
        {"run": folder.name, "export": bool(export), "resume": False, "queued": time.time()},
    ]


# --- jobs ----------------------------------------------------------------------------------


@callback(
    Output(Train.JOB_RESULT, "data"),
    Input(Train.QUEUED, "data"),
    background=True,
    prevent_initial_call=True,
    progress=[Output("train-job-heartbeat", "children")],
)
def run_training(set_progress, queued):
    """Start the job process that trains (or resumes) the queued run, then exports it; watch it to the end."""
    if not queued or not queued.get("run"):
        return no_update

    def relay(event: dict) -> None:
        set_progress(f"job for {queued['run']} is alive: epoch {event.get('epoch')} of {event.get('epochs')}")

    try:
        outcome = run_job_process(
            "resume" if queued.get("resume") else "train",
            queued["run"],
            relay,
            export=queued.get("export", True),
        )
    except (RunError, OSError) as error:
        return {"run": queued["run"], "error": str(error)}
    if outcome.status == "refused":
        return {"run": queued["run"], "error": outcome.message}
    return {"run": queued["run"], "status": outcome.status, "message": outcome.message}


@callback(
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    Input("train-export-request", "data"),
    background=True,
    prevent_initial_call=True,
)
def run_export(request):
    """Export a stopped run to ONNX in a job process."""
    if not request:
        return no_update
    try:
        outcome = run_job_process(
            "export", queue(current_workspace(), "export", {"run": request["run"]}).name
        )
    except (RunError, OSError) as error:
        return _note(str(error), "danger")
    if outcome.ok and outcome.result.get("outcome") == "done":
        return _note(
            f"{request['run']} exported; it is on the Segment, Compare and Evaluate pages.", "success"
        )
    reason = outcome.result.get("message") or outcome.message or outcome.status
    return _note(f"Export of {request['run']} failed: {reason}", "danger")


@callback(
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    Input("train-evaluate-request", "data"),
    background=True,
    prevent_initial_call=True,
)
def run_evaluation(request):
    """Evaluate the run's exported model on its dataset's val split, in a job process (ONNX Runtime)."""
    if not request:
        return no_update
    try:
        outcome = run_job_process(
            "evaluate", queue(current_workspace(), "evaluate", {"model": request["run"]}).name
        )
    except (RunError, OSError) as error:
        return _note(str(error), "danger")
    if not outcome.ok:
        return _note(outcome.message or f"evaluation {outcome.status}", "danger")
    result = outcome.result
    return dbc.Alert(
        [
            f"{request['run']}: mIoU {result['miou'] * 100:.2f} % on {result['dataset']}/{result['split']} "
            f"({result['images']} images). ",
            dcc.Link("Open the leaderboard", href="/evaluate"),
        ],
        color="success",
        className="py-1 px-2 mb-0",
    )


# --- live state ---------------------------------------------------------------------------


def registry_signature(folders: list[RunFolder], exported: set[str]) -> list:
    """What the panels show depends on: every status write changes ``heartbeat`` (a float; ``updated``
    has whole seconds, and a cancel landing in the same second as the last progress was missed)."""
    signature = []
    for folder in folders:
        status = observe(folder)
        stalled_for = (
            round(status.heartbeat_age or 0) if status.state == "stalled" else None
        )  # its text counts the seconds
        signature.append(
            [
                folder.name,
                status.state,
                status.raw.get("heartbeat"),
                status.raw.get("export"),
                status.cancelling,
                folder.name in exported,
                stalled_for,
            ]
        )
    return signature


@callback(
    Output(Train.LIVE, "children"),
    Output(Train.RUNS, "children"),
    Output("train-signature", "data"),
    Input(Train.POLL, "n_intervals"),
    Input(Train.QUEUED, "data"),
    Input("train-refresh-now", "data"),
    State("train-signature", "data"),
)
def refresh(_ticks, _queued, _now, signature):
    """Re-read the registry; redraw only when something changed (cheap when nothing did).

    Its inputs are never outputs of a background callback: Dash holds back a callback
    while one of its inputs is pending, which would freeze this panel for a whole run.
    """
    workspace = current_workspace()
    folders = [RunFolder(summary.folder) for summary in list_runs(workspace)]
    for folder in folders:
        supervise(folder)
    exported = {entry.name for entry in list_entries(workspace)}
    current = registry_signature(folders, exported)
    if current == signature:
        return no_update, no_update, no_update
    live = [live_card(folder) for folder in recent(folders)]
    table = (
        runs_table(folders, exported)
        if folders
        else empty_state("No runs yet.", "Start one with the form.", icon="list-task")
    )
    return live or empty_state("No run is active.", "Start one on the left.", icon="activity"), table, current


@callback(
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    Output("train-refresh-now", "data", allow_duplicate=True),
    Input({"type": Train.CANCEL, "run": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def cancel_run(clicks):
    """Ask the run to stop (it stops within one batch); a queued run nobody picked up stops at once."""
    if not ctx.triggered_id or not any(clicks or []):
        return no_update, no_update
    try:
        folder = get_run(current_workspace(), ctx.triggered_id["run"])
    except (RunError, ValueError) as error:
        return _note(str(error), "danger"), no_update
    return _note(cancel(folder, "browser"), "warning"), time.time()


def _clicked_run(clicks) -> RunFolder | None:
    """The run whose runs-table button was clicked (None: no click yet, a re-render); raises for an unknown run."""
    if not ctx.triggered_id or not any(clicks or []):
        return None
    return get_run(current_workspace(), ctx.triggered_id["run"])


def _action_button(action: str) -> Input:
    return Input({"type": Train.ACTION, "action": action, "run": ALL}, "n_clicks")


def _note(text: str, colour: str = "info") -> dbc.Alert:
    return dbc.Alert(text, color=colour, className="py-1 px-2 mb-0")


def _job_request(clicks, describe, **extra) -> tuple:
    """(the job's request, a note saying what starts) for the clicked run; nothing for a re-render."""
    try:
        folder = _clicked_run(clicks)
    except (RunError, ValueError) as error:
        return no_update, _note(str(error), "danger")
    if folder is None:
        return no_update, no_update
    return {"run": folder.name, "queued": time.time(), **extra}, _note(describe(folder))


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
    Output("train-export-request", "data"),
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
    Output("train-evaluate-request", "data"),
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    _action_button("evaluate"),
    prevent_initial_call=True,
)
def evaluate_run(clicks):
    return _job_request(clicks, lambda folder: f"Evaluating {folder.name} on its validation split.")


@callback(
    Output("train-delete-confirm", "displayed"),
    Output("train-delete-confirm", "message"),
    Output("train-delete-pending", "data"),
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    _action_button("delete"),
    prevent_initial_call=True,
)
def ask_delete(clicks):
    """Deleting needs a confirmation; the run's name waits in a store until it is given."""
    try:
        folder = _clicked_run(clicks)
    except (RunError, ValueError) as error:
        return no_update, no_update, no_update, _note(str(error), "danger")
    if folder is None:
        return (no_update,) * 4
    return (
        True,
        f"Delete run {folder.name} and its checkpoints? Its exported model (if any) stays.",
        folder.name,
        no_update,
    )


@callback(
    Output(Train.ACTION_MESSAGE, "children", allow_duplicate=True),
    Output("train-refresh-now", "data", allow_duplicate=True),
    Input("train-delete-confirm", "submit_n_clicks"),
    State("train-delete-pending", "data"),
    prevent_initial_call=True,
)
def delete_confirmed(_submitted, name):
    if not name:
        return no_update, no_update
    try:
        delete_run(current_workspace(), name)
    except (RunError, ValueError, OSError) as error:
        return dbc.Alert(str(error), color="danger", className="py-1 px-2 mb-0"), no_update
    return dbc.Alert(f"Deleted run {name}.", color="secondary", className="py-1 px-2 mb-0"), time.time()
