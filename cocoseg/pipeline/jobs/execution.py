"""The job process's side: ``python -m cocoseg.pipeline.jobs KIND NAME`` (what the runner starts)
and ``cocoseg jobs run KIND NAME`` (by hand) take the entry and do the job.

Only those two entry points import this module, in the fresh interpreter, so the web
process never reaches a job body, and through it TensorFlow.
"""

from __future__ import annotations

import logging
import os
import signal
import time

from cocoseg.pipeline.core.settings import get_settings
from cocoseg.pipeline.core.workspace import Workspace, atomic_write_json, now_iso
from cocoseg.pipeline.jobs.registry import Heartbeat, RunFolder, process_identity, take_queued
from cocoseg.pipeline.jobs.runner import (
    PROGRESS_EVERY_SECONDS,
    RESULT_FILE,
    STOP_AT_PROGRESS_VARIABLE,
    JobKind,
    JobOutcome,
    entry_of,
    kind_of,
    lock_name,
)
from cocoseg.pipeline.jobs.slots import job_slot

logger = logging.getLogger(__name__)


class _Progress:
    """The progress callback every job body gets; it carries the test hooks (throttle, stop)."""

    def __init__(self) -> None:
        self.steps = 0
        self.throttle = get_settings().job_throttle_seconds
        stop_at = os.environ.get(STOP_AT_PROGRESS_VARIABLE, "").strip()
        self.stop_at = int(stop_at) if stop_at.isdigit() else None

    def __call__(self, event: dict) -> None:
        self.steps += 1
        if self.stop_at is not None and self.steps == self.stop_at:
            logger.warning(
                "%s=%d: stopping this job process (test hook)", STOP_AT_PROGRESS_VARIABLE, self.stop_at
            )
            os.kill(os.getpid(), signal.SIGSTOP)
        if self.throttle:
            time.sleep(self.throttle)


def run_job(workspace: Workspace, kind: str, name: str, export: bool = False) -> JobOutcome:
    """The body of ``jobs run KIND NAME``: do the job, recording everything in its entry.

    Raises:
        JobRefused / RunError: the job could not take its entry (unknown, started already).
    """
    job_kind = kind_of(kind)
    entry = entry_of(workspace, job_kind, name)
    what = f"{'run' if job_kind.in_runs else 'job'} {name}"
    with job_slot(workspace, job_kind.slot, entry, what, resuming=kind == "resume") as go_on:
        if not go_on:
            return JobOutcome(name, "cancelled", "cancelled while it waited for a slot")
        return _run_body(workspace, job_kind, entry, export)


def run_and_report(workspace: Workspace, kind: str, name: str, export: bool = False) -> int:
    """Run the job and print its outcome in one line; the exit code: 0 finished or cancelled, 1 failed."""
    outcome = run_job(workspace, kind, name, export=export)
    print(
        f"{kind} {name}: {outcome.status}" + (f" ({outcome.message})" if outcome.message else ""), flush=True
    )
    return 0 if outcome.status in ("finished", "cancelled") else 1


def _run_body(workspace: Workspace, job_kind: JobKind, entry: RunFolder, export: bool) -> JobOutcome:
    """The job itself, once it holds its slot."""
    kind, name = job_kind.name, entry.name
    max_bytes = get_settings().max_annotation_bytes
    progress = _Progress()
    if kind in ("train", "resume"):
        from cocoseg.pipeline.training.jobs import training_job

        result = training_job(
            workspace, name, max_bytes, export=export, resume=kind == "resume", on_progress=progress
        )
    elif kind == "prepare":
        from cocoseg.pipeline.prepare.jobs import run_prepare_job

        prepared = run_prepare_job(workspace, name, max_bytes, on_progress=progress)
        result = {"prepared": prepared.name if prepared else None}
    else:
        return _run_short(workspace, entry, job_kind, max_bytes, progress)
    status = entry.status()
    if status.get("status") == "finished":
        atomic_write_json(entry.folder / RESULT_FILE, result)
    return JobOutcome(name, status.get("status", "unknown"), status.get("message", ""), result)


def _run_short(
    workspace: Workspace, entry: RunFolder, kind: JobKind, max_bytes: int, progress: _Progress
) -> JobOutcome:
    """Take a short job's entry, run its body with a heartbeat, and record its result or failure."""
    from cocoseg.pipeline.jobs import bodies

    with take_queued(
        workspace, entry, lock_name(kind, entry.name), f"job {entry.name}", "running in another process"
    ) as go_on:
        if not go_on:
            return JobOutcome(entry.name, "cancelled", "cancelled before it started")
        entry.set_status("running", message="", started=now_iso(), **process_identity())
        last = [0.0]

        def report(event: dict) -> None:
            if entry.cancel_requested():
                raise bodies.JobCancelled(
                    f"cancelled after {event.get('done', 0)} of {event.get('total', '?')} steps"
                )
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_SECONDS or event.get("done") == event.get("total"):
                last[0] = now
                entry.heartbeat(progress=event)
            progress(event)

        try:
            with Heartbeat(entry):
                result = getattr(bodies, kind.name)(workspace, entry.config(), max_bytes, report)
        except bodies.JobCancelled as error:
            entry.set_status("cancelled", message=str(error))
            return JobOutcome(entry.name, "cancelled", str(error))
        except bodies.USER_ERRORS as error:
            entry.set_status("failed", message=str(error)[:600])
            return JobOutcome(entry.name, "failed", str(error))
        except BaseException as error:
            entry.set_status(
                "failed",
                message=f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}",
            )
            raise
        atomic_write_json(entry.folder / RESULT_FILE, result)
        entry.set_status("finished", message="")
        return JobOutcome(entry.name, "finished", "", result)
