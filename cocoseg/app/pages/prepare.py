"""Prepare: turn a registered dataset into sharded TFRecords, and watch the job live.

The form drives a dry run at once (what Start would write, and each class's images per
epoch before/after sampling: pure Python, no pixel decoded) and, on request, an
augmentation preview (TensorFlow, so a background job that returns eight small
thumbnails). Start validates and queues a registry entry (``cocoseg.pipeline.prepare``);
a background callback runs it. The Jobs panel polls the registry every second, so a
reload, a second tab or a server restart shows the same state; Cancel is a request in the
registry that the job checks after every image.

The augmentation preview (its images, request and drawing) lives in
``cocoseg.app.augmentation_preview``.
"""

from __future__ import annotations

import dataclasses

import dash
from dash import ALL, Input, Output, State, callback, ctx, html, no_update

from cocoseg.app import limits
from cocoseg.app.components.alerts import alert
from cocoseg.app.components.prepare_panels import (
    FIELDS,
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
    sets_table,
)
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import Prepare
from cocoseg.app.jobs import run_job_process
from cocoseg.pipeline import prepare
from cocoseg.pipeline.core import ConfigError
from cocoseg.pipeline.data import RegistryError, get_dataset, split_categories
from cocoseg.pipeline.jobs import RunError, cancel, recent, supervise
from cocoseg.pipeline.prepare import AUTO_LABELS

dash.register_page(__name__, path="/prepare", name="Prepare", order=20, icon="sliders")

FORM = list(FIELDS.ids.values())  # the settings form's ids, in config_from_form's order
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
        # The categories alone, found without parsing every annotation: a COCO-scale train file
        # would cost the server seconds and gigabytes on each visit.
        limit = current_settings().max_annotation_bytes
        categories = split_categories(current_workspace(), dataset, split, limit)
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
