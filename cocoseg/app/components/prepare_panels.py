"""The Prepare page's layout: the settings form, the augmentation sliders, the preview panel, the grid.

Pure builders (no callbacks). ``FIELDS`` maps ``PrepareConfig`` field names to the form's
ids, so a ``ConfigError`` is shown beside the field it names; ``augment_config`` reads the
augmentation sliders back into the config the preview job uses.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from cocoseg.app.components.forms import FormFields
from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.components.prepare_results import no_jobs
from cocoseg.app.ids import Prepare
from cocoseg.pipeline.data import (
    PRESETS,
    RESIZE_MODES,
    default_preset,
    fitting_presets,
    get_dataset,
    list_datasets,
)
from cocoseg.pipeline.prepare import AUTO_LABELS
from cocoseg.pipeline.training import AugmentConfig

FIELDS = FormFields(
    {
        "dataset": Prepare.DATASET,
        "splits": Prepare.SPLITS,
        "labels": Prepare.LABELS,
        "classes": Prepare.CLASSES,
        "size": Prepare.SIZE,
        "resize": Prepare.RESIZE,
        "sampling": Prepare.SAMPLING,
        "threshold": Prepare.THRESHOLD,
    },
    inputs=("classes", "size", "threshold"),
)
LABEL_CHOICES = [{"label": "auto (coco80 for COCO, else all)", "value": AUTO_LABELS}] + [
    {"label": preset, "value": preset} for preset in PRESETS
]


def label_options(categories: list[dict]) -> list[dict]:
    """Auto, naming what it picks for these categories (``labels.default_preset``), then the presets
    that fit them (``labels.fitting_presets``, custom included)."""
    return [{"label": f"auto ({default_preset(categories)} for this dataset)", "value": AUTO_LABELS}] + [
        {"label": preset, "value": preset} for preset in fitting_presets(categories, with_custom=True)
    ]


PREVIEW_COUNT = 8
TRAINING_AUGMENTATION = AugmentConfig()  # the sliders start at what training applies


def default_splits(splits: list[str]) -> list[str]:
    """The splits chosen at first: train and val where the dataset has them, else its first split."""
    return [split for split in ("train", "val") if split in splits] or splits[:1]


def _label(text: str, target: str) -> dbc.Label:
    return dbc.Label(text, html_for=target, className="small mb-0 mt-2")


def _number(component_id: str, value: float, **extra) -> dbc.Input:
    return dbc.Input(id=component_id, type="number", value=value, size="sm", debounce=True, **extra)


def settings_form(workspace) -> list:
    """Dataset, splits, label map, size, resize and sampling, each with its message slot; Start."""
    datasets = [entry.name for entry in list_datasets(workspace)]
    if not datasets:
        return [
            empty_state(
                "No datasets registered.",
                "Add one with `cocoseg data add NAME --annotations FILE.json --images FOLDER`.",
                icon="database",
            )
        ]
    default = "demo" if "demo" in datasets else datasets[0]
    splits = list(get_dataset(workspace, default).splits)
    radio = {"inline": True, "className": "small"}
    size = [_label("Size (px)", Prepare.SIZE), _number(Prepare.SIZE, 256), FIELDS.feedback("size")]
    resize = [
        _label("Resize", Prepare.RESIZE),
        dbc.RadioItems(id=Prepare.RESIZE, options=list(RESIZE_MODES), value="stretch", **radio),
        FIELDS.feedback("resize"),
    ]
    sampling = [
        _label("Class-balanced sampling", Prepare.SAMPLING),
        dbc.RadioItems(id=Prepare.SAMPLING, options=["none", "repeat-factor"], value="none", **radio),
        FIELDS.feedback("sampling"),
    ]
    threshold = [
        _label("Threshold t", Prepare.THRESHOLD),
        _number(Prepare.THRESHOLD, 0.1, step="any"),
        FIELDS.feedback("threshold"),
    ]
    return [
        _label("Dataset", Prepare.DATASET),
        dcc.Dropdown(id=Prepare.DATASET, options=datasets, value=default, clearable=False),
        FIELDS.feedback("dataset"),
        _label("Splits", Prepare.SPLITS),
        dcc.Dropdown(id=Prepare.SPLITS, options=splits, value=default_splits(splits), multi=True),
        FIELDS.feedback("splits"),
        _label("Label map", Prepare.LABELS),
        dcc.Dropdown(id=Prepare.LABELS, options=LABEL_CHOICES, value=AUTO_LABELS, clearable=False),
        FIELDS.feedback("labels"),
        dbc.Input(
            id=Prepare.CLASSES,
            placeholder="custom: category names, comma-separated",
            size="sm",
            debounce=True,
            className="mt-1",
        ),
        FIELDS.feedback("classes"),
        dbc.Row([dbc.Col(size, width=4), dbc.Col(resize)], className="g-2"),
        dbc.Row([dbc.Col(sampling), dbc.Col(threshold, width=4)], className="g-2"),
        dbc.Button(
            [html.I(className="bi bi-play-fill me-1"), "Start preparing"],
            id=Prepare.START,
            color="primary",
            size="sm",
            className="mt-3",
        ),
        html.Div(id=Prepare.FORM_MESSAGE, className="small mt-2"),
    ]


def _slider(component_id: str, label: str, maximum: float, step: float, value: float) -> html.Div:
    return html.Div(
        [
            _label(label, component_id),
            dcc.Slider(
                id=component_id,
                min=0,
                max=maximum,
                step=step,
                value=value,
                marks=None,
                tooltip={"placement": "bottom"},
                updatemode="mouseup",
            ),
        ]
    )


def slider_values(strengths: AugmentConfig) -> list:
    """The augmentation form's values for ``strengths``: flip, scale range, rotation, brightness,
    contrast, saturation (the order of ``augmentation_preview.STRENGTHS``)."""
    return [
        strengths.flip,
        [strengths.scale_min, strengths.scale_max],
        strengths.rotation_degrees,
        strengths.brightness,
        strengths.contrast,
        strengths.saturation,
    ]


def augmentation_form() -> list:
    """The preview's augmentation strengths, starting at the ones training applies."""
    flip, scale, rotation, brightness, contrast, saturation = slider_values(TRAINING_AUGMENTATION)
    return [
        dbc.Switch(id=Prepare.FLIP, label="Horizontal flip (half of the draws)", value=flip),
        _label("Scale range", Prepare.SCALE),
        dcc.RangeSlider(
            id=Prepare.SCALE,
            min=0.25,
            max=2.5,
            step=0.05,
            value=scale,
            marks=None,
            tooltip={"placement": "bottom"},
            updatemode="mouseup",
        ),
        _slider(Prepare.ROTATION, "Rotation (± degrees)", 45, 1, rotation),
        _slider(Prepare.BRIGHTNESS, "Brightness (± fraction)", 0.5, 0.01, brightness),
        _slider(Prepare.CONTRAST, "Contrast (± fraction)", 0.9, 0.05, contrast),
        _slider(Prepare.SATURATION, "Saturation (± fraction)", 0.9, 0.05, saturation),
        html.Div(
            [
                dbc.Button(
                    [html.I(className="bi bi-box-arrow-in-right me-1"), "Use for training"],
                    id=Prepare.AUGMENT_USE,
                    color="primary",
                    outline=True,
                    size="sm",
                ),
                dbc.Button("Defaults", id=Prepare.AUGMENT_RESET, color="secondary", outline=True, size="sm"),
            ],
            className="d-flex flex-wrap gap-2 mt-3",
        ),
        html.Div(id=Prepare.AUGMENT_MESSAGE, className="small mt-1"),
        html.Div(
            "Use for training: the Train page's next runs apply these strengths (with its Augment switch "
            "on). Training draws them afresh at every read; a prepared set never stores augmented pixels.",
            className="small text-muted mt-2",
        ),
    ]


def preview_body() -> list:
    """The image chooser, the busy line and the grid the augmentations fill."""
    return [
        dcc.Dropdown(id=Prepare.PREVIEW_IMAGE, placeholder="image to augment", clearable=False),
        html.Div(
            [dbc.Spinner(size="sm"), "starting TensorFlow and drawing augmentations…"],
            id=Prepare.PREVIEW_BUSY,
            className="preview-busy d-none",
        ),
        html.Div(
            empty_state(
                "No preview yet.",
                "Press Preview: a background job starts TensorFlow (a few seconds) and draws "
                f"{PREVIEW_COUNT} random augmentations of the chosen image.",
                icon="images",
            ),
            id=Prepare.PREVIEW,
            className="preview-grid mt-2",
        ),
        html.Div(id=Prepare.PREVIEW_NOTE, className="small text-muted mt-1"),
    ]


def _row(left, right, class_name: str = "g-3 mt-1") -> dbc.Row:
    return dbc.Row([dbc.Col(left, lg=4), dbc.Col(right, lg=8)], className=class_name)


def prepare_page(workspace) -> html.Div:
    """The whole page: header, the stores its callbacks share, then three rows of panels.

    Settings beside the dry run's chart, Jobs beside the prepared sets, augmentation beside its preview.
    """
    header = html.Div(
        [
            html.H2("Prepare"),
            html.Span(
                "sharded TFRecords for training: settings, class balance, augmentations, jobs",
                className="text-muted small",
            ),
        ],
        className="page-header",
    )
    stores = [
        dcc.Store(id=Prepare.QUEUED),
        dcc.Store(id=Prepare.JOB_RESULT),
        dcc.Store(id=Prepare.SIGNATURE),
        dcc.Store(id=Prepare.PREVIEW_REQUEST),
        dcc.Interval(id=Prepare.POLL, interval=1000),
    ]
    reroll = dbc.Button(
        [html.I(className="bi bi-dice-5 me-1"), "Preview"],
        id=Prepare.REROLL,
        size="sm",
        color="outline-primary",
    )
    chart = dcc.Loading(
        dcc.Graph(id=Prepare.DISTRIBUTION, config={"displaylogo": False}, style={"height": "36vh"}),
        delay_show=300,
    )
    distribution = [chart, html.Div(id=Prepare.DISTRIBUTION_NOTE, className="small text-muted")]
    jobs = [html.Div(id=Prepare.JOB_MESSAGE, className="small mb-2"), html.Div(no_jobs(), id=Prepare.LIVE)]
    rows = [
        _row(
            panel("Settings", settings_form(workspace), icon="sliders"),
            panel("Class distribution (dry run)", distribution, icon="bar-chart"),
            "g-3",
        ),
        _row(
            panel("Jobs", jobs, icon="activity"),
            panel("Prepared sets", html.Div(id=Prepare.SETS), icon="database"),
        ),
        _row(
            panel("Augmentation", augmentation_form(), icon="shuffle"),
            panel("Augmentation preview", preview_body(), icon="images", actions=[reroll]),
        ),
    ]
    return html.Div([header, *stores, *rows], className="page page-prepare")
