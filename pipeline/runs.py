"""Run folders under ``<workspace>/runs``: the on-disk truth about every training job.

A run folder holds ``config.json`` (what was asked), ``status.json`` (queued, running,
finished, failed, cancelled or interrupted, with a heartbeat), ``events.jsonl`` (one
line per batch group and per epoch), ``history.csv`` (one row per epoch),
``checkpoints/last.keras`` and ``checkpoints/best.keras``, ``state.json`` (where to
resume) and ``logs/`` for TensorBoard. Status and state are written atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import logging
import secrets
import shutil
import time
from pathlib import Path

from pipeline.workspace import Workspace, atomic_write_json, check_name, read_json

logger = logging.getLogger(__name__)

STATUSES = ("queued", "running", "finished", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")
HISTORY_FIELDS = ("epoch", "loss", "val_loss", "val_miou", "learning_rate", "seconds", "images_per_second")


class RunError(ValueError):
    """A run request that cannot be carried out (unknown run, active run deleted...)."""


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


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

    def save_state(self, epoch: int, best_miou: float | None) -> None:
        atomic_write_json(self.folder / "state.json", {"epoch": epoch, "best_miou": best_miou})

    def append_event(self, event: dict) -> None:
        """One JSON line per event, flushed so watchers see it at once."""
        with open(self.folder / "events.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"time": time.time(), **event}, allow_nan=False) + "\n")
            handle.flush()

    def events(self) -> list[dict]:
        path = self.folder / "events.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def append_history(self, row: dict) -> None:
        path = self.folder / "history.csv"
        new = not path.is_file()
        with open(path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=HISTORY_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({field: row.get(field, "") for field in HISTORY_FIELDS})

    def history(self) -> list[dict]:
        path = self.folder / "history.csv"
        if not path.is_file():
            return []
        with open(path, newline="", encoding="utf-8") as handle:
            return [{key: (float(value) if value not in ("", None) else None) for key, value in row.items()} for row in csv.DictReader(handle)]


def create_run(workspace: Workspace, config: dict, prefix: str) -> RunFolder:
    """A new run folder with config.json and status ``queued``; the name is unique."""
    check_name(prefix, "run name prefix")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = workspace.runs_dir / f"{prefix}-{stamp}-{secrets.token_hex(2)}"
    folder.mkdir(parents=True)
    (folder / "checkpoints").mkdir()
    run = RunFolder(folder)
    atomic_write_json(folder / "config.json", config)
    run.set_status("queued", created=now_iso())
    return run


def get_run(workspace: Workspace, name: str) -> RunFolder:
    """An existing run by folder name."""
    check_name(name, "run")
    folder = workspace.runs_dir / name
    if not (folder / "config.json").is_file():
        known = ", ".join(run.name for run in list_runs(workspace)[:10]) or "none yet"
        raise RunError(f"no run called {name!r}; recent runs: {known}")
    return RunFolder(folder)


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


def summarise_run(run: RunFolder) -> RunSummary:
    config, status, state = run.config() or {}, run.status(), run.state()
    return RunSummary(
        run.name, status.get("status", "unknown"), run.folder, config.get("model", ""), state.get("epoch", 0),
        config.get("epochs", 0), state.get("best_miou"), status.get("device", ""), status.get("created", ""), status.get("message", ""),
    )


def list_runs(workspace: Workspace) -> list[RunSummary]:
    """Runs that have a config, newest folder first."""
    if not workspace.runs_dir.is_dir():
        return []
    folders = [folder for folder in workspace.runs_dir.iterdir() if (folder / "config.json").is_file()]
    folders.sort(key=lambda folder: folder.stat().st_mtime, reverse=True)
    return [summarise_run(RunFolder(folder)) for folder in folders]


def mark_stale_runs(workspace: Workspace, timeout_seconds: float = 120.0) -> list[str]:
    """Runs still marked active whose heartbeat stopped become ``interrupted`` (resumable)."""
    stale = []
    for summary in list_runs(workspace):
        run = RunFolder(summary.folder)
        status = run.status()
        if status.get("status") in ACTIVE and time.time() - float(status.get("heartbeat", 0)) > timeout_seconds:
            run.set_status("interrupted", message="the training process stopped without a word (killed or crashed); resume it to continue")
            stale.append(run.name)
    return stale


def delete_run(workspace: Workspace, name: str) -> None:
    """Delete a run folder; refused while the run is active."""
    run = get_run(workspace, name)
    if run.status().get("status") in ACTIVE and time.time() - float(run.status().get("heartbeat", 0)) < 120:
        raise RunError(f"run {name} is {run.status()['status']}; cancel it before deleting")
    shutil.rmtree(run.folder)
    logger.info("deleted run %s", name)
