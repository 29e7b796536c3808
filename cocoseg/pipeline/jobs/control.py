"""Job control over the registry: what state a job is really in, cancel, and supervision.

One home for what the Train page, the Prepare page, the job watcher and the CLI all
need (before this module each had its own copy of cancel and of force-kill):

- ``observe`` reads an entry into a typed ``RunStatus``, adding the one state that is
  never written to disk: ``stalled``, a job whose process lives but whose heartbeat is
  older than ``Settings.stall_seconds``. It is derived on every read, so it cannot go
  stale itself, and it turns back into ``running`` if the heartbeat resumes;
- ``cancel`` asks a job to stop (a request file the job polls); a queued job that no
  process took yet is cancelled at once;
- ``supervise`` ends what cannot end by itself: a job whose process died is marked
  ``interrupted`` (``registry.reconcile``), and a job that did not honour its cancel request
  within the grace period (``Settings.cancel_grace_seconds``; a stalled job, which cannot
  honour it, ``STALLED_GRACE_SECONDS``) is killed, only ever the exact process it recorded.
"""

from __future__ import annotations

import dataclasses
import time

from cocoseg.pipeline.core.settings import get_settings
from cocoseg.pipeline.jobs.registry import ACTIVE, RunFolder, job_process_alive, kill_job, reconcile

STALLED_GRACE_SECONDS = 5.0
RECENT_SECONDS = 15 * 60  # ended jobs stay on the live panels this long
LIVE_CARDS = 3


@dataclasses.dataclass(frozen=True)
class RunStatus:
    """A registry entry's state as a page or the CLI shows it.

    Attributes:
        state: queued, running, stalled, finished, failed, cancelled, interrupted or unknown.
        message: the job's last message (why it failed, was cancelled or interrupted).
        progress: the job's last progress event (kind-specific fields), or {}.
        heartbeat_age: seconds since the job's last sign of life (None before it has one).
        cancelling: a cancel was requested and the job is still active.
        pid: the job process's pid once it took the entry.
        raw: status.json as written, for kind-specific fields (export, device, target...).
    """

    state: str
    message: str = ""
    progress: dict = dataclasses.field(default_factory=dict)
    heartbeat_age: float | None = None
    cancelling: bool = False
    pid: int | None = None
    raw: dict = dataclasses.field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Queued, running or stalled: the job has not ended."""
        return self.state in (*ACTIVE, "stalled")

    @property
    def shown_message(self) -> str:
        """The line a card or table shows under the state."""
        return self.stalled_text if self.state == "stalled" else self.message

    @property
    def stalled_text(self) -> str:
        """What the cards say of a stalled job."""
        age = round(self.heartbeat_age or 0)
        return (
            f"stalled: no heartbeat for {age} s while its process (pid {self.pid}) is still there; "
            "it may be hung in native code or stopped. Cancel ends it."
        )


def observe(entry: RunFolder, now: float | None = None, stall_seconds: float | None = None) -> RunStatus:
    """The entry's ``RunStatus``, with ``stalled`` derived from its heartbeat."""
    status = entry.status()
    state = status.get("status", "unknown")
    pid = status.get("pid") if isinstance(status.get("pid"), int) else None
    last_alive = entry.last_alive(status) if pid is not None else 0.0
    age = (now or time.time()) - last_alive if last_alive else None
    limit = get_settings().stall_seconds if stall_seconds is None else stall_seconds
    if state == "running" and age is not None and age > limit and job_process_alive(status) is True:
        state = "stalled"
    cancelling = state in (*ACTIVE, "stalled") and entry.cancel_requested()
    return RunStatus(
        state, status.get("message", ""), status.get("progress") or {}, age, cancelling, pid, status
    )


def cancel(entry: RunFolder, by: str) -> str:
    """Ask ``entry``'s job to stop; returns one line for the user.

    A queued job no process has taken yet is cancelled at once; a running one stops
    after its current step (``supervise`` kills it if it does not).
    """
    reconcile(entry)
    status = observe(entry)
    if not status.active:
        return f"{entry.name} is {status.state}; nothing to cancel."
    entry.request_cancel(by)
    if status.state == "queued" and status.pid is None:
        entry.set_status("cancelled", message="cancelled before it started")
        return f"Cancelled {entry.name} before it started."
    if status.state == "stalled":
        return f"Cancelling {entry.name}: it is stalled, so its process is ended in a few seconds."
    if status.state == "queued":
        return f"Cancelling {entry.name}: it was waiting for a slot, so it ends at once."
    return f"Cancelling {entry.name}: it stops after the current step."


def supervise(entry: RunFolder, now: float | None = None) -> str | None:
    """Mark a dead job ``interrupted``; kill one that ignored its cancel request; returns what changed, if
    anything.
    """
    if entry.status().get("status") not in ACTIVE:
        return None
    changed = reconcile(entry)
    if changed:
        return changed
    requested = entry.cancel_request_time()
    if requested is None:
        return None
    status = observe(entry, now)
    grace = get_settings().cancel_grace_seconds
    if status.state == "stalled":
        grace = min(grace, STALLED_GRACE_SECONDS)
    reason = (
        "stalled, so its process was ended"
        if status.state == "stalled"
        else "the job did not stop by itself, so its process was ended"
    )
    if (now or time.time()) - requested > grace and kill_job(entry, reason):
        return "cancelled"
    return None


def recent(entries: list[RunFolder], now: float | None = None, limit: int = LIVE_CARDS) -> list[RunFolder]:
    """Active entries first, then those that ended in the last ``RECENT_SECONDS``, each newest first; at most
    ``limit``.

    Sorted by the creation stamp in the name (``PREFIX-YYYYMMDD-HHMMSS-XXXX``), not by folder time, which
    every status write changes.
    """
    now = now or time.time()
    entries = sorted(entries, key=lambda entry: "-".join(entry.name.rsplit("-", 3)[1:]), reverse=True)
    active = [entry for entry in entries if entry.status().get("status") in ACTIVE]
    ended = [
        entry
        for entry in entries
        if entry not in active and now - float(entry.status().get("heartbeat", 0) or 0) < RECENT_SECONDS
    ]
    return (active + ended)[:limit]
