"""Prepare: turn a registered dataset into sharded TFRecords, and watch the job live.

The form drives a dry run at once (what Start would write, and each class's images per
epoch before/after sampling: pure Python, no pixel decoded) and, on request, an
augmentation preview (TensorFlow, so a background job that returns eight small
thumbnails). Start validates here and queues a registry entry
(``cocoseg.pipeline.prepare.jobs``); a background callback runs it. The Jobs panel polls the
registry every second, so a reload, a second tab or a server restart shows the same
state; Cancel is a request in the registry that the job checks after every image.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from cocoseg.app.components.figures import LIGHT
from cocoseg.app.components.jobs import duration_text, message_line, progress_bar
from cocoseg.app.components.panels import ACTIVE_STATES, empty_state, panel, status_badge
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import Prepare
from cocoseg.app.jobs import run_job_process
from cocoseg.pipeline.core.errors import ConfigError
from cocoseg.pipeline.data.geometry import RESIZE_MODES
from cocoseg.pipeline.data.labels import PRESETS
from cocoseg.pipeline.data.registry import RegistryError, cached_split, get_dataset, list_datasets
from cocoseg.pipeline.jobs import cancel, observe, queue, recent, supervise
from cocoseg.pipeline.jobs.registry import RunError, RunFolder
from cocoseg.pipeline.prepare.config import PrepareConfig, config_to_dict
from cocoseg.pipeline.prepare.entries import create_prepare_job, get_prepare_job, list_prepare_jobs
from cocoseg.pipeline.prepare.plan import dry_run
from cocoseg.pipeline.prepare.sampling import SamplingConfig
from cocoseg.pipeline.prepare.sets import PrepareError, list_prepared
from cocoseg.pipeline.training.config import AugmentConfig

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/prepare", name="Prepare", order=20, icon="sliders")

AUTO_LABELS = "auto"  # the form's name for PrepareConfig(labels=None)
LABEL_CHOICES = [{"label": "auto (coco80 for COCO, else all)", "value": AUTO_LABELS}] + [
    {"label": preset, "value": preset} for preset in PRESETS
]
FIELDS = {
    "dataset": Prepare.DATASET,
    "splits": Prepare.SPLITS,
    "labels": Prepare.LABELS,
    "classes": Prepare.CLASSES,
    "size": Prepare.SIZE,
    "resize": Prepare.RESIZE,
    "sampling": Prepare.SAMPLING,
    "threshold": Prepare.THRESHOLD,
}
INPUT_FIELDS = ("classes", "size", "threshold")  # the dbc.Input fields, which take ``invalid``
PREVIEW_COUNT = 8
PREVIEW_CHOICES = 100  # images offered for the preview (a 118k-option menu helps nobody)
PREVIEW_HEIGHT = 144  # thumbnails are shrunk to this height, so the response stays small
LIVE_CARDS = 6
TRAINING_AUGMENTATION = AugmentConfig()


def _alert(text, colour: str) -> dbc.Alert:
    return dbc.Alert(text, color=colour, className="py-1 px-2 mb-0")


def _label(text: str, target: str) -> dbc.Label:
    return dbc.Label(text, html_for=target, className="small mb-0 mt-2")


def _feedback(field: str) -> dbc.FormFeedback:
    # d-block: also shown under dropdowns and radios, which have no ``invalid`` flag
    return dbc.FormFeedback(id=f"{FIELDS[field]}-feedback", type="invalid", className="d-block")


def preview_split(splits) -> str | None:
    """The split that previews and the chart use: a training split when one is chosen."""
    chosen = list(splits or [])
    return next((split for split in chosen if split.startswith("train")), chosen[0] if chosen else None)


def _settings_form(workspace) -> list:
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
    return [
        _label("Dataset", Prepare.DATASET),
        dcc.Dropdown(id=Prepare.DATASET, options=datasets, value=default, clearable=False),
        _feedback("dataset"),
        _label("Splits", Prepare.SPLITS),
        dcc.Dropdown(
            id=Prepare.SPLITS,
            options=splits,
            value=[split for split in ("train", "val") if split in splits] or splits[:1],
            multi=True,
        ),
        _feedback("splits"),
        _label("Label map", Prepare.LABELS),
        dcc.Dropdown(id=Prepare.LABELS, options=LABEL_CHOICES, value=AUTO_LABELS, clearable=False),
        _feedback("labels"),
        dbc.Input(
            id=Prepare.CLASSES,
            placeholder="custom: category names, comma-separated",
            size="sm",
            debounce=True,
            className="mt-1",
        ),
        _feedback("classes"),
        dbc.Row(
            [
                dbc.Col(
                    [
                        _label("Size (px)", Prepare.SIZE),
                        dbc.Input(id=Prepare.SIZE, type="number", value=256, size="sm", debounce=True),
                        _feedback("size"),
                    ],
                    width=4,
                ),
                dbc.Col(
                    [
                        _label("Resize", Prepare.RESIZE),
                        dbc.RadioItems(
                            id=Prepare.RESIZE, options=list(RESIZE_MODES), value="stretch", **radio
                        ),
                        _feedback("resize"),
                    ]
                ),
            ],
            className="g-2",
        ),
        dbc.Row(
            [
                dbc.Col(
                    [
                        _label("Class-balanced sampling", Prepare.SAMPLING),
                        dbc.RadioItems(
                            id=Prepare.SAMPLING, options=["none", "repeat-factor"], value="none", **radio
                        ),
                        _feedback("sampling"),
                    ]
                ),
                dbc.Col(
                    [
                        _label("Threshold t", Prepare.THRESHOLD),
                        dbc.Input(
                            id=Prepare.THRESHOLD,
                            type="number",
                            value=0.1,
                            step="any",
                            size="sm",
                            debounce=True,
                        ),
                        _feedback("threshold"),
                    ],
                    width=4,
                ),
            ],
            className="g-2",
        ),
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


def _augmentation_form() -> list:
    defaults = TRAINING_AUGMENTATION
    return [
        dbc.Switch(id=Prepare.FLIP, label="Horizontal flip (half of the draws)", value=defaults.flip),
        _label("Scale range", Prepare.SCALE),
        dcc.RangeSlider(
            id=Prepare.SCALE,
            min=0.25,
            max=2.5,
            step=0.05,
            value=[defaults.scale_min, defaults.scale_max],
            marks=None,
            tooltip={"placement": "bottom"},
            updatemode="mouseup",
        ),
        _slider(Prepare.ROTATION, "Rotation (± degrees)", 45, 1, defaults.rotation_degrees),
        _slider(Prepare.BRIGHTNESS, "Brightness (± fraction)", 0.5, 0.01, defaults.brightness),
        _slider(Prepare.CONTRAST, "Contrast (± fraction)", 0.9, 0.05, defaults.contrast),
        _slider(Prepare.SATURATION, "Saturation (± fraction)", 0.9, 0.05, defaults.saturation),
        html.Div(
            "These settings drive the preview only. Training applies the strengths shown at first (the defaults) when its "
            "Augment switch is on, none when it is off; a prepared set never stores augmented pixels.",
            className="small text-muted mt-2",
        ),
    ]


def _preview_body() -> list:
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


def layout(**_query) -> html.Div:
    workspace = current_workspace()
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
    jobs = [
        html.Div(id=Prepare.JOB_MESSAGE, className="small mb-2"),
        html.Div(
            empty_state("No preparation job yet.", "Start one with the form.", icon="activity"),
            id=Prepare.LIVE,
        ),
    ]
    return html.Div(
        [
            header,
            *stores,
            dbc.Row(
                [
                    dbc.Col(panel("Settings", _settings_form(workspace), icon="sliders"), lg=4),
                    dbc.Col(
                        panel(
                            "Class distribution (dry run)",
                            [chart, html.Div(id=Prepare.DISTRIBUTION_NOTE, className="small text-muted")],
                            icon="bar-chart",
                        ),
                        lg=8,
                    ),
                ],
                className="g-3",
            ),
            dbc.Row(
                [
                    dbc.Col(panel("Jobs", jobs, icon="activity"), lg=4),
                    dbc.Col(panel("Prepared sets", html.Div(id=Prepare.SETS), icon="database"), lg=8),
                ],
                className="g-3 mt-1",
            ),
            dbc.Row(
                [
                    dbc.Col(panel("Augmentation", _augmentation_form(), icon="shuffle"), lg=4),
                    dbc.Col(
                        panel("Augmentation preview", _preview_body(), icon="images", actions=[reroll]), lg=8
                    ),
                ],
                className="g-3 mt-1",
            ),
        ],
        className="page page-prepare",
    )


# --- settings ------------------------------------------------------------------------------


def config_from_form(dataset, splits, labels, classes, size, resize, sampling, threshold) -> PrepareConfig:
    """The validated config for the form's values.

    Raises:
        ConfigError: ``field`` names the form field at fault.
    """
    if not dataset:
        raise ConfigError("dataset", "choose a dataset")
    if not isinstance(size, (int, float)) or isinstance(size, bool) or float(size) != int(size):
        raise ConfigError("size", "enter a whole number of pixels, a multiple of 32 such as 256")
    method = sampling or "none"
    if method != "none" and not isinstance(threshold, (int, float)):
        raise ConfigError("threshold", "enter a number in (0, 1], such as 0.1")
    try:
        balance = SamplingConfig(method, float(threshold) if method != "none" else SamplingConfig().threshold)
    except ValueError as error:
        field, _, reason = str(error).partition(": ")
        raise ConfigError("sampling" if field == "sampling" else "threshold", reason or str(error)) from None
    names = (
        tuple(name.strip() for name in (classes or "").split(",") if name.strip())
        if labels == "custom"
        else ()
    )
    return PrepareConfig(
        dataset=dataset,
        splits=tuple(splits or ()),
        labels=None if labels in (None, AUTO_LABELS) else labels,
        classes=names,
        size=int(size),
        resize=resize or "stretch",
        sampling=balance,
    )


@callback(
    Output(Prepare.SPLITS, "options"),
    Output(Prepare.SPLITS, "value"),
    Input(Prepare.DATASET, "value"),
    State(Prepare.SPLITS, "value"),
)
def offer_splits(dataset, chosen):
    """The dataset's own splits, keeping the chosen ones it has."""
    try:
        splits = list(get_dataset(current_workspace(), dataset).splits)
    except (RegistryError, ValueError):
        splits = []
    kept = [split for split in chosen or [] if split in splits]
    return splits, kept or [split for split in ("train", "val") if split in splits] or splits[:1]


@callback(
    Output(Prepare.THRESHOLD, "disabled"),
    Output(Prepare.CLASSES, "disabled"),
    Input(Prepare.SAMPLING, "value"),
    Input(Prepare.LABELS, "value"),
)
def enable_fields(sampling, labels):
    """The threshold only counts for repeat-factor sampling, class names only for the custom label map."""
    return sampling != "repeat-factor", labels != "custom"


def distribution_figure(split: str | None, distribution: dict | None, names: list[str]) -> go.Figure:
    """Images per class per epoch, before and after sampling (classes absent from the split left out)."""
    figure = go.Figure()
    title = "no dry run"
    if distribution:
        before, after = distribution["before"], distribution["after"]
        order = sorted(
            (index for index in range(1, len(names)) if before["images"][index] > 0),
            key=lambda index: -before["images"][index],
        )
        classes = [names[index] for index in order]
        method = distribution["method"]
        figure.add_bar(
            x=classes,
            y=[before["images"][index] for index in order],
            name="before sampling",
            marker_color="#9aa5b1",
        )
        figure.add_bar(
            x=classes,
            y=[round(after["images"][index], 2) for index in order],
            marker_color="#3b5bdb",
            name="after sampling"
            if method == "none"
            else f"after {method} sampling (t={distribution['threshold']:g})",
        )
        title = f"{split}: images per class in one epoch"
    # classes are sorted by count, so the top right corner of the plot is free for the legend
    figure.update_layout(
        template=LIGHT,
        barmode="group",
        title={"text": title, "font": {"size": 13}, "x": 0.01, "xanchor": "left"},
        margin={"l": 40, "r": 10, "t": 36, "b": 80},
        xaxis={"tickangle": -45},
        yaxis={"title": "images"},
        legend={
            "x": 0.99,
            "y": 0.98,
            "xanchor": "right",
            "yanchor": "top",
            "bgcolor": "rgba(255,255,255,0.8)",
        },
    )
    return figure


def dry_run_note(result: dict) -> list:
    where = result["folder"].rsplit("/", 1)[-1]
    lines = [f"Start writes {where}" + (" (already prepared: Start reuses it)." if result["exists"] else ".")]
    for split, summary in result["splits"].items():
        filtered = (
            f", {summary['filtered_by_area']} below the labelled-area filter"
            if summary["filtered_by_area"]
            else ""
        )
        left_out = (
            f", {summary['left_out_by_validation']} left out by validation"
            if summary["left_out_by_validation"]
            else ""
        )
        sampling = summary["distribution"]
        epoch = (
            f"; {sampling['method']} sampling reads {sampling['after']['epoch_images']:.1f} per epoch"
            if sampling["method"] != "none"
            else ""
        )
        lines.append(f"{split}: {summary['images']} images{filtered}{left_out}{epoch}.")
    lines.append("Sampling changes how often training reads each image, never the written bytes.")
    return [html.Div(line) for line in lines]


@callback(
    Output(Prepare.DISTRIBUTION, "figure"),
    Output(Prepare.DISTRIBUTION_NOTE, "children"),
    Input(Prepare.DATASET, "value"),
    Input(Prepare.SPLITS, "value"),
    Input(Prepare.LABELS, "value"),
    Input(Prepare.CLASSES, "value"),
    Input(Prepare.SIZE, "value"),
    Input(Prepare.RESIZE, "value"),
    Input(Prepare.SAMPLING, "value"),
    Input(Prepare.THRESHOLD, "value"),
)
def show_distribution(dataset, splits, labels, classes, size, resize, sampling, threshold):
    """The dry run for the current settings: what Start would write and the class balance it gives."""
    try:
        config = config_from_form(dataset, splits, labels, classes, size, resize, sampling, threshold)
        result = dry_run(current_workspace(), config, current_settings().max_annotation_bytes)
    except (PrepareError, ValueError, OSError) as error:
        return distribution_figure(None, None, []), html.Span(f"No dry run: {error}", className="text-danger")
    split = preview_split(list(result["splits"]))
    names = [row["name"] for row in result["label_map"]["classes"]]
    return distribution_figure(split, result["splits"][split]["distribution"], names), dry_run_note(result)


# --- start ---------------------------------------------------------------------------------


def field_marks(field: str | None, reason: str = "") -> list:
    """``invalid`` flags of the input fields, then every field's feedback text."""
    return [field == name for name in INPUT_FIELDS] + [reason if field == name else "" for name in FIELDS]


def active_duplicate(workspace, config: PrepareConfig) -> str | None:
    """The active job already preparing exactly these settings (a double click, a second tab), if any."""
    wanted = {"kind": "prepare", **config_to_dict(config)}
    return next(
        (job.name for job in list_prepare_jobs(workspace) if observe(job).active and job.config() == wanted),
        None,
    )


@callback(
    [Output(FIELDS[name], "invalid") for name in INPUT_FIELDS]
    + [Output(f"{FIELDS[name]}-feedback", "children") for name in FIELDS]
    + [Output(Prepare.FORM_MESSAGE, "children"), Output(Prepare.QUEUED, "data")],
    Input(Prepare.START, "n_clicks"),
    State(Prepare.DATASET, "value"),
    State(Prepare.SPLITS, "value"),
    State(Prepare.LABELS, "value"),
    State(Prepare.CLASSES, "value"),
    State(Prepare.SIZE, "value"),
    State(Prepare.RESIZE, "value"),
    State(Prepare.SAMPLING, "value"),
    State(Prepare.THRESHOLD, "value"),
    prevent_initial_call=True,
    running=[(Output(Prepare.START, "disabled"), True, False)],
)
def start_preparation(_clicks, dataset, splits, labels, classes, size, resize, sampling, threshold):
    """Validate against the dataset (the message goes beside the field at fault), then queue the job."""
    workspace = current_workspace()
    try:
        config = config_from_form(dataset, splits, labels, classes, size, resize, sampling, threshold)
        already = active_duplicate(workspace, config)
        if already:
            return field_marks(None) + [
                _alert(
                    f"{already} is already preparing these settings; watch it under Jobs "
                    "(cancel it there to start again).",
                    "info",
                ),
                no_update,
            ]
        job = create_prepare_job(workspace, config, current_settings().max_annotation_bytes)
    except ConfigError as error:
        reason = str(error).partition(": ")[2] or str(error)
        return field_marks(error.field if error.field in FIELDS else None, reason) + [
            _alert(f"Not started: {error}", "warning"),
            no_update,
        ]
    except RegistryError as error:
        return field_marks("dataset", str(error)) + [_alert(f"Not started: {error}", "warning"), no_update]
    except (PrepareError, ValueError, OSError) as error:
        return field_marks(None) + [_alert(f"Not started: {error}", "danger"), no_update]
    status = job.status()
    notice = _alert(
        f"Queued {job.name}: {status.get('images', 0)} images into {status.get('target', '')}.", "info"
    )
    return field_marks(None) + [notice, {"job": job.name}]


@callback(
    Output(Prepare.JOB_RESULT, "data"),
    Input(Prepare.QUEUED, "data"),
    background=True,
    prevent_initial_call=True,
)
def run_job(queued):
    """Start the job process that prepares what the queued entry asks for; the registry records progress and outcome."""
    if not queued or not queued.get("job"):
        return no_update
    name = queued["job"]
    try:
        outcome = run_job_process("prepare", name)
    except (RunError, OSError) as error:
        return {"job": name, "error": str(error)}
    if outcome.status in ("refused", "failed"):
        return {"job": name, "error": outcome.message or outcome.status}
    return {"job": name, "prepared": outcome.result.get("prepared") if outcome.ok else None}


@callback(
    Output(Prepare.JOB_MESSAGE, "children"), Input(Prepare.JOB_RESULT, "data"), prevent_initial_call=True
)
def show_job_result(result):
    """One line when the job this tab started ends (the cards show every job, whoever started it)."""
    if not result:
        return no_update
    if result.get("prepared"):
        return _alert(
            [
                f"{result['job']} finished: {result['prepared']} is ready. ",
                dcc.Link("Train on it", href="/train"),
            ],
            "success",
        )
    try:
        status = get_prepare_job(current_workspace(), result["job"]).status().get("status")
    except (RunError, ValueError):
        status = None
    if status == "cancelled":
        return _alert(f"{result['job']} was cancelled; nothing was published.", "secondary")
    return _alert(
        f"{result['job']}: {result.get('error') or status}", "danger" if result.get("error") else "secondary"
    )


# --- jobs and prepared sets ------------------------------------------------------------------


def job_view(job: RunFolder) -> dict:
    """What a job card shows, as small JSON (compared between polls to redraw only on change)."""
    observed, config = observe(job), job.config() or {}
    status, progress = observed.raw, observed.progress
    settings = (
        f"{config.get('dataset', '?')} · {', '.join(config.get('splits', []))} · {config.get('labels') or 'auto'} · "
        f"{config.get('size', '?')} px"
    )
    return {
        "name": job.name,
        "status": observed.state,
        "cancelling": observed.cancelling,
        "settings": settings,
        "done": progress.get("done", 0),
        "total": progress.get("total") or status.get("images") or 0,
        "rate": progress.get("images_per_second"),
        "eta": progress.get("eta_seconds"),
        "target": status.get("prepared") or status.get("target", ""),
        "message": observed.shown_message,
    }


def job_card(view: dict) -> dbc.Card:
    status, done, total = view["status"], view["done"], view["total"]
    if status == "finished":
        fraction, label = 1.0, (f"{done}/{total} images" if done and done == total else "done")
    elif status == "queued":
        fraction, label = None, "waiting to start"
    else:
        fraction, label = (done / total if total else None), (f"{done}/{total} images" if total else status)
    stats = [
        f"{view['rate']:.1f} images/s" if view["rate"] else "",
        f"ETA {duration_text(view['eta'])}" if status == "running" and view["eta"] is not None else "",
        f"→ {view['target']}" if view["target"] else "",
    ]
    cancel = (
        dbc.Button(
            [html.I(className="bi bi-stop-fill me-1"), "Cancel"],
            id={"type": Prepare.CANCEL, "job": view["name"]},
            size="sm",
            color="outline-danger",
            disabled=view["cancelling"],
        )
        if status in ACTIVE_STATES
        else None
    )
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    [
                        html.Span(view["name"], className="fw-semibold me-2 job-name"),
                        status_badge(status, cancelling=view["cancelling"]),
                        html.Div(cancel, className="ms-auto"),
                    ],
                    className="d-flex align-items-center mb-1",
                ),
                html.Div(view["settings"], className="small text-muted"),
                progress_bar(fraction, label, status),
                html.Div(
                    " · ".join(part for part in stats if part), className="small text-muted mt-1 job-stats"
                ),
                message_line(status, view["message"]),
            ]
        ),
        className="prepare-job-card mb-2",
        id={"type": Prepare.CARD, "job": view["name"]},
    )


def manifest_facts(manifest: dict) -> tuple[list[str], list[str]]:
    """A set's table cells (label map, size, examples per split, created) and the details under its name."""
    config, label_map, splits = manifest["config"], manifest["label_map"], manifest["splits"]
    sampling = config["sampling"]
    quality = f" quality {config['quality']}" if config["encoding"] == "jpeg" else ""
    skipped = ", ".join(
        f"{split} {sum(summary['skipped'].values())}"
        for split, summary in splits.items()
        if summary["skipped"]
    )
    details = [
        f"{config['encoding']}{quality}; {config['shards']} shards per split",
        f"sampling: {sampling['method']}"
        + (f" (t={sampling['threshold']:g})" if sampling["method"] != "none" else ""),
        f"skipped: {skipped or 'none'}",
        f"written in {manifest['seconds']} s",
    ]
    cells = [
        f"{label_map['name']} ({len(label_map['classes'])} classes)",
        f"{config['size']} px {config['resize']}",
        " · ".join(f"{split} {summary['examples']}" for split, summary in splits.items()),
        manifest["created"].replace("T", " ").replace("+00:00", " UTC"),
    ]
    return cells, details


def _set_row(prepared) -> html.Tr:
    try:
        cells, details = manifest_facts(prepared.manifest)
    except (KeyError, TypeError, AttributeError):  # a manifest from another version, or edited by hand
        cells, details = ["?"] * 4, ["its manifest.json could not be read"]
    details.append(f"folder {prepared.folder}")
    summary = html.Details(
        [
            html.Summary(prepared.name, className="set-name"),
            html.Ul([html.Li(line) for line in details], className="small mb-0"),
        ]
    )
    return html.Tr([html.Td(summary)] + [html.Td(cell) for cell in cells])


def sets_table(prepared_sets: list):
    if not prepared_sets:
        return empty_state(
            "No prepared sets yet.",
            "Start one with the form (or `cocoseg prepare demo --labels voc21`).",
            icon="database",
        )
    header = html.Thead(
        html.Tr([html.Th(title) for title in ("Set", "Label map", "Size", "Examples", "Created")])
    )
    return dbc.Table(
        [header, html.Tbody([_set_row(prepared) for prepared in prepared_sets])],
        size="sm",
        hover=True,
        responsive=True,
        className="prepare-sets mb-0",
    )


@callback(
    Output(Prepare.LIVE, "children"),
    Output(Prepare.SETS, "children"),
    Output(Prepare.SIGNATURE, "data"),
    Input(Prepare.POLL, "n_intervals"),
    State(Prepare.SIGNATURE, "data"),
)
def refresh(_ticks, signature):
    """Re-read the job registry and the prepared sets; redraw only what changed since the last poll.

    The poll is its only trigger: an input downstream of the job's background callback would
    hold every poll back until the job ends.
    """
    workspace = current_workspace()
    jobs = list_prepare_jobs(workspace)
    for job in jobs:
        supervise(job)
    prepared_sets = list_prepared(workspace)
    current = {
        "jobs": [job_view(job) for job in recent(jobs, limit=LIVE_CARDS)],
        "sets": [prepared.name for prepared in prepared_sets],
    }
    signature = signature or {}
    if current == signature:
        return no_update, no_update, no_update
    live = [job_card(view) for view in current["jobs"]] or empty_state(
        "No preparation job yet.", "Start one with the form.", icon="activity"
    )
    sets = sets_table(prepared_sets) if current["sets"] != signature.get("sets") else no_update
    return live if current["jobs"] != signature.get("jobs") else no_update, sets, current


@callback(
    Output(Prepare.JOB_MESSAGE, "children", allow_duplicate=True),
    Input({"type": Prepare.CANCEL, "job": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def cancel_job(_clicks):
    """Ask the job to stop (it checks after every image); a queued job no process picked up stops at once."""
    if not ctx.triggered_id or not ctx.triggered[0].get("value"):
        return no_update
    try:
        job = get_prepare_job(current_workspace(), ctx.triggered_id["job"])
    except (RunError, ValueError) as error:
        return _alert(str(error), "danger")
    message = cancel(job, "browser")
    return _alert(
        message + (" Nothing is published." if message.startswith("Cancelling") else ""),
        "secondary" if "nothing to cancel" in message else "warning",
    )


# --- augmentation preview --------------------------------------------------------------------


@callback(
    Output(Prepare.PREVIEW_IMAGE, "options"),
    Output(Prepare.PREVIEW_IMAGE, "value"),
    Input(Prepare.DATASET, "value"),
    Input(Prepare.SPLITS, "value"),
    State(Prepare.PREVIEW_IMAGE, "value"),
)
def offer_preview_images(dataset, splits, chosen):
    """The first images of the training split (positions among its valid images, as the preview counts them)."""
    split = preview_split(splits)
    if not dataset or not split:
        return [], None
    try:
        images = cached_split(
            current_workspace(), dataset, split, current_settings().max_annotation_bytes
        ).images[:PREVIEW_CHOICES]
    except (ValueError, OSError):
        return [], None
    options = [
        {"label": f"{split}/{image['file_name']}", "value": index} for index, image in enumerate(images)
    ]
    return options, chosen if isinstance(chosen, int) and chosen < len(options) else (0 if options else None)


@callback(
    Output(Prepare.PREVIEW_REQUEST, "data"),
    Output(Prepare.REROLL, "children"),
    Input(Prepare.REROLL, "n_clicks"),
    Input(Prepare.PREVIEW_IMAGE, "value"),
    Input(Prepare.LABELS, "value"),
    Input(Prepare.SIZE, "value"),
    Input(Prepare.RESIZE, "value"),
    Input(Prepare.FLIP, "value"),
    Input(Prepare.SCALE, "value"),
    Input(Prepare.ROTATION, "value"),
    Input(Prepare.BRIGHTNESS, "value"),
    Input(Prepare.CONTRAST, "value"),
    Input(Prepare.SATURATION, "value"),
    State(Prepare.DATASET, "value"),
    State(Prepare.SPLITS, "value"),
    State(Prepare.CLASSES, "value"),
    State(Prepare.PREVIEW_REQUEST, "data"),
    prevent_initial_call=True,
)
def ask_preview(
    _clicks,
    image,
    labels,
    size,
    resize,
    flip,
    scale,
    rotation,
    brightness,
    contrast,
    saturation,
    dataset,
    splits,
    classes,
    previous,
):
    """The preview request: Re-roll draws a new seed; once a preview is shown, a changed setting redraws it with the same seed.

    Nothing is asked before the first press, so opening the page starts no TensorFlow job.
    """
    if ctx.triggered_id != Prepare.REROLL and not previous:
        return no_update, no_update
    seed = secrets.randbelow(2**31) if ctx.triggered_id == Prepare.REROLL else previous["seed"]
    request = {
        "seed": seed,
        "image": image,
        "dataset": dataset,
        "splits": splits,
        "labels": labels,
        "classes": classes,
        "size": size,
        "resize": resize,
        "flip": flip,
        "scale": scale,
        "rotation": rotation,
        "brightness": brightness,
        "contrast": contrast,
        "saturation": saturation,
    }
    return request, [html.I(className="bi bi-dice-5 me-1"), "Re-roll"]


def augment_config(request: dict) -> AugmentConfig:
    """The preview request's augmentation strengths (``ValueError`` names a bad one)."""
    low, high = request.get("scale") or (TRAINING_AUGMENTATION.scale_min, TRAINING_AUGMENTATION.scale_max)
    return AugmentConfig(
        flip=bool(request.get("flip")),
        scale_min=float(low),
        scale_max=float(high),
        rotation_degrees=float(request.get("rotation") or 0),
        brightness=float(request.get("brightness") or 0),
        contrast=float(request.get("contrast") or 0),
        saturation=float(request.get("saturation") or 0),
    )


@callback(
    Output(Prepare.PREVIEW, "children"),
    Output(Prepare.PREVIEW_NOTE, "children"),
    Input(Prepare.PREVIEW_REQUEST, "data"),
    background=True,
    prevent_initial_call=True,
    running=[
        (Output(Prepare.PREVIEW_BUSY, "className"), "preview-busy", "preview-busy d-none"),
        (Output(Prepare.REROLL, "disabled"), True, False),
    ],
)
def show_preview(request):
    """Eight augmentations of one image, made by the function training uses (TensorFlow, in this job's process)."""
    if not request:
        return no_update, no_update
    split = preview_split(request["splits"])
    try:
        config = config_from_form(
            request["dataset"],
            request["splits"],
            request["labels"],
            request["classes"],
            request["size"],
            request["resize"],
            "none",
            None,
        )
        job = {
            "prepare": config_to_dict(config),
            "split": split,
            "index": request["image"] or 0,
            "seed": request["seed"],
            "augment": dataclasses.asdict(augment_config(request)),
            "count": PREVIEW_COUNT,
            "height": PREVIEW_HEIGHT,
        }
        outcome = run_job_process("preview", queue(current_workspace(), "preview", job).name)
    except (PrepareError, ValueError, OSError) as error:
        return [], html.Span(f"No preview: {error}", className="text-danger")
    if not outcome.ok:
        return [], html.Span(f"No preview: {outcome.message or outcome.status}", className="text-danger")
    pictures, file_name = outcome.result["pictures"], outcome.result["file_name"]
    images = [
        html.Img(src=picture, className="preview-cell", alt=f"augmentation {number + 1}")
        for number, picture in enumerate(pictures)
    ]
    return images, (
        f"{split}/{file_name} at {config.size} px, seed {request['seed']}: each picture shows what the model sees, "
        "then its mask (black: outside the image, ignored by the loss)."
    )
