"""Training runs on the Train page: a live card per recent run, the runs table, and its jobs' notes.

Pure builders over a run folder (``cocoseg.pipeline.jobs.registry``): its ``RunStatus`` for the live
state, history.csv and events.jsonl for the curves. No callbacks here.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.figures import LIGHT
from cocoseg.app.components.jobs import duration_text, message_line, progress_bar
from cocoseg.app.components.panels import empty_state, status_badge
from cocoseg.app.ids import Train
from cocoseg.pipeline.jobs import JobOutcome, RunFolder, RunStatus, observe

CURVE_MARGINS = {"l": 40, "r": 40, "t": 10, "b": 30}


def epoch_fraction(status: RunStatus) -> tuple[float | None, str]:
    """How far a run is (0-1) and the bar's label, from its last progress event."""
    progress = status.progress
    epochs = progress.get("epochs") or status.raw.get("epochs")
    if not progress or not epochs:
        return (1.0, "done") if status.state == "finished" else (None, status.state)
    if progress.get("type") == "batch":
        done = (progress["epoch"] - 1 + progress["batch"] / max(progress["batches"], 1)) / epochs
        return done, f"epoch {progress['epoch']}/{epochs} · batch {progress['batch']}/{progress['batches']}"
    return progress["epoch"] / epochs, f"epoch {progress['epoch']}/{epochs}"


def stats_line(status: RunStatus, history: list[dict]) -> str:
    progress = status.progress
    parts = []
    if progress.get("images_per_second"):
        parts.append(f"{progress['images_per_second']:.1f} images/s")
    if status.state in ("running", "stalled") and progress.get("eta_seconds") is not None:
        parts.append(f"ETA {duration_text(progress['eta_seconds'])}")
    if progress.get("loss") is not None:
        parts.append(f"loss {progress['loss']:.4f}")
    best = max((row["val_miou"] for row in history if row.get("val_miou") is not None), default=None)
    if best is not None:
        parts.append(f"best val mIoU {best * 100:.2f} %")
    if status.raw.get("device"):
        parts.append(status.raw["device"])
    return " · ".join(parts)


def curves_figure(run: RunFolder, history: list[dict]) -> go.Figure:
    """Training loss (per logged batch group and per epoch) and validation mIoU per epoch."""
    batches = [event for event in run.events() if event.get("type") == "batch"]
    figure = go.Figure()
    if batches:
        figure.add_trace(
            go.Scatter(
                x=[event["epoch"] - 1 + event["batch"] / max(event["batches"], 1) for event in batches],
                y=[event["loss"] for event in batches],
                name="loss (running)",
                mode="lines",
                line={"color": "#9aa5b1", "width": 1},
            )
        )
    if history:
        epochs = [row["epoch"] for row in history]
        figure.add_trace(
            go.Scatter(
                x=epochs,
                y=[row["loss"] for row in history],
                name="loss",
                mode="lines+markers",
                line={"color": "#3b5bdb"},
            )
        )
        figure.add_trace(
            go.Scatter(
                x=epochs,
                y=[row["val_loss"] for row in history],
                name="val loss",
                mode="lines+markers",
                line={"color": "#748ffc", "dash": "dot"},
            )
        )
        figure.add_trace(
            go.Scatter(
                x=epochs,
                y=[(row["val_miou"] or 0) * 100 for row in history],
                name="val mIoU %",
                mode="lines+markers",
                yaxis="y2",
                line={"color": "#2f9e44"},
            )
        )
    figure.update_layout(
        template=LIGHT,
        margin=CURVE_MARGINS,
        height=170,
        showlegend=True,
        legend={"orientation": "h", "y": -0.25, "font": {"size": 10}},
        xaxis={"title": None, "rangemode": "tozero"},
        yaxis={"title": "loss"},
        yaxis2={
            "title": "mIoU %",
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            "tickmode": "auto",  # round percentages, not ticks at the loss axis' heights
            "nticks": 4,
        },
    )
    return figure


def live_card(run: RunFolder) -> dbc.Card:
    observed, history = observe(run), run.history()
    fraction, label = epoch_fraction(observed)
    cancel = (
        dbc.Button(
            [html.I(className="bi bi-stop-fill me-1"), "Cancel"],
            id={"type": Train.CANCEL, "run": run.name},
            size="sm",
            color="outline-danger",
            disabled=observed.cancelling,
        )
        if observed.active
        else None
    )
    export = observed.raw.get("export")
    export_line = (
        html.Div(f"export: {observed.raw.get('export_message') or export}", className="small text-muted")
        if export
        else None
    )
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    [
                        html.Span(run.name, className="fw-semibold me-2 run-name"),
                        status_badge(observed.state, cancelling=observed.cancelling),
                        html.Div(cancel, className="ms-auto"),
                    ],
                    className="d-flex align-items-center mb-1",
                ),
                progress_bar(fraction, label, observed.state),
                html.Div(stats_line(observed, history), className="small text-muted mt-1 run-stats"),
                # a finished run's message is its best mIoU, which the stats line already says
                message_line(observed.state, observed.shown_message)
                if observed.state != "finished"
                else None,
                export_line,
                dcc.Graph(
                    figure=curves_figure(run, history),
                    config={"displayModeBar": False},
                    className="run-curves",
                ),
            ]
        ),
        className="run-card mb-2",
        id={"type": Train.CARD, "run": run.name},
    )


def _action(label: str, icon: str, action: str, run: str, colour: str = "outline-secondary") -> dbc.Button:
    """An icon button (its label on hover and for screen readers): four labelled buttons pushed the
    runs table past a 1280 px window's edge."""
    return dbc.Button(
        [html.I(className=f"bi bi-{icon}"), html.Span(label, className="visually-hidden")],
        id={"type": Train.ACTION, "action": action, "run": run},
        size="sm",
        color=colour,
        className="run-action",
        title=label,
    )


def live_cards(runs: list[RunFolder]) -> list | html.Div:
    """A card per live run, or the empty state that says how to start one."""
    return [live_card(run) for run in runs] or empty_state(
        "No run is active.", "Start one on the left.", icon="activity"
    )


def run_actions(run: RunFolder, status: RunStatus, exported: bool) -> list:
    """The buttons of a run that has ended: resume, (re-)export, evaluate, delete."""
    if status.active:
        return []
    actions = []
    state, epochs = run.state(), (run.config() or {}).get("epochs", 0)
    if (
        status.state in ("interrupted", "cancelled", "failed")
        and run.last_checkpoint.is_file()
        and state.get("epoch", 0) < epochs
    ):
        actions.append(_action("Resume", "play-fill", "resume", run.name, "outline-primary"))
    if run.best_checkpoint.is_file() and status.raw.get("export") != "running":
        actions.append(
            _action("Re-export" if exported else "Export", "box-arrow-up-right", "export", run.name)
        )
    if exported:
        actions.append(_action("Evaluate", "clipboard-data", "evaluate", run.name))
    actions.append(_action("Delete", "trash", "delete", run.name, "outline-danger"))
    return actions


def _model_cell(config: dict) -> list:
    """The architecture, its encoder when it has one, and the run it was fine-tuned from (its lineage)."""
    options = config.get("model_options") or {}
    encoder = options.get("encoder")
    cell = [config.get("model", "") + (f" · {encoder}" if encoder else "")]
    if options.get("encoder_weights") == "imagenet":
        cell.append(html.Span(" ImageNet", className="text-muted small"))
    parent = (config.get("parent") or {}).get("run")
    if parent:
        cell += [html.Br(), html.Small(f"from {parent}", className="text-muted run-parent")]
    return cell


def _device_cell(device: str, config: dict) -> list:
    """The device, and under it the precision the run trains in (its reason on hover; ``auto``
    until the job has resolved it on its device)."""
    precision = config.get("precision") or ("mixed_float16" if config.get("mixed_precision") else "float32")
    return [
        device,
        html.Br() if device else None,
        html.Small(precision, className="text-muted run-precision", title=config.get("precision_reason", "")),
    ]


def runs_table(folders: Sequence[RunFolder], exported_names: AbstractSet[str]) -> dbc.Table | html.Div:
    """A row per run with its actions, or the empty state when there is none."""
    if not folders:
        return empty_state("No runs yet.", "Start one with the form.", icon="list-task")
    header = html.Thead(
        html.Tr(
            [
                html.Th(title)
                for title in ("Run", "Model", "Status", "Epochs", "Best mIoU", "Device", "Export")
            ]
        )
    )
    rows = []
    for run in folders:
        observed, state, config = observe(run), run.state(), run.config() or {}
        trained = sum(row.get("seconds") or 0 for row in run.history())
        best = state.get("best_miou")
        export = "model ready" if run.name in exported_names else (observed.raw.get("export") or "-")
        actions = run_actions(run, observed, run.name in exported_names)
        rows.append(
            html.Tr(
                [
                    # the actions sit under the name, so the table fits a 1280 px window's panel
                    html.Td(
                        [html.Div(run.name, className="run-name"), html.Div(actions, className="run-actions")]
                    ),
                    html.Td(_model_cell(config)),
                    html.Td(
                        status_badge(observed.state, cancelling=observed.cancelling),
                        title=observed.shown_message,
                    ),
                    html.Td(
                        [
                            f"{state.get('epoch', 0)}/{config.get('epochs', '?')}",
                            html.Br(),
                            html.Small(duration_text(trained) if trained else "-", className="text-muted"),
                        ],
                        title="epochs trained / asked; training time",
                    ),
                    html.Td("-" if best is None else f"{best * 100:.2f} %", title="best validation mIoU"),
                    html.Td(_device_cell(observed.raw.get("device", ""), config)),
                    html.Td(export, title=observed.raw.get("export_message", "")),
                ],
                id={"type": Train.ROW, "run": run.name},
            )
        )
    return dbc.Table(
        [header, html.Tbody(rows)], size="sm", hover=True, responsive=True, className="runs-table mb-0"
    )


def export_note(run: str, outcome: JobOutcome) -> dbc.Alert:
    """How an export job ended, for the runs panel."""
    if outcome.ok and outcome.result.get("outcome") == "done":
        return alert(f"{run} exported; it is on the Segment, Compare and Evaluate pages.", "success")
    reason = outcome.result.get("message") or outcome.message or outcome.status
    return alert(f"Export of {run} failed: {reason}", "danger")


def evaluation_note(run: str, outcome: JobOutcome) -> dbc.Alert:
    """An evaluation job's score, with the way to the leaderboard (or why there is none)."""
    if not outcome.ok:
        return alert(outcome.message or f"evaluation {outcome.status}", "danger")
    result = outcome.result
    score = (
        f"{run}: mIoU {result['miou'] * 100:.2f} % on {result['dataset']}/{result['split']} "
        f"({result['images']} images). "
    )
    return alert([score, dcc.Link("Open the leaderboard", href="/evaluate")], "success")
