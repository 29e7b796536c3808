"""Job cards' parts: durations, progress bars and message lines of registry entries.

Built from a ``cocoseg.pipeline.jobs.RunStatus``, so every page and every tab shows the same
state, whoever started the job. The status badge is ``panels.status_badge``, the one
badge of the app.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

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
