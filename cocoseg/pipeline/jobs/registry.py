"""Run folders under ``<workspace>/runs``: the on-disk truth about every training job.

A run folder holds ``config.json`` (what was asked), ``status.json`` (queued, running,
finished, failed, cancelled or interrupted, with a heartbeat), ``events.jsonl`` (one
line per batch group and per epoch), ``history.csv`` (one row per epoch),
``checkpoints/last.keras`` and ``checkpoints/best.keras``, ``state.json`` (where to
resume) and ``logs/`` for TensorBoard. Status and state are written atomically.

The same folder shape records preparation jobs (``<workspace>/jobs/prepare-*``), so
every background job has one registry entry that any process can read:

- the job writes its process identity (host, pid, the pid's start time) into
  ``status.json`` when it starts, and a ``Heartbeat`` thread touches ``heartbeat``
  every two seconds while it lives;
- ``reconcile`` turns an active entry whose process is gone (same host: checked at
  once; another host: no heartbeat for ``STALE_SECONDS``) into ``interrupted``, so a
  killed or crashed job never shows an endless spinner;
- cancel is a request file (``cancel.json``) that the runner polls between batches;
  ``kill_job`` is the fallback, and kills only the process whose identity the job
  itself recorded (a recycled pid, or one a browser made up, is never touched).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import io
import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from pathlib import Path

from cocoseg.pipeline.core.workspace import Workspace, atomic_write_json, check_name, now_iso, read_json

logger = logging.getLogger(__name__)

STATUSES = ("queued", "running", "finished", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")
CANCEL_FILE = "cancel.json"
DELETE_REQUEST_FILE = "delete-request.json"
DELETE_CONFIRM_SECONDS = 300.0  # a confirmation dialog left open longer asks again
HEARTBEAT_FILE = "heartbeat"
HEARTBEAT_SECONDS = 2.0
OWNER_VARIABLE = (
    "COCOSEG_JOB_OWNER"  # set for the job process by whoever starts it (cocoseg.pipeline.jobs.runner.start)
)
STALE_SECONDS = 30.0  # a job on another host with no heartbeat for this long is gone
HISTORY_FIELDS = ("epoch", "loss", "val_loss", "val_miou", "learning_rate", "seconds", "images_per_second")


class RunError(ValueError):
    """A run request that cannot be carried out (unknown run, active run deleted...)."""


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """Paths and small read/write helpers of one run."""

    folder: Path

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def checkpoints(self) -> Path:
        return self.folder / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.keras"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.keras"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    def config(self) -> dict:
        return read_json(self.folder / "config.json")

    def status(self) -> dict:
        return read_json(self.folder / "status.json", default={"status": "unknown"})

    def state(self) -> dict:
        return read_json(self.folder / "state.json", default={"epoch": 0, "best_miou": None})

    def set_status(self, status: str, **fields) -> dict:
        """Write status.json atomically with a fresh heartbeat; other fields are kept."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        record = {**self.status(), **fields, "status": status, "heartbeat": time.time(), "updated": now_iso()}
        record.pop("unknown", None)
        atomic_write_json(self.folder / "status.json", record)
        return record

    def heartbeat(self, **fields) -> None:
        """Refresh the heartbeat (and progress fields) of a running run."""
        self.set_status(self.status().get("status", "running"), **fields)

    def beat(self) -> None:
        """Touch the heartbeat file (cheap; written by the ``Heartbeat`` thread)."""
        (self.folder / HEARTBEAT_FILE).write_text(str(time.time()), encoding="utf-8")

    def last_alive(self, status: dict | None = None) -> float:
        """The latest sign of life: status.json's heartbeat (``status``, when already read) or the heartbeat
        file's.
        """
        latest = float((self.status() if status is None else status).get("heartbeat", 0) or 0)
        try:
            latest = max(latest, (self.folder / HEARTBEAT_FILE).stat().st_mtime)
        except OSError:
            pass
        return latest

    def request_cancel(self, by: str = "user") -> None:
        """Ask the runner to stop after the current batch (it polls ``cancel_requested``)."""
        atomic_write_json(self.folder / CANCEL_FILE, {"requested": now_iso(), "time": time.time(), "by": by})
        self.append_event({"type": "cancel_requested", "by": by})

    def cancel_requested(self) -> bool:
        return (self.folder / CANCEL_FILE).is_file()

    def cancel_request_time(self) -> float | None:
        return read_json(self.folder / CANCEL_FILE, default={}).get("time")

    def clear_cancel(self) -> None:
        (self.folder / CANCEL_FILE).unlink(missing_ok=True)

    def save_state(self, epoch: int, best_miou: float | None) -> None:
        atomic_write_json(self.folder / "state.json", {"epoch": epoch, "best_miou": best_miou})

    def append_event(self, event: dict) -> None:
        """One JSON line per event, flushed so watchers see it at once."""
        line = json.dumps({"time": time.time(), **event}, allow_nan=False)
        _append_line(self.folder / "events.jsonl", line)

    def events(self) -> list[dict]:
        """The events so far. Lines a job killed mid-write (or a full disk) left unfinished are left
        out: the pages read this on every poll."""
        path = self.folder / "events.jsonl"
        if not path.is_file():
            return []
        events = []
        for line in _finished_lines(path.read_text(encoding="utf-8")):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    def append_history(self, row: dict) -> None:
        path = self.folder / "history.csv"
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=HISTORY_FIELDS, lineterminator="\n")
        if not path.is_file():
            writer.writeheader()
        writer.writerow({field: row.get(field, "") for field in HISTORY_FIELDS})
        _append_line(path, text.getvalue().rstrip("\n"))

    def history(self) -> list[dict]:
        """One dict per epoch; rows left unfinished (as ``events``) are left out."""
        path = self.folder / "history.csv"
        if not path.is_file():
            return []
        history = []
        for row in csv.DictReader(_finished_lines(path.read_text(encoding="utf-8"))):
            if None in row or None in row.values():  # fields missing or extra: two writes glued or cut
                continue
            try:
                history.append({key: float(value) if value != "" else None for key, value in row.items()})
            except ValueError:
                continue
        return history


def _append_line(path: Path, line: str) -> None:
    """Append ``line`` and its newline in one write, flushed; a line a killed writer left unfinished is
    ended first, so the two never run together."""
    unfinished = path.is_file() and path.stat().st_size > 0 and _last_byte(path) != b"\n"
    with open(path, "ab") as handle:
        handle.write((("\n" if unfinished else "") + line + "\n").encode("utf-8"))
        handle.flush()


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)


def _finished_lines(text: str) -> list[str]:
    """The lines of ``text`` that were written to their end (a last one without its newline was not)."""
    lines = text.split("\n")
    return [line.rstrip("\r") for line in lines[:-1] if line.strip()]  # "\r": rows csv wrote before


def create_run(workspace: Workspace, config: dict, prefix: str, parent: Path | None = None) -> RunFolder:
    """A new run folder (under ``parent``, default the runs folder) with config.json and status ``queued``."""
    check_name(prefix, "run name prefix")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (parent or workspace.runs_dir).mkdir(parents=True, exist_ok=True)
    while True:  # two runs in the same second may draw the same suffix: draw again, never reuse a folder
        folder = (parent or workspace.runs_dir) / f"{prefix}-{stamp}-{secrets.token_hex(2)}"
        try:
            folder.mkdir()
            break
        except FileExistsError:
            continue
    (folder / "checkpoints").mkdir()
    run = RunFolder(folder)
    atomic_write_json(folder / "config.json", config)
    run.set_status("queued", created=now_iso())
    return run


# --- the process behind a job -----------------------------------------------------------


def process_identity() -> dict:
    """Who is running this job: host, pid and the pid's start time (pids get reused)."""
    import psutil

    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_started": psutil.Process().create_time(),
        "owner": os.environ.get(OWNER_VARIABLE, "cli"),
    }


def job_process_alive(status: dict) -> bool | None:
    """Whether the process a status names is still that process; None when it cannot be told here."""
    import psutil

    pid, started = status.get("pid"), status.get("pid_started")
    if status.get("host") != socket.gethostname() or not isinstance(pid, int) or started is None:
        return None
    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - float(started)) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class Heartbeat:
    """A daemon thread that touches the run's heartbeat file while the job lives and progresses.

    Batches can be slow (a big model on a CPU, the first step's graph tracing); the
    thread keeps the job visibly alive between progress events, and dies with it. The
    heartbeat stops, and ``cocoseg.pipeline.jobs.control`` then calls the job ``stalled``, when:

    - the process is frozen (SIGSTOP, swapped out) or dead;
    - a native call holds the GIL, so this thread cannot run;
    - the job reported no progress (no status write) for ``progress_timeout`` seconds:
      a deadlock that leaves this thread free (native threads waiting on each other
      with the GIL released) must not look alive for ever.
    """

    def __init__(
        self, run: RunFolder, seconds: float = HEARTBEAT_SECONDS, progress_timeout: float | None = None
    ) -> None:
        if progress_timeout is None:
            from cocoseg.pipeline.core.settings import get_settings

            progress_timeout = get_settings().progress_timeout_seconds
        self.run, self.seconds, self.progress_timeout = run, seconds, progress_timeout
        self._entered = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run.name}", daemon=True)

    def _progressing(self) -> bool:
        last_progress = max(float(self.run.status().get("heartbeat", 0) or 0), self._entered)
        return time.time() - last_progress < self.progress_timeout

    def _loop(self) -> None:
        silent = False
        while not self._stop.wait(self.seconds):
            try:
                if self._progressing():
                    self.run.beat()
                    silent = False
                elif not silent:
                    silent = True
                    logger.warning(
                        "job %s reported no progress for %.0f s; its heartbeat stops",
                        self.run.name,
                        self.progress_timeout,
                    )
            except OSError as error:  # a full disk must not kill the job from this thread
                logger.warning("heartbeat of %s failed: %s", self.run.name, error)

    def __enter__(self) -> Heartbeat:
        self._entered = (
            time.time()
        )  # the start counts as progress: a job with no status write yet is not silent
        self.run.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def reconcile(run: RunFolder, stale_seconds: float = STALE_SECONDS) -> str | None:
    """Mark an active job whose process is gone ``interrupted``; returns the new status or None.

    A ``queued`` job that no process has picked up yet (no pid) is left alone: with
    Celery it may wait for a free worker.
    """
    status = run.status()
    if status.get("status") not in ACTIVE or status.get("pid") is None:
        return None
    alive = job_process_alive(status)
    if alive is None:
        alive = time.time() - run.last_alive() < stale_seconds
        reason = f"no heartbeat from {status.get('host', 'its host')} for over {stale_seconds:.0f} s"
    else:
        reason = (
            f"its process (pid {status['pid']}) ended without finishing: killed, crashed or out of memory"
        )
    if alive:
        return None
    resumable = run.last_checkpoint.is_file()
    hint = (
        "; resume it to continue from the last finished epoch"
        if resumable
        else "; nothing was saved yet, start it again"
    )
    run.set_status("interrupted", message=reason + (hint if run.folder.parent.name == "runs" else ""))
    run.append_event({"type": "interrupted", "message": reason})
    logger.warning("job %s interrupted: %s", run.name, reason)
    return "interrupted"


def kill_job(
    run: RunFolder, reason: str = "the job did not stop by itself, so its process was ended"
) -> bool:
    """Kill the job's process tree, only if the process is the one the job recorded; ``reason`` goes into its
    message.
    """
    import psutil

    status = run.status()
    if status.get("status") not in ACTIVE or job_process_alive(status) is not True:
        return False
    try:
        process = psutil.Process(status["pid"])
        children = process.children(recursive=True)
        for victim in [*children, process]:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()
        psutil.wait_procs([*children, process], timeout=10)
    except psutil.NoSuchProcess:
        pass
    run.set_status("cancelled", message=f"cancelled ({reason})")
    run.append_event({"type": "killed"})
    logger.warning("killed job %s (pid %s)", run.name, status["pid"])
    return True


@contextlib.contextmanager
def take_queued(workspace: Workspace, entry: RunFolder, lock_name: str, what: str, busy: str):
    """Hold ``entry``'s lock while its job runs; the one way a queued job starts.

    Yields True to go on, or False when a cancel came before the start (the entry then says
    ``cancelled``). ``what`` names the entry in messages ("run X"); ``busy`` says what another
    holder of the lock is doing ("being trained by another process").

    Raises:
        RunError: the entry is not queued (a double click, a second tab started it), or
            another process holds the lock.
    """
    import filelock

    try:
        with workspace.lock(lock_name, timeout=0):
            status = entry.status().get("status")
            if status != "queued":
                raise RunError(f"{what} is {status}, not queued; it was started already")
            if entry.cancel_requested():
                entry.set_status("cancelled", message="cancelled before it started")
                yield False
            else:
                yield True
    except filelock.Timeout:
        raise RunError(f"{what} is {busy}") from None


def get_run(workspace: Workspace, name: str) -> RunFolder:
    """An existing run by folder name."""
    check_name(name, "run")
    folder = workspace.runs_dir / name
    if not (folder / "config.json").is_file():
        known = ", ".join(run.name for run in list_runs(workspace)[:10]) or "none yet"
        raise RunError(f"no run called {name!r}; recent runs: {known}")
    return RunFolder(folder)


def find_entry(workspace: Workspace, name: str) -> RunFolder:
    """A training run or a job entry by name, wherever it lives (``runs/`` or ``jobs/``)."""
    check_name(name, "job")
    for parent in (workspace.runs_dir, workspace.jobs_dir):
        if (parent / name / "config.json").is_file():
            return RunFolder(parent / name)
    raise RunError(f"no job or run called {name!r}; see cocoseg jobs list")


@dataclasses.dataclass(frozen=True)
class RunSummary:
    name: str
    status: str
    folder: Path
    architecture: str = ""
    epochs_done: int = 0
    epochs: int = 0
    best_miou: float | None = None
    device: str = ""
    created: str = ""
    message: str = ""
    parent: str | None = None  # the run a fine-tuned run started from


def summarise_run(run: RunFolder) -> RunSummary:
    config, status, state = run.config() or {}, run.status(), run.state()
    return RunSummary(
        run.name,
        status.get("status", "unknown"),
        run.folder,
        config.get("model", ""),
        state.get("epoch", 0),
        config.get("epochs", 0),
        state.get("best_miou"),
        status.get("device", ""),
        status.get("created", ""),
        status.get("message", ""),
        (config.get("parent") or {}).get("run"),
    )


def list_runs(workspace: Workspace) -> list[RunSummary]:
    """Runs that have a config, newest folder first."""
    if not workspace.runs_dir.is_dir():
        return []
    folders = [folder for folder in workspace.runs_dir.iterdir() if (folder / "config.json").is_file()]
    folders.sort(key=lambda folder: folder.stat().st_mtime, reverse=True)
    return [summarise_run(RunFolder(folder)) for folder in folders]


def reconcile_runs(workspace: Workspace, stale_seconds: float = STALE_SECONDS) -> list[str]:
    """``reconcile`` every active training run and preparation job; the names that changed."""
    changed = []
    for parent in (workspace.runs_dir, workspace.jobs_dir):
        if not parent.is_dir():
            continue
        for folder in parent.iterdir():
            if (folder / "status.json").is_file() and reconcile(RunFolder(folder), stale_seconds):
                changed.append(folder.name)
    return changed


def delete_run(workspace: Workspace, name: str) -> None:
    """Delete a run folder; refused while the run is active."""
    run = get_run(workspace, name)
    reconcile(run)
    if run.status().get("status") == "running" or (
        run.status().get("status") == "queued" and run.status().get("pid")
    ):
        raise RunError(f"run {name} is {run.status()['status']}; cancel it before deleting")
    shutil.rmtree(run.folder)
    logger.info("deleted run %s", name)


def request_delete(workspace: Workspace, name: str) -> dict:
    """The first step of a delete from the web: a one-time token kept in the run folder.

    The page keeps ``{"run", "token"}`` while its dialog asks; ``delete_confirmed_run`` deletes only
    when the confirmation echoes both back, so one forged request (a cross-site form, a replayed
    callback) that names a run cannot delete it: it would need the token this step returned.
    """
    run = get_run(workspace, name)
    token = secrets.token_urlsafe(16)
    atomic_write_json(run.folder / DELETE_REQUEST_FILE, {"token": token, "time": time.time()})
    return {"run": name, "token": token}


def delete_confirmed_run(workspace: Workspace, request) -> str:
    """Delete the run a confirmed request names (see ``request_delete``); returns its name.

    Raises:
        RunError: the request does not echo the run's name and a live token of it, or the run is active.
    """
    refused = "Not deleted: the confirmation did not match a delete asked for in the last few minutes; " + (
        "press the run's Delete button and confirm again"
    )
    echoed = isinstance(request, dict) and all(isinstance(request.get(key), str) for key in ("run", "token"))
    if not echoed:
        raise RunError(refused)
    run = get_run(workspace, request["run"])
    asked = read_json(run.folder / DELETE_REQUEST_FILE, default={})
    token, when = asked.get("token"), asked.get("time")
    if (
        not isinstance(token, str)
        or not isinstance(when, (int, float))
        or not secrets.compare_digest(token.encode(), request["token"].encode())
        or not 0 <= time.time() - when <= DELETE_CONFIRM_SECONDS
    ):
        raise RunError(refused)
    (run.folder / DELETE_REQUEST_FILE).unlink(missing_ok=True)  # one use
    delete_run(workspace, run.name)
    return run.name
