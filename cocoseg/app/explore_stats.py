"""Explore's first-statistics job: queue or join it, run it in a fresh process, show its progress.

A split whose statistics are not cached gets a ``stats`` job
(``cocoseg.pipeline.jobs.bodies.stats``) the first time it is shown; the page stores its name,
and this module's callbacks take over: the browser passes a queued job on to the runner
(``startQueuedJob``, so a page whose statistics were cached starts no background process), the
poll shows the job's progress with an ETA and, once it has finished, tells the page to draw the
view (``Explore.STATS_READY``); Cancel is a request in the registry. Registered by
``main.CALLBACK_MODULES``; the Explore page owns the layout.
"""

from __future__ import annotations

import time

import dash
from dash import ClientsideFunction, Input, Output, State, callback, no_update

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.explore_panels import stats_progress
from cocoseg.app.context import current_workspace
from cocoseg.app.ids import Explore
from cocoseg.app.jobs import cancel_stored_job, run_stored_job, stored_job
from cocoseg.pipeline.core.workspace import read_json
from cocoseg.pipeline.jobs import RunFolder, observe, queue, supervise


def stats_job(dataset: str, split: str, labels: str | None) -> str:
    """The active first-statistics job for this request (another tab may have queued it), or a new one."""
    workspace = current_workspace()
    request = {"dataset": dataset, "split": split, "labels": labels}
    if workspace.jobs_dir.is_dir():
        for folder in sorted(workspace.jobs_dir.glob("stats-*"), reverse=True):
            entry = RunFolder(folder)
            config = read_json(folder / "config.json", default={}) or {}
            if all(config.get(key) == value for key, value in request.items()) and observe(entry).active:
                return entry.name
    return queue(workspace, "stats", request).name


dash.clientside_callback(
    ClientsideFunction(namespace="cocoseg", function_name="startQueuedJob"),
    Output(Explore.STATS_START, "data"),
    Input(Explore.STATS_JOB, "data"),
)


@callback(
    Output(Explore.STATS_RUN, "data"),
    Input(Explore.STATS_START, "data"),
    background=True,
    prevent_initial_call=True,
)
def run_stats(job):
    """Run the queued first-statistics job in a fresh process (one already taken is watched by the poll)."""
    return run_stored_job("stats", job) or no_update


@callback(
    Output(Explore.STATS_PROGRESS, "children", allow_duplicate=True),
    Output(Explore.STATS_READY, "data"),
    Output(Explore.STATS_POLL, "disabled", allow_duplicate=True),
    Input(Explore.STATS_POLL, "n_intervals"),
    State(Explore.STATS_JOB, "data"),
    State(Explore.DATASET, "value"),
    prevent_initial_call=True,
)
def poll_stats(_ticks, job, choice):
    """The job's progress with an ETA; once it has finished, the view is drawn from the cache."""
    entry = stored_job(job)
    if entry is None:
        return None, no_update, True
    supervise(entry)
    status = observe(entry)
    if job.get("choice") != choice:
        return None, no_update, True  # the split changed; its own view took over
    if status.active:
        progress = status.progress
        eta = ""
        total, done = progress.get("total") or 0, progress.get("done") or 0
        elapsed = time.time() - float(job.get("started") or time.time())
        if progress.get("stage") == "annotations" and total and 0.02 < done / total < 1:
            from cocoseg.app.components.jobs import duration_text

            eta = f" · about {duration_text(elapsed * (total - done) / done)} left"
        return stats_progress(choice, job.get("labels"), status.state, progress, eta), no_update, False
    if status.state == "finished":
        result = read_json(entry.folder / "result.json", default={}) or {}
        return None, {"choice": choice, "labels": result.get("labels"), "job": entry.name}, True
    message = status.message or status.state
    tone = "secondary" if status.state == "cancelled" else "danger"
    return (
        alert(f"Statistics of {choice} {status.state}: {message}. Choose the split again to retry.", tone),
        no_update,
        True,
    )


@callback(
    Output(Explore.STATS_PROGRESS, "children", allow_duplicate=True),
    Input(Explore.STATS_CANCEL, "n_clicks"),
    State(Explore.STATS_JOB, "data"),
    prevent_initial_call=True,
)
def cancel_stats(clicks, job):
    """Ask the statistics job to stop (it checks at every progress step)."""
    return cancel_stored_job(clicks, job)
