"""The Evaluate page's layout: the leaderboard table and its rows, the evaluate and ensemble panels,
the per-class IoU and confusion graphs.

Pure builders (no callbacks); the rows are ``cocoseg.pipeline.inference.evaluate.leaderboard``'s.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dash_table, dcc, html

from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.ids import Evaluate
from cocoseg.pipeline.inference import STRATEGIES, result_key

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
METRICS = ("miou", "mean_dice", "pixel_accuracy", "frequency_weighted_iou")


def _percent(value) -> float | None:
    return None if value is None else round(value * 100, 2)


def evaluated_splits(rows: list[dict]) -> list[str]:
    """The ``dataset/split`` choices that leaderboard ``rows`` have results on."""
    return sorted({f"{row['dataset']}/{row['split']}" for row in rows})


def _note(row: dict) -> str:
    notes = []
    if row["stale"]:
        notes.append("stale: model file changed")
    if row["image_limit"]:
        notes.append(f"first {row['image_limit']} images only")
    if row["members"]:
        notes.append("members: " + ", ".join(row["members"]))
    return "; ".join(notes)


def table_rows(rows: list[dict]) -> list[dict]:
    """Leaderboard rows as the table shows them: metrics in %, a note, and the result's key as id."""
    return [
        {
            "id": result_key(row["model"], row["variant"], row["image_limit"]),
            **{key: row[key] for key in ("model", "kind", "variant", "images")},
            **{key: _percent(row[key]) for key in METRICS},
            "note": _note(row),
        }
        for row in rows
    ]


def pending_options(entries) -> list[dict]:
    return [{"label": f"{entry.name} ({entry.kind})", "value": entry.name} for entry in entries]


def selected_models(selected: list[int] | None, data: list[dict] | None) -> list[str]:
    """The models of the selected table rows, each once, in row order."""
    members = []
    for index in selected or []:
        if 0 <= index < len(data or []) and data[index]["model"] not in members:
            members.append(data[index]["model"])
    return members


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


def _actions() -> list:
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


def _graph(title: str, graph_id: str, icon: str) -> dbc.Col:
    """A heatmap as tall as its classes need, scrolling inside its panel past the window's height."""
    graph = dcc.Graph(id=graph_id, config={"displaylogo": False}, className="heatmap-graph")
    return dbc.Col(panel(title, html.Div(graph, className="heatmap-scroll"), icon=icon), lg=6)


def evaluate_page(has_models: bool, choices: list[str]) -> html.Div:
    """The page on ``choices`` (the first one shown); without models, how to get one."""
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
    if not has_models:
        guidance = empty_state(
            "No models to evaluate yet.",
            "Train a run (Train page or `cocoseg train PREPARED`), export it "
            "(`cocoseg export RUN`), or import one (`cocoseg models import FILE.onnx --card card.json`).",
            icon="box",
        )
        return html.Div(
            [header, panel("Leaderboard", guidance, icon="trophy")], className="page page-evaluate"
        )
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
                [dbc.Col(board, lg=8), dbc.Col(_actions(), lg=4, className="d-flex flex-column gap-3")],
                className="g-3",
            ),
            dbc.Row(
                [
                    _graph("Per-class IoU", Evaluate.IOU, "grid-3x3"),
                    _graph("Confusion matrix (click a row)", Evaluate.CONFUSION, "grid"),
                ],
                className="g-3 mt-1",
            ),
        ],
        className="page page-evaluate",
    )
