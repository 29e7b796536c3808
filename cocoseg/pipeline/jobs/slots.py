"""Job slots: at most N training and N preparation jobs at a time; later ones wait ``queued``, in order.

A shared GPU box (or a laptop) runs one training well and two badly, so every job process of
a capped kind (``JobKind.slot``: training for train, resume, fine-tune and the quick start;
preparation for prepare) takes a slot before its body starts, and holds it to its end:

- the slots are ``N`` file locks (``slot-training-0`` ...), so a killed job frees its slot
  with its process, and processes of one workspace share them (web server, Celery workers on
  other machines, ``cocoseg jobs run`` by hand);
- a job that finds no free slot records itself in its entry (``waiting`` = the group, its
  process identity, ``waiting_since``) and waits as ``queued``, its message saying its place
  ("2nd in line"), which the pages' cards and ``cocoseg jobs list`` show as they are;
- first come, first served: only the first in line tries the locks; a waiter whose process
  died drops out of the line (and ``reconcile`` marks its entry interrupted);
- a cancel while waiting ends the wait at once: nothing ran, the entry says ``cancelled``.

The number of slots is ``Settings.max_training_jobs`` / ``max_preparation_jobs``
(``COCOSEG_MAX_TRAINING_JOBS``, ``COCOSEG_MAX_PREPARATION_JOBS``; default 1 each).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from cocoseg.pipeline.core.settings import get_settings
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.jobs.registry import (
    ACTIVE,
    STALE_SECONDS,
    RunError,
    RunFolder,
    job_process_alive,
    process_identity,
)

POLL_SECONDS = 0.5
GROUPS = {
    "training": ("max_training_jobs", "COCOSEG_MAX_TRAINING_JOBS"),
    "preparation": ("max_preparation_jobs", "COCOSEG_MAX_PREPARATION_JOBS"),
}


def slot_count(group: str) -> int:
    """How many jobs of ``group`` may run at the same time."""
    return int(getattr(get_settings(), GROUPS[group][0]))


def ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _still_waiting(entry: RunFolder, group: str) -> dict | None:
    """The entry's status if it is a live waiter of ``group``, else None."""
    status = entry.status()
    if status.get("status") != "queued" or status.get("waiting") != group:
        return None
    alive = job_process_alive(status)
    if alive is None:  # its process runs on another host: trust its heartbeat
        alive = time.time() - entry.last_alive(status) < STALE_SECONDS
    return status if alive else None


def waiting_line(workspace: Workspace, group: str) -> list[RunFolder]:
    """The live waiters of ``group``, first come first."""
    waiting = []
    for parent in (workspace.runs_dir, workspace.jobs_dir):
        if not parent.is_dir():
            continue
        for folder in parent.iterdir():
            entry = RunFolder(folder)
            if (folder / "status.json").is_file() and (status := _still_waiting(entry, group)) is not None:
                waiting.append((float(status.get("waiting_since") or 0), folder.name, entry))
    return [entry for *_, entry in sorted(waiting, key=lambda item: item[:2])]


def _take_free_slot(stack: contextlib.ExitStack, workspace: Workspace, group: str) -> bool:
    import filelock

    for index in range(slot_count(group)):
        try:
            stack.enter_context(workspace.lock(f"slot-{group}-{index}", timeout=0))
            return True
        except filelock.Timeout:
            continue
    return False


def _waiting_message(group: str, place: int) -> str:
    count = slot_count(group)
    return (
        f"waiting for a free {group} slot: {ordinal(place)} in line "
        f"({count} {group} job{'s' if count > 1 else ''} at a time; {GROUPS[group][1]})"
    )


@contextlib.contextmanager
def job_slot(
    workspace: Workspace, group: str | None, entry: RunFolder, what: str, resuming: bool = False
) -> Iterator[bool]:
    """Hold a slot of ``group`` while the job runs (no group: no limit); waits ``queued`` for one.

    Yields True to go on, or False when a cancel came while the job waited (the entry then says
    ``cancelled``). ``resuming``: the entry has ended before (a resumed run), so it need not be queued.

    Raises:
        RunError: the entry is not queued (started already), or another process waits for it.
    """
    if group is None:
        yield True
        return
    import filelock

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(workspace.lock(f"wait-{entry.name}", timeout=0))
        except filelock.Timeout:
            raise RunError(f"{what} is waiting for a {group} slot in another process") from None
        status = entry.status().get("status")
        if resuming and status in ACTIVE:
            raise RunError(f"{what} is {status}; it was started already")
        if not resuming and status != "queued":
            raise RunError(f"{what} is {status}, not queued; it was started already")
        if resuming:
            entry.clear_cancel()  # the cancel that ended it before is not a cancel of this start
        entry.set_status("queued", waiting=group, waiting_since=time.time(), message="", **process_identity())
        shown = None
        while True:
            if entry.cancel_requested():
                entry.set_status("cancelled", message="cancelled while it waited for a slot", waiting=None)
                entry.append_event({"type": "cancelled", "message": "cancelled while it waited for a slot"})
                yield False
                return
            line = waiting_line(workspace, group)
            place = next((index for index, waiter in enumerate(line, 1) if waiter.name == entry.name), 1)
            if place == 1 and _take_free_slot(stack, workspace, group):
                break
            if place != shown:
                shown = place
                entry.set_status("queued", message=_waiting_message(group, place), queue_place=place)
            entry.beat()
            time.sleep(POLL_SECONDS)
        entry.set_status("queued", message="", waiting=None, queue_place=None)
        yield True
