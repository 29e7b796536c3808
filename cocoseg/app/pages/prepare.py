"""Prepare: turn a registered dataset into sharded TFRecords, and watch the job live.

The form drives a dry run at once (what Start would write, and each class's images per
epoch before/after sampling: pure Python, no pixel decoded) and, on request, an
augmentation preview (TensorFlow, so a background job that returns eight small
thumbnails). Start validates and queues a registry entry (``cocoseg.pipeline.prepare``);
a background callback runs it. The Jobs panel polls the registry every second, so a
reload, a second tab or a server restart shows the same state; Cancel is a request in the
registry that the job checks after every image.

Over the 250-line target: eleven callbacks (splits, fields, dry run, Start, the job's run and
result, the poll, Cancel, and the preview's images, request and drawing), each already one or
two calls into ``cocoseg.pipeline.prepare`` and the builders in ``components.prepare_panels``
and ``components.prepare_results``; squeezing them further would hide their wiring.
"""

from __future__ import annotations

import dataclasses
import secrets

import dash
from dash import ALL, Input, Output, State, callback, ctx, html, no_update

from cocoseg.app import limits
from cocoseg.app.components.alerts import alert
from cocoseg.app.components.prepare_panels import (
    FIELDS,
    PREVIEW_COUNT,
    default_splits,
    label_options,
    prepare_page,
)
from cocoseg.app.components.prepare_results import (
    distribution_figure,
    dry_run_note,
    job_card,
    job_result_alert,
    no_jobs,
    preview_pictures,
    sets_table,
)
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import Prepare
from cocoseg.app.jobs import run_job_process, run_short_job
from cocoseg.pipeline import prepare
from cocoseg.pipeline.core import ConfigError
from cocoseg.pipeline.data import RegistryError, cached_split, get_dataset
from cocoseg.pipeline.jobs import RunError, cancel, recent, supervise
from cocoseg.pipeline.prepare import AUTO_LABELS
from cocoseg.pipeline.training import augment_config

dash.register_page(__name__, path="/prepare", name="Prepare", order=20, icon="sliders")

FORM = list(FIELDS.ids.values())  # the settings form's ids, in config_from_form's order
PREVIEW_SETTINGS = {  # the preview request's keys: inputs redraw a shown preview, the others are read
    "image": Input(Prepare.PREVIEW_IMAGE, "value"),
    "labels": Input(Prepare.LABELS, "value"),
    "size": Input(Prepare.SIZE, "value"),
    "resize": Input(Prepare.RESIZE, "value"),
    "flip": Input(Prepare.FLIP, "value"),
    "scale": Input(Prepare.SCALE, "value"),
    "rotation": Input(Prepare.ROTATION, "value"),
    "brightness": Input(Prepare.BRIGHTNESS, "value"),
    "contrast": Input(Prepare.CONTRAST, "value"),
    "saturation": Input(Prepare.SATURATION, "value"),
    "dataset": State(Prepare.DATASET, "value"),
    "splits": State(Prepare.SPLITS, "value"),
    "classes": State(Prepare.CLASSES, "value"),
}
PREVIEW_CHOICES = 100  # images offered for the preview (a 118k-option menu helps nobody)
PREVIEW_HEIGHT = 144  # thumbnails are shrunk to this height, so the response stays small
LIVE_CARDS = 6


def layout(**_query) -> html.Div:
    return prepare_page(current_workspace())


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
    return splits, [split for split in chosen or [] if split in splits] or default_splits(splits)


@callback(
    Output(Prepare.LABELS, "options"),
    Output(Prepare.LABELS, "value"),
    Input(Prepare.DATASET, "value"),
    State(Prepare.LABELS, "value"),
)
def offer_label_maps(dataset, chosen):
    """Auto (the dataset's ``labels.default_preset``, named) and the presets that fit its categories."""
    try:
        entry = get_dataset(current_workspace(), dataset)
        split = next(iter(entry.splits))
        categories = cached_split(
            current_workspace(), dataset, split, current_settings().max_annotation_bytes
        ).categories
    except (RegistryError, ValueError, OSError):
        return no_update, chosen  # the value is always given back, so the dry run hanging on it runs
    options = label_options(categories)
    return options, chosen if chosen in {option["value"] for option in options} else AUTO_LABELS


@callback(
    Output(Prepare.THRESHOLD, "disabled"),
    Output(Prepare.CLASSES, "disabled"),
    Input(Prepare.SAMPLING, "value"),
    Input(Prepare.LABELS, "value"),
)
def enable_fields(sampling, labels):
    """The threshold only counts for repeat-factor sampling, class names only for the custom label map."""
    return sampling != "repeat-factor", labels != "custom"


@callback(
    Output(Prepare.DISTRIBUTION, "figure"),
    Output(Prepare.DISTRIBUTION_NOTE, "children"),
    [Input(component, "value") for component in FORM],
)
def show_distribution(*form):
    """The dry run for the current settings: what Start would write and the class balance it gives."""
    try:
        result = prepare.dry_run(
            current_workspace(), prepare.config_from_form(*form), current_settings().max_annotation_bytes
        )
    except (prepare.PrepareError, ValueError, OSError) as error:
        return distribution_figure(None), html.Span(f"No dry run: {error}", className="text-danger")
    return distribution_figure(result), dry_run_note(result)


@callback(
    FIELDS.outputs() + [Output(Prepare.FORM_MESSAGE, "children"), Output(Prepare.QUEUED, "data")],
    Input(Prepare.START, "n_clicks"),
    [State(component, "value") for component in FORM],
    prevent_initial_call=True,
    running=[(Output(Prepare.START, "disabled"), True, False)],
)
def start_preparation(_clicks, *form):
    """Validate against the dataset (the message goes beside the field at fault), then queue the job."""
    workspace = current_workspace()
    if refused := limits.refusal():
        return FIELDS.marks() + [alert(f"Not started: {refused}.", "warning"), no_update]
    try:
        config = prepare.config_from_form(*form)
        already = prepare.active_duplicate(workspace, config)
        if already:
            busy = f"{already} is already preparing these settings; watch it under Jobs"
            return FIELDS.marks() + [alert(f"{busy} (cancel it there to start again).", "info"), no_update]
        job = prepare.create_prepare_job(workspace, config, current_settings().max_annotation_bytes)
    except ConfigError as error:
        return FIELDS.marks_for(error) + [alert(f"Not started: {error}", "warning"), no_update]
    except RegistryError as error:
        return FIELDS.marks("dataset", str(error)) + [alert(f"Not started: {error}", "warning"), no_update]
    except (prepare.PrepareError, ValueError, OSError) as error:
        return FIELDS.marks() + [alert(f"Not started: {error}", "danger"), no_update]
    status = job.status()
    notice = f"Queued {job.name}: {status.get('images', 0)} images into {status.get('target', '')}."
    return FIELDS.marks() + [alert(notice, "info"), {"job": job.name}]


@callback(
    Output(Prepare.JOB_RESULT, "data"),
    Input(Prepare.QUEUED, "data"),
    background=True,
    prevent_initial_call=True,
)
def run_job(queued):
    """Start the job process for the queued entry; the registry records its progress and outcome."""
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
    try:
        status = prepare.get_prepare_job(current_workspace(), result["job"]).status().get("status")
    except (RunError, ValueError):
        status = None
    return job_result_alert(result, status)


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
    jobs = prepare.list_prepare_jobs(workspace)
    for job in jobs:
        supervise(job)
    views = [prepare.job_view(job) for job in recent(jobs, limit=LIVE_CARDS)]
    prepared_sets = prepare.list_prepared(workspace)
    current = {
        "jobs": [dataclasses.asdict(view) for view in views],
        "sets": [prepared.name for prepared in prepared_sets],
    }
    signature = signature or {}
    if current == signature:
        return no_update, no_update, no_update
    live = [job_card(view) for view in views] or no_jobs()
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
        job = prepare.get_prepare_job(current_workspace(), ctx.triggered_id["job"])
    except (RunError, ValueError) as error:
        return alert(str(error), "danger")
    message = cancel(job, "browser")
    return alert(
        message + (" Nothing is published." if message.startswith("Cancelling") else ""),
        "secondary" if "nothing to cancel" in message else "warning",
    )


@callback(
    Output(Prepare.PREVIEW_IMAGE, "options"),
    Output(Prepare.PREVIEW_IMAGE, "value"),
    Input(Prepare.DATASET, "value"),
    Input(Prepare.SPLITS, "value"),
    State(Prepare.PREVIEW_IMAGE, "value"),
)
def offer_preview_images(dataset, splits, chosen):
    """The first images of the training split (positions among its valid images, as the preview counts)."""
    split = prepare.training_split(splits)
    if not dataset or not split:
        return [], None
    try:
        loaded = cached_split(current_workspace(), dataset, split, current_settings().max_annotation_bytes)
    except (ValueError, OSError):
        return [], None
    images = loaded.images[:PREVIEW_CHOICES]
    options = [
        {"label": f"{split}/{image['file_name']}", "value": index} for index, image in enumerate(images)
    ]
    return options, chosen if isinstance(chosen, int) and chosen < len(options) else (0 if options else None)


@callback(
    Output(Prepare.PREVIEW_REQUEST, "data"),
    Output(Prepare.REROLL, "children"),
    Input(Prepare.REROLL, "n_clicks"),
    list(PREVIEW_SETTINGS.values()),
    State(Prepare.PREVIEW_REQUEST, "data"),
    prevent_initial_call=True,
)
def ask_preview(_clicks, *values):
    """The preview request: Re-roll draws a new seed; once a preview is shown, a changed setting redraws it.

    A redraw keeps the seed. Nothing is asked before the first press, so opening the page
    starts no TensorFlow job.
    """
    *settings, previous = values
    if ctx.triggered_id != Prepare.REROLL and not previous:
        return no_update, no_update
    seed = secrets.randbelow(2**31) if ctx.triggered_id == Prepare.REROLL else previous["seed"]
    request = {"seed": seed, **dict(zip(PREVIEW_SETTINGS, settings))}
    return request, [html.I(className="bi bi-dice-5 me-1"), "Re-roll"]


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
    """Eight augmentations of one image, by the function training uses (TensorFlow, in this job's process)."""
    if not request:
        return no_update, no_update
    split = prepare.training_split(request["splits"])
    form = [request[name] for name in ("dataset", "splits", "labels", "classes", "size", "resize")]
    try:
        config = prepare.config_from_form(*form, "none", None)
        job = {
            "prepare": prepare.config_to_dict(config),
            "split": split,
            "index": request["image"] or 0,
            "seed": request["seed"],
            "augment": dataclasses.asdict(augment_config(request)),
            "count": PREVIEW_COUNT,
            "height": PREVIEW_HEIGHT,
        }
        outcome = run_short_job("preview", job)
    except (prepare.PrepareError, ValueError, OSError) as error:
        return [], html.Span(f"No preview: {error}", className="text-danger")
    if not outcome.ok:
        return [], html.Span(f"No preview: {outcome.message or outcome.status}", className="text-danger")
    return preview_pictures(outcome.result["pictures"]), (
        f"{split}/{outcome.result['file_name']} at {config.size} px, seed {request['seed']}: each picture "
        "shows what the model sees, then its mask (black: outside the image, ignored by the loss)."
    )
