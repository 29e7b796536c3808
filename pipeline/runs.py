"""Run folders under ``<workspace>/runs``: one folder per training run.

Only listing exists so far (the Home page shows runs); the training engine adds
config, status, heartbeat and checkpoints to each run folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pipeline.workspace import Workspace, read_json


@dataclasses.dataclass(frozen=True)
class RunSummary:
    name: str
    status: str
    folder: Path


def list_runs(workspace: Workspace) -> list[RunSummary]:
    """Runs that have a ``run.json``, newest folder first."""
    if not workspace.runs_dir.is_dir():
        return []
    runs = []
    for folder in sorted(workspace.runs_dir.iterdir(), key=lambda path: path.stat().st_mtime, reverse=True):
        record = read_json(folder / "run.json")
        if isinstance(record, dict):
            runs.append(RunSummary(folder.name, str(record.get("status", "unknown")), folder))
    return runs
