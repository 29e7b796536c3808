"""Evaluate: the leaderboard per dataset split with its protocol, per-class IoU, confusion matrix;
evaluate a model that has no result yet (background job), and ensemble selected rows.
"""

from __future__ import annotations

import logging

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dash_table, dcc, html, no_update

from cocoseg.app.components.figures import confusion_heatmap, iou_heatmap
from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import Evaluate
from cocoseg.app.jobs import run_job_process
from cocoseg.pipeline.core.workspace import BusyError
from cocoseg.pipeline.inference.evaluate import leaderboard, saved_evaluations
from cocoseg.pipeline.inference.model_store import ModelError, list_entries
from cocoseg.pipeline.inference.onnx_graph import STRATEGIES
from cocoseg.pipeline.jobs import queue
from cocoseg.pipeline.jobs.registry import RunError

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/evaluate", name="Evaluate", order=50, icon="clipboard-data")

COLUMNS = [
    ("model", "Model"),
    ("kind", "Kind"),
    ("variant", "Variant"),
    ("images", "Images"),
    ("miou", "mIoU %"),
    ("mean_dice", "Dice %"),
    ("pixel_accuracy", "Pixel acc. %"),
    ("frequency_weighted_iou", "fwIoU %"),
    ("note", "Note"),
]


def _percent(value) -> float | None:
    return None if value is None else round(value * 100, 2)


def split_choices(rows: list[dict]) -> list[str]:
    return sorted({f"{row['dataset']}/{row['split']}" for row in rows})


def table_rows(rows: list[dict]) -> list[dict]:
    shown = []
    for row in rows:
        notes = []
        if row["stale"]:
            notes.append("stale: model file changed")
        if row["image_limit"]:
            notes.append(f"first {row['image_limit']} images only")
        if row["members"]:
            notes.append("members: " + ", ".join(row["members"]))
        shown.append(
            {
                "id": row_id(row["model"], row["variant"], row["image_limit"]),
                "model": row["model"],
                "kind": row["kind"],
                "variant": row["variant"],
                "images": row["images"],
                "miou": _percent(row["miou"]),
                "mean_dice": _percent(row["mean_dice"]),
                "pixel_accuracy": _percent(row["pixel_accuracy"]),
                "frequency_weighted_iou": _percent(row["frequency_weighted_iou"]),
                "note": "; ".join(notes),
            }
        )
    return shown


def row_id(model: str, variant: str, image_limit) -> str:
    """A leaderboard row's key (model names cannot contain '|')."""
    return f"{model}|{variant}|{image_limit or ''}"


def saved_results(workspace, dataset: str, split: str) -> dict[str, dict]:
    """Every saved evaluation on one split, by row key (each model's files read once)."""
    results = {}
    for entry in list_entries(workspace):
        for result in saved_evaluations(entry):
            where = result["protocol"]
            if (where["dataset"], where["split"]) == (dataset, split):
                results[row_id(entry.name, result["variant"], where.get("image_limit"))] = result
    return results


def protocol_text(result: dict | None) -> str:
    if not result:
        return ""
    where = result["protocol"]
    return (
        f"Protocol: {where['dataset']}/{where['split']}, {where['images']} images at {where['resolution']}; label map "
        f"{where['label_map']} ({where['classes']} classes); {where['ignore']}. Model file {where['model_file']} "
        f"sha256 {where['model_sha256'][:12]}…, input {where['input_size']} px {where['resize']}."
    )


def _table() -> dash_table.DataTable:
    return dash_table.DataTable(
        id=Evaluate.TABLE,
        columns=[{"name": title, "id": key} for key, title in COLUMNS],
        data=[],
        row_selectable="multi",
        selected_rows=[],
        sort_action="native",
        page_size=12,
        style_as_list_view=True,
        cell_selectable=True,
        style_table={"overflowX": "auto"},
        style_cell={
            "fontSize": "0.85rem",
            "padding": "4px 8px",
            "textAlign": "left",
            "maxWidth": "320px",
            "overflow": "hidden",
            "textOverflow": "ellipsis",
        },
        style_header={"fontWeight": "600", "backgroundColor": "#f8f9fb"},
        style_data_conditional=[{"if": {"filter_query": "{note} contains 'stale'"}, "color": "#b54708"}],
    )


def _actions(entries: list) -> list:
    evaluate_panel = panel(
        "Evaluate a model",
        [
            dcc.Dropdown(
                id=Evaluate.PENDING_MODEL, options=[], placeholder="model or ensemble without a result here"
            ),
            dbc.Button(
                [html.I(className="bi bi-play-fill me-1"), "Evaluate"],
                id=Evaluate.RUN,
                size="sm",
                className="mt-2",
            ),
            dbc.Progress(
                id=Evaluate.PROGRESS, value=0, label="", className="mt-2", style={"height": "1.1rem"}
            ),
            html.Div(id=Evaluate.RUN_MESSAGE, className="small mt-1"),
        ],
        icon="play-circle",
    )
    ensemble_panel = panel(
        "Ensemble from selected rows",
        [
            dbc.Input(id=Evaluate.ENSEMBLE_NAME, placeholder="ensemble name", size="sm"),
            dbc.RadioItems(
                id=Evaluate.ENSEMBLE_STRATEGY,
                options=[{"label": name, "value": name} for name in STRATEGIES],
                value="mean",
                inline=True,
                className="mt-2",
            ),
            dbc.Button(
                [html.I(className="bi bi-diagram-3 me-1"), "Create ensemble"],
                id=Evaluate.ENSEMBLE_CREATE,
                size="sm",
                className="mt-2",
            ),
            html.Div(id=Evaluate.ENSEMBLE_MESSAGE, className="small mt-1"),
        ],
        icon="diagram-3",
    )
    return [evaluate_panel, ensemble_panel]


def layout(**_query) -> html.Div:
    workspace = current_workspace()
    entries = list_entries(workspace)
    header = html.Div(
        [
            html.H2("Evaluate"),
            html.Span(
                "leaderboard, per-class IoU and confusion, through the exported ONNX models",
                className="text-muted small",
            ),
        ],
        className="page-header",
    )
    if not entries:
        guidance = empty_state(
            "No models to evaluate yet.",
            "Train a run (Train page or `cocoseg train PREPARED`), export it "
            "(`cocoseg export RUN`), or import one (`cocoseg models import FILE.onnx --card card.json`).",
            icon="box",
        )
        return html.Div(
            [header, panel("Leaderboard", guidance, icon="trophy")], className="page page-evaluate"
        )
    choices = split_choices(leaderboard(workspace)) or [
        f"{entries[0].card.get('source', {}).get('dataset') or 'demo'}/val"
    ]
    selector = dcc.Dropdown(
        id=Evaluate.SPLIT, options=choices, value=choices[0], clearable=False, style={"minWidth": "12rem"}
    )
    board = panel(
        "Leaderboard",
        [_table(), html.Div(id=Evaluate.PROTOCOL, className="small text-muted mt-2")],
        icon="trophy",
        actions=[selector],
    )
    return html.Div(
        [
            header,
            dcc.Store(id=Evaluate.REFRESH, data=0),
            dbc.Row(
                [
                    dbc.Col(board, lg=8),
                    dbc.Col(_actions(entries), lg=4, className="d-flex flex-column gap-3"),
                ],
                className="g-3",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        panel(
                            "Per-class IoU",
                            dcc.Graph(
                                id=Evaluate.IOU, config={"displaylogo": False}, style={"height": "34vh"}
                            ),
                            icon="grid-3x3",
                        ),
                        lg=6,
                    ),
                    dbc.Col(
                        panel(
                            "Confusion matrix (click a row)",
                            dcc.Graph(
                                id=Evaluate.CONFUSION, config={"displaylogo": False}, style={"height": "34vh"}
                            ),
                            icon="grid",
                        ),
                        lg=6,
                    ),
                ],
                className="g-3 mt-1",
            ),
        ],
        className="page page-evaluate",
    )


@callback(
    Output(Evaluate.TABLE, "data"),
    Output(Evaluate.TABLE, "selected_rows"),
    Output(Evaluate.IOU, "figure"),
    Output(Evaluate.PENDING_MODEL, "options"),
    Output(Evaluate.SPLIT, "options"),
    Input(Evaluate.SPLIT, "value"),
    Input(Evaluate.REFRESH, "data"),
)
def show_split(choice, _refresh):
    """Leaderboard rows, the per-class IoU heatmap, and the models still to evaluate on this split."""
    workspace = current_workspace()
    everything = leaderboard(workspace)
    dataset, _, split = (choice or "demo/val").partition("/")
    rows = [row for row in everything if row["dataset"] == dataset and row["split"] == split]
    results = saved_results(workspace, dataset, split)
    labels, values, classes = [], [], []
    for row in rows:
        result = results.get(row_id(row["model"], row["variant"], row["image_limit"]))
        if result:
            classes = classes or result["classes"]
            if result["classes"] == classes:
                labels.append(f"{row['model']} ({row['variant']})")
                values.append(result["per_class_iou"])
    done = {row["model"] for row in rows if row["variant"] == "fp32" and not row["image_limit"]}
    pending = [
        {"label": f"{entry.name} ({entry.kind})", "value": entry.name}
        for entry in list_entries(workspace)
        if entry.name not in done
    ]
    choices = sorted(set(split_choices(everything)) | {choice or "demo/val"})
    return table_rows(rows), [], iou_heatmap(labels, classes, values, "per-class IoU (%)"), pending, choices


@callback(
    Output(Evaluate.CONFUSION, "figure"),
    Output(Evaluate.PROTOCOL, "children"),
    Input(Evaluate.TABLE, "active_cell"),
    Input(Evaluate.TABLE, "data"),
    State(Evaluate.SPLIT, "value"),
)
def show_confusion(active_cell, data, choice):
    if not data:
        return confusion_heatmap([], []), ""
    key = (active_cell or {}).get("row_id") or data[0]["id"]
    dataset, _, split = (choice or "demo/val").partition("/")
    result = saved_results(current_workspace(), dataset, split).get(key)
    if result is None:
        return confusion_heatmap([], []), ""
    title = f"{result['model']} ({result['variant']}), row-normalised"
    return confusion_heatmap(result["confusion_matrix"], result["classes"], title), protocol_text(result)


@callback(
    Output(Evaluate.RUN_MESSAGE, "children"),
    Output(Evaluate.REFRESH, "data"),
    Input(Evaluate.RUN, "n_clicks"),
    State(Evaluate.PENDING_MODEL, "value"),
    State(Evaluate.SPLIT, "value"),
    State(Evaluate.REFRESH, "data"),
    background=True,
    prevent_initial_call=True,
    running=[(Output(Evaluate.RUN, "disabled"), True, False)],
    progress=[Output(Evaluate.PROGRESS, "value"), Output(Evaluate.PROGRESS, "label")],
)
def run_evaluation(set_progress, _clicks, model, choice, refresh):
    """Evaluate one model on the chosen split in a background job, reporting images done."""
    if not model:
        return dbc.Alert(
            "Choose a model to evaluate.", color="warning", className="py-1 px-2 mb-0"
        ), no_update
    dataset, _, split = (choice or "demo/val").partition("/")

    def progress(event: dict) -> None:
        done, total = event.get("done", 0), event.get("total") or 1
        set_progress((round(100 * done / total), f"{done}/{total} images"))

    try:
        job = queue(current_workspace(), "evaluate", {"model": model, "dataset": dataset, "split": split})
        outcome = run_job_process("evaluate", job.name, progress)
    except (RunError, ValueError, OSError) as error:
        return dbc.Alert(str(error), color="danger", className="py-1 px-2 mb-0"), no_update
    if not outcome.ok:
        return dbc.Alert(
            outcome.message or f"evaluation {outcome.status}", color="danger", className="py-1 px-2 mb-0"
        ), no_update
    result = outcome.result
    return (
        dbc.Alert(
            f"{model}: mIoU {result['miou'] * 100:.2f} % on {dataset}/{split} ({result['images']} images)",
            color="success",
            className="py-1 px-2 mb-0",
        ),
        (refresh or 0) + 1,
    )


@callback(
    Output(Evaluate.ENSEMBLE_MESSAGE, "children"),
    Output(Evaluate.REFRESH, "data", allow_duplicate=True),
    Input(Evaluate.ENSEMBLE_CREATE, "n_clicks"),
    State(Evaluate.ENSEMBLE_NAME, "value"),
    State(Evaluate.ENSEMBLE_STRATEGY, "value"),
    State(Evaluate.TABLE, "selected_rows"),
    State(Evaluate.TABLE, "data"),
    State(Evaluate.REFRESH, "data"),
    prevent_initial_call=True,
)
def create_from_rows(_clicks, name, strategy, selected, data, refresh):
    """Fuse the selected rows' models into an ensemble (FP32 members), then list it."""
    from cocoseg.pipeline.inference.ensembles import EnsembleError, create_ensemble

    members = []
    for index in selected or []:
        if 0 <= index < len(data or []) and data[index]["model"] not in members:
            members.append(data[index]["model"])
    if not name:
        return dbc.Alert("Give the ensemble a name.", color="warning", className="py-1 px-2 mb-0"), no_update
    try:
        entry = create_ensemble(
            current_workspace(),
            name.strip(),
            members,
            strategy or "mean",
            current_settings().max_annotation_bytes,
        )
    except (EnsembleError, ModelError, BusyError, ValueError) as error:
        return dbc.Alert(str(error), color="danger", className="py-1 px-2 mb-0"), no_update
    return (
        dbc.Alert(
            f"ensemble {entry.name} created ({strategy} of {', '.join(members)}); evaluate it here.",
            color="success",
            className="py-1 px-2 mb-0",
        ),
        (refresh or 0) + 1,
    )
