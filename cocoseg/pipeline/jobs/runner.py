"""Every long job runs in a fresh interpreter: ``python -m cocoseg.pipeline.jobs KIND NAME``.

Why: TensorFlow, oneDNN/OpenMP and ONNX Runtime thread pools do not survive a fork. A
training forked from a web server that had already run other jobs hung after its first
batch, heartbeat thread and all (docs/design-notes.md, "Jobs in fresh processes"). So a
background callback (DiskCache child or Celery task) never runs a job body itself; it
calls ``run_and_watch``, which

1. starts the job runner as a new interpreter (``start``; its output goes to ``job.log``
   in the job's registry entry),
2. watches the entry while the process lives (``watch``): relays progress, and lets
   ``control.supervise`` kill a job that ignored its cancel request,
3. returns a ``JobOutcome`` read from the registry, which stays the truth.

The job process (``execution.run_job``, in the new interpreter) takes the entry, records its own
process identity, beats the heartbeat and records the outcome; training and preparation
do this themselves (``training.loop.train_queued``, ``prepare.jobs.run_prepare_job``), the
short kinds (export, evaluate, ensemble, preview, summary, doctor, ...) through
``execution._run_short``, which also writes what they return into ``result.json``. A watcher
given a ``timeout`` cancels a job that runs past it through the registry (``control.cancel``;
``supervise`` kills one that does not stop).

Test hooks, read from the environment of the job process: ``COCOSEG_JOB_THROTTLE_SECONDS``
(``Settings``) pauses after each progress step; ``COCOSEG_TEST_STOP_AT_PROGRESS=N`` makes
the job SIGSTOP itself at its N-th progress step (a hang that even the heartbeat thread
cannot escape); ``COCOSEG_TEST_JOBS=1`` enables the ``sleep`` (attached) and ``linger`` (detached) kinds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from cocoseg.pipeline.core.workspace import Workspace, check_name, read_json
from cocoseg.pipeline.jobs import control
from cocoseg.pipeline.jobs.registry import (
    ACTIVE,
    OWNER_VARIABLE,
    RunError,
    RunFolder,
    create_run,
    get_run,
    reconcile,
)

logger = logging.getLogger(__name__)

JOB_MODULE = "cocoseg.pipeline.jobs"  # its __main__ runs one job; ``cocoseg jobs run`` is the same by hand

LOG_FILE = "job.log"
RESULT_FILE = "result.json"
WATCH_SECONDS = 0.5
PROGRESS_EVERY_SECONDS = 0.5
STOP_AT_PROGRESS_VARIABLE = "COCOSEG_TEST_STOP_AT_PROGRESS"
TEST_JOBS_VARIABLE = "COCOSEG_TEST_JOBS"
EXIT_REFUSED = 3  # the job could not take its entry (unknown, already started): nothing was recorded

ProgressCallback = Callable[[dict], None]


@dataclasses.dataclass(frozen=True)
class JobKind:
    """What the runner knows of a kind of job.

    Attributes:
        name: the KIND of ``jobs run KIND NAME``.
        in_runs: its entry is a training run folder (``runs/``); else a job entry (``jobs/``).
        attached: it ends with its watcher (a preview nobody waits for any more is killed);
            detached jobs (training, preparation, export, evaluation) run on, and are
            cancelled through the registry only.
        slot: the group whose slots it needs (``slots.job_slot``: training, preparation), or None.
        short: its body is in ``bodies`` and runs through ``execution._run_short`` (a ``jobs/`` entry
            made by ``queue``); training and preparation record their own outcome.
        throwaway: its ended entries are deleted after an hour (``prune``): nobody looks back at them.
        test_only: run only with ``COCOSEG_TEST_JOBS=1``.
    """

    name: str
    in_runs: bool = False
    attached: bool = False
    slot: str | None = None
    short: bool = True
    throwaway: bool = False
    test_only: bool = False


KINDS = {
    kind.name: kind
    for kind in (
        JobKind("train", in_runs=True, slot="training", short=False),
        JobKind("resume", in_runs=True, slot="training", short=False),
        JobKind("prepare", slot="preparation", short=False),
        JobKind("export"),
        JobKind("evaluate"),
        JobKind("ensemble"),  # members fused into one graph (``inference.ensembles``)
        JobKind("rank"),  # a split ranked by uncertainty (``inference.ranking``)
        JobKind("finetune", slot="training"),  # a round of the correction loop (``training.correction_job``)
        JobKind("quickstart", slot="training"),  # the Home page's first model (``training.recipes``)
        JobKind("preview", attached=True, throwaway=True),
        JobKind("summary", attached=True, throwaway=True),
        JobKind("validate", throwaway=True),  # a registered split's validation report (the add-dataset form)
        JobKind("stats", throwaway=True),  # a split's first statistics for a label map (Explore)
        JobKind("doctor", attached=True, throwaway=True),  # Home's device check (``inference.devices``)
        JobKind("sleep", attached=True, throwaway=True, test_only=True),
        JobKind("linger", throwaway=True, test_only=True),  # an attached and a detached job for tests
        JobKind("hold", slot="training", throwaway=True, test_only=True),  # a detached job taking a slot
    )
}
TEST_KINDS = tuple(kind.name for kind in KINDS.values() if kind.test_only)
SHORT_KINDS = tuple(kind.name for kind in KINDS.values() if kind.short)  # wrapped by ``_run_short``
THROWAWAY_KINDS = tuple(kind.name for kind in KINDS.values() if kind.throwaway)


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    """How a job ended, as its watcher saw it.

    Attributes:
        name: the entry's name.
        status: the entry's final state (finished, failed, cancelled, interrupted), or
            ``refused`` when the job could not take its entry.
        message: the entry's message, or why the job was refused.
        result: what a short job returned (``result.json``), else {}.
        exit_code: the job process's exit code.
    """

    name: str
    status: str
    message: str = ""
    result: dict = dataclasses.field(default_factory=dict)
    exit_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "finished"


class JobRefused(RunError):
    """The job cannot start (unknown kind or entry); nothing was recorded."""


def kind_of(name: str) -> JobKind:
    if name not in KINDS or (name in TEST_KINDS and os.environ.get(TEST_JOBS_VARIABLE) != "1"):
        raise JobRefused(
            f"unknown job kind {name!r}; known: {', '.join(kind for kind in KINDS if kind not in TEST_KINDS)}"
        )
    return KINDS[name]


def entry_of(workspace: Workspace, kind: JobKind, name: str) -> RunFolder:
    """The registry entry a job works on."""
    if kind.in_runs:
        return get_run(workspace, name)
    check_name(name, "job")
    folder = workspace.jobs_dir / name
    if not (folder / "config.json").is_file():
        raise JobRefused(f"no job called {name!r}")
    return RunFolder(folder)


def queue(workspace: Workspace, kind: str, request: dict) -> RunFolder:
    """A new queued entry for a short job (``jobs/<kind>-<stamp>-<hex>``) holding its request."""
    if kind not in SHORT_KINDS:
        raise JobRefused(f"{kind} jobs have their own entries (a run folder, a preparation job)")
    workspace.jobs_dir.mkdir(parents=True, exist_ok=True)
    prune(workspace)
    return create_run(workspace, {"kind": kind, **request}, kind, parent=workspace.jobs_dir)


def command(kind: str, name: str, export: bool = False) -> list[str]:
    """The command line of a job process."""
    return [sys.executable, "-m", JOB_MODULE, kind, name] + (["--export"] if export else [])


# --- the side that starts and watches ------------------------------------------------------


def start(workspace: Workspace, kind: str, name: str, owner: str, export: bool = False) -> subprocess.Popen:
    """Start the job process (a new interpreter, never a fork of this one); its output goes to the entry's
    ``job.log``.
    """
    entry = entry_of(workspace, kind_of(kind), name)
    environment = {
        **os.environ,
        "COCOSEG_HOME": str(workspace.root),
        OWNER_VARIABLE: owner,
        "PYTHONUNBUFFERED": "1",
    }
    with open(entry.folder / LOG_FILE, "ab") as log:
        return subprocess.Popen(
            command(kind, name, export),
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            close_fds=True,
        )


def _log_tail(entry: RunFolder, lines: int = 3) -> str:
    try:
        text = (entry.folder / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    useful = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(useful[-lines:])[-400:]


def _refusal(entry: RunFolder) -> str:
    """The one line a refused job printed (``cocoseg: error: ...``)."""
    for line in reversed(_log_tail(entry, 10).split(" | ")):
        if line.startswith("cocoseg: error: "):
            return line.removeprefix("cocoseg: error: ")
    return "the job could not start"


def _unclaimed(workspace: Workspace, kind: JobKind, entry: RunFolder) -> bool:
    """Whether a still-queued entry is free: no process holds its lock (so a refused start may mark it
    failed).
    """
    import filelock

    if entry.status().get("status") != "queued" or entry.status().get("pid") is not None:
        return False
    try:
        with workspace.lock(lock_name(kind, entry.name), timeout=0):
            return True
    except filelock.Timeout:
        return False


def lock_name(kind: JobKind, name: str) -> str:
    """The lock its job holds while it runs (``registry.take_queued``)."""
    return f"run-{name}" if kind.in_runs else f"job-{name}"


def watch(
    workspace: Workspace,
    kind: JobKind,
    entry: RunFolder,
    process: subprocess.Popen,
    on_progress: ProgressCallback | None = None,
    poll_seconds: float = WATCH_SECONDS,
    timeout: float | None = None,
) -> JobOutcome:
    """Relay progress and supervise until the job process ends; then read the outcome from the registry.

    ``timeout``: seconds after which the job is cancelled through the registry (``control.cancel``; a job
    that does not stop is killed by ``supervise`` after the grace); it then ends ``cancelled`` with a
    message that says it ran past its limit.
    """
    last_progress = None
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    while True:
        exit_code = process.poll()
        status = entry.status()
        progress = status.get("progress")
        if on_progress and progress and progress != last_progress:
            last_progress = progress
            with contextlib.suppress(Exception):  # a progress relay that fails must not orphan the job
                on_progress(progress)
        if exit_code is not None:
            break
        if deadline is not None and not timed_out and time.monotonic() > deadline:
            timed_out = True
            control.cancel(entry, f"watcher ({timeout:g} s limit)")
        control.supervise(entry)
        time.sleep(poll_seconds)
    status = entry.status()
    if timed_out and status.get("status") == "cancelled":  # stopped, or cancelled before it took the entry
        message = f"took over {timeout:g} s, its time limit, and was stopped"
        entry.set_status("cancelled", message=message)
        return JobOutcome(entry.name, "cancelled", message, exit_code=exit_code)
    if (
        exit_code == EXIT_REFUSED
        and status.get("pid") != process.pid
        and not _unclaimed(workspace, kind, entry)
    ):
        return JobOutcome(
            entry.name, "refused", _refusal(entry), exit_code=exit_code
        )  # another process has it
    if status.get("status") in ACTIVE and status.get("pid") == process.pid:
        reconcile(entry)  # it took the entry, then died: interrupted (with a resume hint for a run)
    elif status.get("status") in ACTIVE and status.get("pid") is None:
        message = f"the job process (pid {process.pid}) exited with code {exit_code} before it started"
        tail = _log_tail(entry)
        entry.set_status("failed", message=message + (f": {tail}" if tail else ""))
        entry.append_event({"type": "failed", "message": message})
    status = entry.status()
    result = read_json(entry.folder / RESULT_FILE, default={}) if status.get("status") == "finished" else {}
    return JobOutcome(
        entry.name, status.get("status", "unknown"), status.get("message", ""), result or {}, exit_code
    )


def run_and_watch(
    workspace: Workspace,
    kind: str,
    name: str,
    owner: str,
    on_progress: ProgressCallback | None = None,
    export: bool = False,
    end_on_sigterm: bool = False,
    timeout: float | None = None,
) -> JobOutcome:
    """Start the job in a new interpreter and watch it to the end (cancelled past ``timeout`` seconds).

    ``end_on_sigterm``: when this watcher is terminated (Dash ends a background callback
    that was triggered again), an attached job (a preview) is ended with it; a detached
    one (a training) runs on and stays reachable through the registry.
    """
    entry = entry_of(workspace, kind_of(kind), name)
    process = start(workspace, kind, name, owner, export)
    previous = None
    if end_on_sigterm:
        previous = signal.signal(signal.SIGTERM, _raise_exit)
    try:
        return watch(workspace, KINDS[kind], entry, process, on_progress, timeout=timeout)
    finally:
        if process.poll() is None and KINDS[kind].attached:
            process.kill()
            process.wait(timeout=30)
            with contextlib.suppress(OSError, ValueError):
                entry.set_status("cancelled", message="ended with the request that started it")
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_exit(_signal, _frame):
    raise SystemExit(0)


# --- the side inside the job process -------------------------------------------------------


def prune(
    workspace: Workspace,
    kinds: tuple[str, ...] = THROWAWAY_KINDS,
    older_than: float = 3600.0,
) -> int:
    """Delete ended entries of throw-away kinds older than ``older_than`` seconds; returns how many."""
    import shutil

    removed = 0
    if not workspace.jobs_dir.is_dir():
        return 0
    for folder in workspace.jobs_dir.iterdir():
        if folder.name.split("-", 1)[0] not in kinds or not (folder / "status.json").is_file():
            continue
        entry = RunFolder(folder)
        if entry.status().get("status") not in ACTIVE and time.time() - entry.last_alive() > older_than:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
