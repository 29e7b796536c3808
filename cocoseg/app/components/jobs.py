"""Job cards' parts: durations, progress bars and message lines of registry entries.

Built from a ``cocoseg.pipeline.jobs.RunStatus``, so every page and every tab shows the same
state, whoever started the job. The status badge is ``panels.status_badge``, the one
badge of the app.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from cocoseg.app.components.panels import ACTIVE_STATES, STATUS_COLOURS


def duration_text(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


def progress_bar(
    fraction: float | None, label: str, status: str, identifier: str | dict | None = None
) -> dbc.Progress:
    """A bar that animates while the job is active and keeps its final width afterwards."""
    value = 0 if fraction is None else max(0.0, min(1.0, fraction)) * 100
    active = status in ACTIVE_STATES
    extra = {"id": identifier} if identifier is not None else {}
    return dbc.Progress(
        value=value,
        label=label,
        striped=active,
        animated=active,
        color=STATUS_COLOURS.get(status, "primary"),
        className="job-progress",
        **extra,
    )


def message_line(state: str, message: str) -> html.Div | None:
    """The job's last message (why it failed or was interrupted; how long a stalled one has been silent), if any."""
    if not message:
        return None
    tone = "text-danger" if state in ("failed", "stalled") else "text-muted"
    return html.Div(message, className=f"small {tone} job-message")


def action_with_progress(
    intro: list, button: dbc.Button, queued_id: str, message_id: str, result_id: str
) -> list:
    """A one-click job's panel: what it does, its button, then the refusal or plan line and the job's
    own lines (stages, then how it ended). ``queued_id`` holds ``{"job": name}`` for the watcher."""
    return [
        *intro,
        button,
        dcc.Store(id=queued_id),
        html.Div(id=message_id, className="small mt-1"),
        html.Div(id=result_id, className="small mt-1"),
    ]
