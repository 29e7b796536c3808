"""Home's datasets table (one row per split with its counts and validation badge) and device panel.
No callbacks here."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from cocoseg.app.components.panels import status_badge
from cocoseg.app.ids import Home
from cocoseg.pipeline.inference import onnxruntime_label


def _number(row: dict, key: str) -> str:
    return f"{row[key]:,}" if key in row else "-"


def datasets_table(rows: list[dict]) -> dbc.Table:
    """Dataset splits with counts and a validation badge."""
    header = html.Thead(
        html.Tr(
            [
                html.Th(name)
                for name in ("Dataset", "Split", "Images", "Annotations", "Categories", "Crowd", "Validation")
            ]
        )
    )
    body = []
    for row in rows:
        name = (
            [row["dataset"], dbc.Badge("bundled", color="info", className="ms-2")]
            if row["builtin"]
            else row["dataset"]
        )
        body.append(
            html.Tr(
                [
                    html.Td(name),
                    html.Td(row["split"]),
                    html.Td(_number(row, "images")),
                    html.Td(_number(row, "annotations")),
                    html.Td(_number(row, "categories")),
                    html.Td(_number(row, "crowd")),
                    html.Td(
                        [
                            status_badge(row["status"], row["message"]),
                            html.Small(row["message"], className="text-muted ms-2"),
                        ]
                    ),
                ],
                className=f"dataset-row dataset-{row['dataset']}",
            )
        )
    return dbc.Table([header, html.Tbody(body)], hover=True, size="sm", className="mb-0")


def device_panel(report: dict, checked: dict | None) -> html.Div:
    """What this machine has and what cocoseg uses (``inference.device_report``); the training side
    comes from ``checked``, a report made with TensorFlow in a child process, or a button to make one."""
    inference, ort, cpu = report["inference"], report["onnxruntime"], report["cpu"]
    gpus = [
        f"{gpu['name']} ({gpu['memory_mib']:,} MiB, compute {gpu['compute_capability']})"
        for gpu in report["gpus"]
    ]
    rows = [
        html.Div(
            [
                html.Span(
                    inference["device"], className=f"device-badge device-{inference['device'].lower()}"
                ),
                html.Span(
                    f"inference on {inference['provider']} · {onnxruntime_label(ort)}",
                    className="text-muted ms-2",
                ),
            ]
        ),
        html.Div("Usable: " + ", ".join(ort["usable"]), className="mt-2"),
        *[
            html.Small(f"{provider} not usable: {reason}", className="text-muted d-block device-refusal")
            for provider, reason in ort["refused"].items()
        ],
        html.Div(f"CPU: {cpu['model']}, {cpu['cores']} cores", className="mt-2 small"),
        html.Small(
            ", ".join(cpu["flags"]) or "no AVX2 / AVX-512 / BF16 / AMX", className="text-muted d-block"
        ),
        html.Div("GPU: " + ("; ".join(gpus) if gpus else report["gpu_note"]), className="small"),
    ]
    return html.Div(
        [*rows, html.Hr(className="my-2"), html.Div(training_rows(checked), id=Home.DEVICE_TRAINING)]
    )


def training_rows(checked: dict | None) -> list:
    """Training's device (and the advice that needs TensorFlow's facts), or the button that checks them."""
    button = dbc.Button(
        [html.I(className="bi bi-cpu me-1"), "Check training devices" if checked is None else "Check again"],
        id=Home.DEVICE_CHECK,
        size="sm",
        color="secondary",
        outline=True,
        title="runs a doctor job in a fresh interpreter: TensorFlow never loads in the web process",
    )
    if checked is None:
        note = html.Small("Training: TensorFlow's devices not checked yet.", className="text-muted d-block")
        return [note, button, html.Div(id=Home.DEVICE_MESSAGE, className="small mt-1")]
    training = checked["training"]
    rows = [html.Div(f"Training: {training['device']} ({training['why']})", className="small")]
    if "precision" in training:
        rows.append(
            html.Div(
                f"Precision (auto): {training['precision']}",
                title=training["precision_why"],
                className="small text-muted",
            )
        )
    for item in checked.get("advice", []):
        rows.append(
            html.Div(
                [html.Span(item["what"] + ": "), html.Code(item["command"])],
                className="small text-warning-emphasis mt-1",
            )
        )
    return [
        *rows,
        html.Div(button, className="mt-1"),
        html.Div(id=Home.DEVICE_MESSAGE, className="small mt-1"),
    ]
