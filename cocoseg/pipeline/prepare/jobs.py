"""Preparation as a background job with a registry entry (``<workspace>/jobs/prepare-*``).

``prepare.entries.create_prepare_job`` validates the settings and records the job
``queued`` (the web process does this, so errors appear beside the form before anything
starts); ``run_prepare_job`` is the job body, run in the job process: it takes the job's lock,
records its process, relays progress into the entry and stops when a cancel is requested. The entry uses
the same folder shape as training runs (``cocoseg.pipeline.jobs.registry``), so the pages, recovery and
cancel treat both alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from cocoseg.pipeline.core.workspace import Workspace, now_iso
from cocoseg.pipeline.jobs.registry import (
    Heartbeat,
    RunFolder,
    process_identity,
    take_queued,
)
from cocoseg.pipeline.prepare.config import config_from_dict
from cocoseg.pipeline.prepare.entries import get_prepare_job
from cocoseg.pipeline.prepare.sets import PrepareCancelled, PreparedSet, PrepareError
from cocoseg.pipeline.prepare.writer import prepare

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 0.5
ProgressCallback = Callable[[dict], None]


def run_prepare_job(
    workspace: Workspace,
    name: str,
    max_bytes: int,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PreparedSet | None:
    """The job body: prepare what the queued job asks for, recording everything in its entry.

    Returns the prepared set, or None when cancelled.

    Raises:
        RunError: unknown job, or it was started already (a double click, a second tab).
        PrepareError: the preparation failed (also recorded as ``failed`` with the reason).
    """
    job = get_prepare_job(workspace, name)
    asked = should_stop or (lambda: False)
    with take_queued(
        workspace, job, f"job-{name}", f"preparation job {name}", "running in another process"
    ) as go_on:
        if not go_on:
            return None
        return _run(workspace, job, max_bytes, on_progress, lambda: job.cancel_requested() or asked())


def _run(
    workspace: Workspace, job: RunFolder, max_bytes: int, on_progress: ProgressCallback | None, should_stop
) -> PreparedSet | None:
    config = config_from_dict(job.config())
    job.set_status("running", message="", started=now_iso(), **process_identity())
    started = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        """Every image goes to ``on_progress`` (the job process's test hooks count images); the registry
        hears of it every ``PROGRESS_EVERY_SECONDS``."""
        now = time.perf_counter()
        rate = done / max(now - started, 1e-9)
        event = {
            "type": "progress",
            "done": done,
            "total": total,
            "images_per_second": rate,
            "eta_seconds": (total - done) / rate if rate > 0 else None,
        }
        if now - last[0] >= PROGRESS_EVERY_SECONDS or done >= total:
            last[0] = now
            job.heartbeat(progress=event)
        if on_progress:
            on_progress(event)

    try:
        with Heartbeat(job):
            prepared = prepare(workspace, config, max_bytes, progress, should_stop)
    except PrepareCancelled as error:
        job.set_status("cancelled", message=str(error))
        job.append_event({"type": "cancelled"})
        return None
    except (PrepareError, ValueError, OSError) as error:
        message = (
            str(error)
            if isinstance(error, (PrepareError, ValueError))
            else f"{type(error).__name__}: {error}"
        )
        job.set_status("failed", message=message)
        job.append_event({"type": "failed", "message": message})
        raise
    except BaseException as error:
        job.set_status(
            "failed",
            message=f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}",
        )
        raise
    note = (
        "already prepared with these settings; reused"
        if prepared.reused
        else f"prepared in {time.perf_counter() - started:.1f} s"
    )
    job.set_status("finished", message=note, prepared=prepared.name)
    job.append_event({"type": "finished", "prepared": prepared.name})
    return prepared
