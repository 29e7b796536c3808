"""The training runs as a watcher sees them: every run, which are live, and whether anything shown changed.

A page polls this every second, so ``RunBoard.signature`` is cheap to compare: the page redraws its
cards and table only when it differs from the last one it drew. No TensorFlow.
"""

from __future__ import annotations

import dataclasses

from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.inference.model_store import list_entries
from cocoseg.pipeline.jobs.control import observe, recent, supervise
from cocoseg.pipeline.jobs.registry import RunFolder, list_runs


def registry_signature(folders: list[RunFolder], exported: set[str]) -> list:
    """What the run cards and table show depends on, as JSON (a page keeps it in a store).

    Every status write changes ``heartbeat`` (a float; ``updated`` has whole seconds, and a cancel landing
    in the same second as the last progress was missed). A stalled run's text counts its silent seconds.
    """
    signature = []
    for folder in folders:
        status = observe(folder)
        stalled_for = round(status.heartbeat_age or 0) if status.state == "stalled" else None
        signature.append(
            [
                folder.name,
                status.state,
                status.raw.get("heartbeat"),
                status.raw.get("export"),
                status.cancelling,
                folder.name in exported,
                stalled_for,
            ]
        )
    return signature


@dataclasses.dataclass(frozen=True)
class RunBoard:
    """Every training run, newest folder first, and the names that have an exported model."""

    folders: tuple[RunFolder, ...]
    exported: frozenset[str]
    signature: list

    def live(self) -> list[RunFolder]:
        """The runs worth a live card: active ones first, then those that ended lately."""
        return recent(list(self.folders))


def run_board(workspace: Workspace) -> RunBoard:
    """Read the registry, first ending what cannot end by itself (a dead job, an ignored cancel)."""
    folders = [RunFolder(summary.folder) for summary in list_runs(workspace)]
    for folder in folders:
        supervise(folder)
    exported = {entry.name for entry in list_entries(workspace)}
    return RunBoard(tuple(folders), frozenset(exported), registry_signature(folders, exported))
