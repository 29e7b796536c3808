"""Background jobs: each runs in a fresh interpreter, watched through the run registry.

``registry`` is the on-disk truth (run folders, heartbeat, process identity); ``control``
reads an entry's state (``RunStatus``, ``stalled`` included), cancels and supervises;
``runner`` queues, starts and watches a job from the web or a worker. ``execution`` is the
job process's side (``python -m cocoseg.pipeline.jobs KIND NAME``, this package's ``__main__``,
or ``cocoseg jobs run``); only those entry points import it, so this
facade does not.
"""

from cocoseg.pipeline.jobs.control import RunStatus, cancel, observe, recent, supervise
from cocoseg.pipeline.jobs.registry import (
    RunError,
    RunFolder,
    delete_confirmed_run,
    delete_run,
    find_entry,
    get_run,
    list_runs,
    reconcile_runs,
    request_delete,
    summarise_run,
)
from cocoseg.pipeline.jobs.runner import KINDS, TEST_KINDS, JobOutcome, JobRefused, queue, run_and_watch

__all__ = [
    "KINDS",
    "TEST_KINDS",
    "JobOutcome",
    "JobRefused",
    "RunError",
    "RunFolder",
    "RunStatus",
    "cancel",
    "delete_confirmed_run",
    "delete_run",
    "find_entry",
    "get_run",
    "list_runs",
    "observe",
    "queue",
    "recent",
    "reconcile_runs",
    "request_delete",
    "run_and_watch",
    "summarise_run",
    "supervise",
]
