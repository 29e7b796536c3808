"""Reusable layout builders: titled panels, status badges, empty states."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

# every status a badge shows: a dataset's validation, and a job's state (cocoseg.pipeline.jobs.RunStatus)
STATUS_COLOURS = {
    "ok": "success",
    "warnings": "warning",
    "errors": "danger",
    "unreadable": "danger",
    "not checked": "secondary",
    "queued": "secondary",
    "running": "primary",
    "stalled": "danger",
    "finished": "success",
    "failed": "danger",
    "cancelled": "warning",
    "interrupted": "warning",
    "unknown": "light",
}
ACTIVE_STATES = ("queued", "running", "stalled")


def panel(title: str, body, icon: str = "square", panel_id: str | None = None, actions=None) -> dbc.Card:
    """A card with a header line (icon, title, optional actions) that fills its grid cell."""
    header = html.Div(
        [
            html.Span([html.I(className=f"bi bi-{icon} me-2"), title]),
            html.Div(actions or [], className="panel-actions"),
        ],
        className="d-flex justify-content-between align-items-center",
    )
    return dbc.Card(
        [
            dbc.CardHeader(header),
            dbc.CardBody(body, id=panel_id or f"panel-{title.lower().replace(' ', '-')}"),
        ],
        className="panel",
    )


def status_badge(status: str, title: str = "", cancelling: bool = False) -> dbc.Badge:
    """The one coloured badge for a dataset's or a job's status; ``title`` shows on hover.

    An active job whose cancel was requested reads "cancelling" in its state's colour.
    """
    label = "cancelling" if cancelling and status in ACTIVE_STATES else status
    return dbc.Badge(
        label,
        color=STATUS_COLOURS.get(status, "secondary"),
        title=title,
        className="status-badge job-status",
        pill=True,
    )


def empty_state(message: str, hint: str = "", icon: str = "inbox") -> html.Div:
    """What a panel shows when there is nothing yet, and how to get something."""
    return html.Div(
        [
            html.I(className=f"bi bi-{icon} empty-icon"),
            html.Div(message, className="empty-message"),
            html.Small(hint, className="empty-hint d-block") if hint else None,
        ],
        className="empty-state",
    )
