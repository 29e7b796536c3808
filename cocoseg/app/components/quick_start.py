"""Home's Quick start card (an empty workspace's first model) and how its job ended. No callbacks here."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.jobs import action_with_progress
from cocoseg.app.ids import Home
from cocoseg.pipeline.training import EXPECTATIONS


def quick_start_card() -> html.Div:
    """One button: prepare the demo, fine-tune the fastest pretrained model for a few minutes, export it."""
    intro = [
        html.P(
            "No model yet. One click prepares the bundled demo (160 COCO images, 21 VOC classes) at "
            "128 px, trains the MobileNetV2 UNet for a few minutes on this machine and exports it, "
            "so Segment, Compare and Annotate have a model to use.",
            className="small mb-1",
        ),
        html.P(EXPECTATIONS, className="small text-muted mb-2"),
    ]
    button = dbc.Button(
        [html.I(className="bi bi-rocket-takeoff me-1"), "Quick start"],
        id=Home.QUICK_START,
        color="primary",
        size="sm",
    )
    return html.Div(
        action_with_progress(
            intro, button, Home.QUICK_START_QUEUED, Home.QUICK_START_MESSAGE, Home.QUICK_START_RESULT
        )
    )


def quick_start_note(outcome) -> html.Div:
    """The new model and where to use it, or why the job stopped."""
    result = outcome.result or {}
    if outcome.status != "finished" or "model" not in result:
        return alert(f"The Quick start ended {outcome.status}: {outcome.message}", "warning")
    score = "" if result.get("best_miou") is None else f" (val mIoU {result['best_miou'] * 100:.1f} %)"
    return alert(
        [
            f"Model {result['model']} is ready{score}. Try it: ",
            dcc.Link("Segment", href="/segment"),
            " · ",
            dcc.Link("Annotate with pre-fill", href="/annotate"),
            " · ",
            dcc.Link("Train another", href="/train"),
        ],
        "success",
    )
