"""The Train page's layout: the new-run form (its fields and the prepared-set choices), the live and
runs panels, and the stores its callbacks talk through. No callbacks here.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from cocoseg.app.components.forms import FormFields
from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.components.run_cards import live_cards
from cocoseg.app.ids import Train
from cocoseg.pipeline.core import ConfigError, Workspace
from cocoseg.pipeline.prepare import SAMPLING_METHODS, PrepareError, list_prepared
from cocoseg.pipeline.training import (
    AS_PREPARED,
    CATALOG,
    DEFAULT_ENCODER,
    ENCODERS,
    LOSS_NAMES,
    OPTIMIZERS,
    RANDOM_WEIGHTS,
    SCHEDULES,
    augment_strengths,
    describe_strengths,
    parent_choices,
)

FIELDS = FormFields(
    {
        "prepared": Train.PREPARED,
        "model": Train.MODEL,
        "model_options": Train.OPTIONS,
        "epochs": Train.EPOCHS,
        "batch_size": Train.BATCH_SIZE,
        "learning_rate": Train.LEARNING_RATE,
        "seed": Train.SEED,
        "threshold": Train.THRESHOLD,
        "init_from": Train.START_FROM,
        "freeze_encoder_epochs": Train.FREEZE,
        "encoder_weights": Train.ENCODER_WEIGHTS,
    },
    inputs=("epochs", "batch_size", "learning_rate", "seed", "threshold", "freeze_encoder_epochs"),
)

# The components holding ``training.config_from_form``'s arguments, in its order.
FORM_VALUES = {
    "prepared": Train.PREPARED,
    "model": Train.MODEL,
    "base_filters": Train.BASE_FILTERS,
    "depth": Train.DEPTH,
    "epochs": Train.EPOCHS,
    "batch_size": Train.BATCH_SIZE,
    "learning_rate": Train.LEARNING_RATE,
    "seed": Train.SEED,
    "optimizer": Train.OPTIMIZER,
    "schedule": Train.SCHEDULE,
    "loss": Train.LOSS,
    "sampling": Train.SAMPLING,
    "threshold": Train.THRESHOLD,
    "augment": Train.AUGMENT,
    "init_from": Train.START_FROM,
    "freeze_encoder_epochs": Train.FREEZE,
    "encoder": Train.ENCODER,
    "encoder_weights": Train.ENCODER_WEIGHTS,
    "precision": Train.PRECISION,
}

# What each precision means on the form (the job resolves auto on its device and records the outcome).
PRECISION_LABELS = (
    ("auto", "auto (fits the device)"),
    ("float32", "float32"),
    ("mixed_float16", "mixed float16 (GPU)"),
    ("mixed_bfloat16", "mixed bfloat16 (AMX / AVX-512 BF16 CPU, or GPU)"),
)


def number_field(component_id: str, value, step, label: str, placeholder: str | None = None) -> dbc.Col:
    """A number field; its range is checked by the config (one message, beside the field), not the browser."""
    field = next((name for name, identifier in FIELDS.ids.items() if identifier == component_id), None)
    return dbc.Col(
        [
            dbc.Label(label, html_for=component_id, className="small mb-0"),
            dbc.Input(
                id=component_id,
                type="number",
                value=value,
                step=step,
                size="sm",
                debounce=True,
                placeholder=placeholder,
            ),
            FIELDS.feedback(field) if field else None,
        ]
    )


def select_field(component_id: str, label: str, options, value, width: int | None = None) -> dbc.Col:
    """A drop-down; an option is its value, or a ``(value, label)`` pair; ``width`` of 12 columns."""
    pairs = [option if isinstance(option, tuple) else (option, option) for option in options]
    return dbc.Col(
        [
            dbc.Label(label, html_for=component_id, className="small mb-0"),
            dbc.Select(
                id=component_id,
                options=[{"label": label, "value": value} for value, label in pairs],
                value=value,
                size="sm",
            ),
        ],
        width=width,
    )


def prepared_options(workspace: Workspace) -> list[dict]:
    """One choice per finished prepared set, newest first: its size, classes and training images."""
    options = []
    for prepared in list_prepared(workspace):
        try:
            manifest = prepared.manifest
        except PrepareError:  # listed, so the user sees it, but not offered: nothing could train on it
            label = f"{prepared.name} · manifest unreadable, prepare it again"
            options.append({"label": label, "value": prepared.name, "disabled": True})
            continue
        train = manifest["splits"].get("train", {}).get("examples", 0)
        classes = len(manifest["label_map"]["classes"])
        options.append(
            {
                "label": f"{prepared.name} · {manifest['config']['size']} px · {classes} classes · "
                f"{train} train images",
                "value": prepared.name,
            }
        )
    return options


def summary_text(summary: dict) -> str:
    """A model summary (``training.cached_model_summary`` or its job's result) as the form shows it."""
    return f"{summary['parameters'] / 1e6:.2f} M parameters · {summary['gflops']:.2f} GFLOPs per image"


def _architecture_field() -> dbc.Col:
    return dbc.Col(
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
            FIELDS.feedback("model"),
        ],
        width=6,
    )


def encoder_fields() -> dbc.Row:
    """The pretrained family's backbone and how it starts (enabled only for that family)."""
    return dbc.Row(
        [
            select_field(
                Train.ENCODER,
                "Encoder",
                [(name, info.label) for name, info in ENCODERS.items()],
                DEFAULT_ENCODER,
            ),
            dbc.Col(
                [
                    dbc.Label("Encoder weights", html_for=Train.ENCODER_WEIGHTS, className="small mb-0"),
                    dbc.Select(
                        id=Train.ENCODER_WEIGHTS,
                        options=[
                            {"label": "ImageNet (pretrained)", "value": "imagenet"},
                            {"label": "random (from scratch)", "value": RANDOM_WEIGHTS},
                        ],
                        value="imagenet",
                        size="sm",
                    ),
                    FIELDS.feedback("encoder_weights"),
                ]
            ),
        ],
        className="g-2 mt-1",
    )


def start_from_fields(workspace: Workspace) -> dbc.Row:
    """Fine-tuning: the run to start from (its architecture then fills the form) and the frozen epochs."""
    return dbc.Row(
        [
            dbc.Col(
                [
                    dbc.Label("Start from", html_for=Train.START_FROM, className="small mb-0"),
                    dcc.Dropdown(
                        id=Train.START_FROM,
                        options=[
                            {"label": label, "value": name} for name, label in parent_choices(workspace)
                        ],
                        placeholder="new weights (train from scratch)",
                        clearable=True,
                    ),
                    FIELDS.feedback("init_from"),
                ],
                width=8,
            ),
            number_field(Train.FREEZE, 0, 1, "Freeze encoder (epochs)"),
        ],
        className="g-2 mt-1",
    )


def train_form(workspace: Workspace) -> list:
    """The new-run form, or how to prepare a set when there is none to train on."""
    choices = prepared_options(workspace)
    usable = [choice["value"] for choice in choices if not choice.get("disabled")]
    if not usable:
        return [
            empty_state(
                "No prepared set yet."
                if not choices
                else "No usable prepared set: each one's manifest is unreadable.",
                "Prepare one on the Prepare page or with `cocoseg prepare demo --labels voc21`.",
                icon="sliders",
            ),
            dcc.Link("Go to Prepare", href="/prepare"),
        ]
    return [
        dbc.Label("Prepared set", html_for=Train.PREPARED, className="small mb-0"),
        dcc.Dropdown(id=Train.PREPARED, options=choices, value=usable[0], clearable=False),
        FIELDS.feedback("prepared"),
        start_from_fields(workspace),
        dbc.Row(
            [
                _architecture_field(),
                number_field(Train.BASE_FILTERS, 32, 1, "Base filters"),
                number_field(Train.DEPTH, 4, 1, "Depth"),
            ],
            className="g-2 mt-1",
        ),
        encoder_fields(),
        html.Div(id=Train.OPTIONS, className="small text-muted"),
        FIELDS.feedback("model_options"),
        html.Div(
            [html.Span(id=Train.MODEL_INFO), html.Span(id=Train.MODEL_SUMMARY, className="ms-1")],
            className="small model-info",
        ),
        dbc.Row(
            [
                number_field(Train.EPOCHS, 20, 1, "Epochs"),
                number_field(Train.BATCH_SIZE, 8, 1, "Batch size"),
                number_field(Train.LEARNING_RATE, 0.001, "any", "Learning rate"),
                number_field(Train.SEED, 0, 1, "Seed"),
            ],
            className="g-2 mt-1",
        ),
        dbc.Row(  # two a line: four abreast cut the loss and precision names to a few letters
            [
                select_field(Train.OPTIMIZER, "Optimizer", OPTIMIZERS, "adam", width=6),
                select_field(Train.SCHEDULE, "Schedule", SCHEDULES, "cosine", width=6),
                select_field(Train.LOSS, "Loss", LOSS_NAMES, "cross_entropy", width=6),
                select_field(Train.PRECISION, "Precision", PRECISION_LABELS, "auto", width=6),
            ],
            className="g-2 mt-1",
        ),
        dbc.Row(
            [
                select_field(
                    Train.SAMPLING,
                    "Sampling",
                    ((AS_PREPARED, "as prepared"), *SAMPLING_METHODS),
                    AS_PREPARED,
                ),
                number_field(Train.THRESHOLD, None, "any", "Threshold", placeholder="as prepared"),
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
        html.Div(id=Train.AUGMENT_SUMMARY, className="small text-muted"),
        html.Div(
            [
                dbc.Button(
                    [html.I(className="bi bi-play-fill me-1"), "Start training"],
                    id=Train.START,
                    color="primary",
                    size="sm",
                    title="Start training (Ctrl+Enter)",
                ),
                html.Div(id=Train.FORM_MESSAGE, className="small mt-2"),
                html.Div(id=Train.JOB_HEARTBEAT, className="small text-muted mt-1"),
            ],
            className="panel-foot mt-2",
        ),
    ]


def train_page(workspace: Workspace) -> html.Div:
    """The whole page: header, the stores its callbacks share, the form beside the live and runs panels."""
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
        dcc.Store(id=Train.SUMMARY_REQUEST),
        dcc.Store(id=Train.EXPORT_REQUEST),
        dcc.Store(id=Train.EVALUATE_REQUEST),
        dcc.Store(id=Train.REFRESH_NOW),
        dcc.Store(id=Train.SIGNATURE),
        dcc.Store(id=Train.DELETE_PENDING),
        dcc.Interval(id=Train.POLL, interval=1000),
        dcc.ConfirmDialog(id=Train.DELETE_CONFIRM),
    ]
    form = panel("New run", train_form(workspace), icon="sliders2")
    live = panel(
        "Live",
        html.Div(id=Train.LIVE, children=live_cards([])),
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


def augmentation_summary(stored, augment: bool) -> list | html.Span:
    """What a run started now would apply: the strengths Prepare's "Use for training" stored (or the
    defaults), none with Augment off, or why the stored ones would be refused."""
    if not augment:
        return ["Augment off: every read is the prepared image as it is."]
    try:
        strengths = augment_strengths(stored or {})
    except ConfigError as error:
        return html.Span(
            [
                f"The strengths Prepare stored are refused ({error.message}): ",
                dcc.Link("set them", href="/prepare"),
            ],
            className="text-danger",
        )
    origin = "chosen on Prepare" if stored else "the defaults"
    return [
        f"Augmentation: {describe_strengths(strengths)} ({origin}; ",
        dcc.Link("tune them on Prepare", href="/prepare"),
        ")",
    ]
