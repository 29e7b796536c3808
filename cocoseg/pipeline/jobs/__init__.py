"""Background jobs: each runs in a fresh interpreter, watched through the run registry.

``runner`` starts, watches and runs jobs (``jobs run KIND NAME``); ``control`` reads an
entry's state (``RunStatus``, ``stalled`` included), cancels and supervises. The
registry itself (run folders, heartbeat, process identity) is ``cocoseg.pipeline.jobs.registry``.
"""

from cocoseg.pipeline.jobs.control import RunStatus, cancel, observe, recent, supervise
from cocoseg.pipeline.jobs.runner import KINDS, JobOutcome, JobRefused, queue, run_and_watch, run_job

__all__ = ["KINDS", "JobOutcome", "JobRefused", "RunStatus", "cancel", "observe", "queue", "recent", "run_and_watch", "run_job",
           "supervise"]
