"""Home: quick links, datasets with their validation state, the add-dataset form
(``components.dataset_form``, callbacks in ``cocoseg.app.add_dataset``), models, training runs,
the devices.

The device panel shows what ``cocoseg doctor`` says (``inference.device_report``); training's
side needs TensorFlow, so "Check training devices" runs a ``doctor`` job (``jobs.bodies.doctor``: a
fresh interpreter, recorded in the job registry) from a background callback, and the answer is kept a
day (``inference.checked_report``).

A workspace without models gets the Quick start card: one click plans it
(``training.plan_quickstart``: ImageNet weights when reachable) and runs it as a ``quickstart``
job (prepare the demo, train, export), its stages shown live.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html, no_update

from cocoseg.app import limits
from cocoseg.app.components.alerts import alert
from cocoseg.app.components.dataset_form import dataset_form
from cocoseg.app.components.home_panels import datasets_table, device_panel, training_rows
from cocoseg.app.components.panels import empty_state, panel, status_badge
from cocoseg.app.components.quick_start import quick_start_card, quick_start_note
from cocoseg.app.context import browse_roots, current_settings, current_workspace, registration_roots
from cocoseg.app.ids import AddDataset, Home
from cocoseg.app.jobs import run_queued_with_lines, run_short_job
from cocoseg.pipeline.data import overview
from cocoseg.pipeline.inference import (
    DOCTOR_JOB_SECONDS,
    DoctorError,
    checked_report,
    device_report,
    job_report,
    leaderboard,
    list_entries,
)
from cocoseg.pipeline.jobs import RunError, RunFolder, list_runs, observe, queue
from cocoseg.pipeline.training import plan_quickstart

dash.register_page(__name__, path="/", name="Home", order=0, icon="house-door")

CLI_HINTS = [
    ("register a dataset", "cocoseg data add NAME --annotations instances.json --images DIR --split train"),
    ("check it", "cocoseg data validate NAME"),
    ("describe it", "cocoseg data stats NAME --labels coco80"),
    ("masks for other tools", "cocoseg data export-masks NAME --labels voc21 --out DIR"),
]


def device_summary() -> html.Div:
    """This machine's devices and what inference uses now; training's side from the last check."""
    return device_panel(device_report(), checked_report(current_workspace()))


def runs_summary() -> html.Div:
    runs = list_runs(current_workspace())
    if not runs:
        return empty_state("No training runs yet.", "cocoseg train PREPARED --model unet", icon="activity")
    # three columns, epochs under the status and names broken anywhere: the panel is a third of a
    # 1280 px window, and a fourth column pushed the mIoU out of it
    rows = [
        html.Tr(
            [
                html.Td(run.name, className="text-break"),
                html.Td(
                    [
                        status_badge(observe(RunFolder(run.folder)).state, run.message),
                        html.Div(f"{run.epochs_done}/{run.epochs} epochs", className="small text-muted"),
                    ]
                ),
                html.Td("-" if run.best_miou is None else f"{run.best_miou * 100:.2f} %"),
            ]
        )
        for run in runs[:8]
    ]
    header = html.Thead(html.Tr([html.Th("Run"), html.Th("Status"), html.Th("Best mIoU")]))
    return dbc.Table([header, html.Tbody(rows)], size="sm", className="mb-0")


def quick_links() -> html.Div:
    """One button per other page, in navigation order."""
    pages = sorted(
        (page for page in dash.page_registry.values() if page["relative_path"] != "/"),
        key=lambda page: page.get("order", 99),
    )
    return html.Div(
        [
            dbc.Button(
                [html.I(className=f"bi bi-{page.get('icon', 'circle')} me-1"), page["name"]],
                href=page["relative_path"],
                color="light",
                size="sm",
                className="quick-link",
            )
            for page in pages
        ],
        className="d-flex flex-wrap gap-2",
    )


def models_summary() -> html.Div:
    """Served models and ensembles with their best validation mIoU (FP32, whole split)."""
    workspace = current_workspace()
    entries = list_entries(workspace)
    if not entries:
        return empty_state(
            "No models yet.",
            "cocoseg export RUN  (or: cocoseg models import FILE.onnx --card card.json)",
            icon="box",
        )
    scores = {}
    for row in leaderboard(workspace):
        if row["variant"] == "fp32" and not row["image_limit"] and row["miou"] is not None:
            scores.setdefault(row["model"], f"{row['miou'] * 100:.1f} on {row['dataset']}/{row['split']}")
    rows = [
        html.Tr(
            [
                html.Td(entry.name),
                html.Td(entry.kind),
                html.Td(f"{entry.size} px"),
                html.Td(scores.get(entry.name, "not evaluated")),
            ]
        )
        for entry in sorted(entries, key=lambda entry: entry.card.get("created", ""), reverse=True)[:8]
    ]
    header = html.Thead(html.Tr([html.Th("Model"), html.Th("Kind"), html.Th("Input"), html.Th("mIoU %")]))
    return dbc.Table([header, html.Tbody(rows)], size="sm", className="mb-0")


def layout(**_query) -> html.Div:
    settings = current_settings()
    workspace = current_workspace()
    rows = overview(workspace, settings.max_annotation_bytes)
    hints = html.Table(
        [
            html.Tr([html.Td(label, className="text-muted pe-3"), html.Td(html.Code(command))])
            for label, command in CLI_HINTS
        ]
    )
    return html.Div(
        [
            html.Div(
                [html.H2("Home"), html.Span(f"workspace {workspace.root}", className="text-muted small")],
                className="page-header",
            ),
            html.Div(quick_links(), id=Home.LINKS, className="mb-3"),
            None
            if list_entries(workspace)
            else dbc.Row(
                dbc.Col(panel("Quick start", quick_start_card(), icon="rocket-takeoff")), className="mb-3"
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            panel(
                                "Datasets",
                                html.Div(datasets_table(rows), id=Home.DATASETS_TABLE),
                                icon="database",
                                panel_id=Home.DATASETS,
                            ),
                            panel(
                                "Add a dataset",
                                dataset_form(registration_roots(), browse_roots()),
                                icon="folder-plus",
                            ),
                            panel("Models", models_summary(), icon="box", panel_id=Home.MODELS),
                        ],
                        lg=8,
                        className="d-flex flex-column gap-3",
                    ),
                    dbc.Col(
                        [
                            panel("Devices", device_summary(), icon="cpu", panel_id=Home.DEVICE),
                            panel("Training runs", runs_summary(), icon="activity", panel_id=Home.RUNS),
                        ],
                        lg=4,
                        className="d-flex flex-column gap-3",
                    ),
                ],
                className="g-3",
            ),
            dbc.Row(dbc.Col(panel("From the command line", hints, icon="terminal")), className="g-3 mt-1"),
        ],
        className="page page-home",
    )


@callback(
    Output(Home.QUICK_START_MESSAGE, "children"),
    Output(Home.QUICK_START_QUEUED, "data"),
    Input(Home.QUICK_START, "n_clicks"),
    prevent_initial_call=True,
    running=[(Output(Home.QUICK_START, "disabled"), True, False)],
)
def start_quick_start(_clicks):
    """Say where the encoder will start (ImageNet or random, and why), and queue the job."""
    if refused := limits.refusal():
        return alert(f"Not started: {refused}.", "warning"), no_update
    workspace = current_workspace()
    plan = plan_quickstart(workspace)
    try:
        queued = queue(workspace, "quickstart", plan.to_dict())
    except (RunError, OSError) as error:
        return alert(f"Not started: {error}", "danger"), no_update
    return alert(f"Started. {plan.weights_note}", "info" if plan.imagenet else "warning"), {
        "job": queued.name
    }


@callback(
    Output(Home.QUICK_START_RESULT, "children"),
    Input(Home.QUICK_START_QUEUED, "data"),
    background=True,
    prevent_initial_call=True,
    progress=[Output(Home.QUICK_START_RESULT, "children")],
    running=[(Output(Home.QUICK_START, "disabled"), True, False)],
)
def run_quick_start(set_progress, queued):
    """Run it in a job process; each stage's line shows here, then the model and where to use it."""
    return run_queued_with_lines("quickstart", queued, set_progress, quick_start_note)


@callback(
    Output(Home.DEVICE_TRAINING, "children"),
    Input(Home.DEVICE_CHECK, "n_clicks"),
    background=True,
    prevent_initial_call=True,
    running=[(Output(Home.DEVICE_CHECK, "disabled"), True, False)],
)
def check_training_devices(_clicks):
    """TensorFlow's devices, from a ``doctor`` job (about ten seconds; kept a day by the job)."""
    try:
        return training_rows(job_report(run_short_job("doctor", {}, timeout=DOCTOR_JOB_SECONDS)))
    except (DoctorError, RunError, OSError) as error:
        return [*training_rows(None)[:-1], html.Div(alert(str(error), "warning"), id=Home.DEVICE_MESSAGE)]


@callback(
    Output(Home.DATASETS_TABLE, "children"),
    Input(AddDataset.DONE, "data"),
    prevent_initial_call=True,
)
def refresh_datasets(_done):
    """The table again once the form registered, validated or removed a dataset."""
    return datasets_table(overview(current_workspace(), current_settings().max_annotation_bytes))
