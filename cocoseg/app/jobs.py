"""Background jobs: the callback manager (DiskCache or Celery) and ``run_job_process``.

Both managers count every job start against the caller's rate (``cocoseg.app.limits``).

Managers. DiskcacheManager (default) runs a background callback in a child process of
the web server, its cache in ``<workspace>/cache/jobs`` (0700, entries expire after a
day). With ``COCOSEG_BROKER_URL`` set (a Redis URL) it is CeleryManager instead: the
same callbacks run in ``cocoseg worker`` processes, on this machine or others that
share the workspace folder.

Either way the callback's process only starts and watches: every job body runs in a
new interpreter (``cocoseg.pipeline.jobs.runner``), because TensorFlow and thread pools do not
survive the fork that DiskCache makes, and a Celery pool process must not keep
TensorFlow state from one task to the next.

Neither manager ever kills a process on the browser's word. Dash asks the manager to
terminate a job when a background callback is triggered again (``oldJob``) or its
cancel input fires. The DiskCache manager then sends SIGTERM to the watcher alone, and
only if it is a process this manager started itself, checked by pid *and* start time
(a forged, replayed or recycled pid never reaches ``kill``); the watcher ends an
attached job (a preview) and leaves a detached one (training, preparation) running,
to be cancelled through the run registry. The Celery manager only revokes queued tasks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable

from cocoseg.app.limits import take_job_start
from cocoseg.pipeline.core import Workspace
from cocoseg.pipeline.core.broker import redacted
from cocoseg.pipeline.jobs import JobOutcome, queue, run_and_watch

logger = logging.getLogger(__name__)

JOB_EXPIRE_SECONDS = 24 * 3600
TERMINATE_WAIT_SECONDS = 5.0
_STARTED_PREFIX = "cocoseg-started-"


def _guarded_diskcache_manager(workspace: Workspace):
    import diskcache
    import psutil
    from dash import DiskcacheManager

    class GuardedDiskcacheManager(DiskcacheManager):
        """Records every process it starts; terminates only those, and only the process itself (see the module doc)."""

        def call_job_fn(self, key, job_fn, args, context):
            take_job_start()  # a client over its rate gets a 429 here, before any process starts
            pid = super().call_job_fn(key, job_fn, args, context)
            with contextlib.suppress(psutil.NoSuchProcess):
                self.handle.set(
                    f"{_STARTED_PREFIX}{pid}", psutil.Process(pid).create_time(), expire=JOB_EXPIRE_SECONDS
                )
            return pid

        def terminate_job(self, job):
            try:
                pid = int(job)
            except (TypeError, ValueError):
                return
            started = self.handle.get(f"{_STARTED_PREFIX}{pid}")
            try:
                same = started is not None and abs(psutil.Process(pid).create_time() - float(started)) < 1.0
            except psutil.NoSuchProcess:
                return
            if not same:
                logger.warning("refused to terminate pid %s: not a job this server started", pid)
                return
            # the watcher alone, never its children: it ends an attached job (a preview) and leaves a training running
            watcher = psutil.Process(pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                watcher.send_signal(signal.SIGTERM)
                try:
                    watcher.wait(timeout=TERMINATE_WAIT_SECONDS)
                except psutil.TimeoutExpired:
                    logger.warning(
                        "job watcher %s ignored SIGTERM for %.0f s; killing it", pid, TERMINATE_WAIT_SECONDS
                    )
                    watcher.kill()
                    watcher.wait(timeout=TERMINATE_WAIT_SECONDS)

    workspace.ensure()
    folder = workspace.cache_dir / "jobs"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return GuardedDiskcacheManager(diskcache.Cache(str(folder)), expire=JOB_EXPIRE_SECONDS)


def celery_settings(visibility_seconds: float) -> dict:
    """Celery's configuration for cocoseg's jobs (see the module doc of ``cocoseg.app.worker``).

    - JSON only, both ways: a pickle from a forged message would run code in the worker;
    - a task is acknowledged when it ends, not when a worker takes it, and a worker that dies
      under it (SIGKILL, out of memory) rejects it back to the queue: a killed worker's job is
      redelivered (its registry entry then says what became of the job), never silently lost.
      Redis hands an unacknowledged task to another worker after ``visibility_seconds``;
      a duplicate delivery is harmless because a job starts only from ``queued`` (the registry);
    - one task prefetched per pool process: a long training must not hold queued jobs hostage.
    """
    return {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {"visibility_timeout": visibility_seconds},
        "result_expires": JOB_EXPIRE_SECONDS,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }


def celery_app(broker_url: str, visibility_seconds: float | None = None):
    """The Celery application behind CeleryManager (Redis as broker and result store)."""
    from celery import Celery

    from cocoseg.pipeline.core import get_settings

    if visibility_seconds is None:
        visibility_seconds = get_settings().broker_visibility_seconds
    application = Celery("cocoseg", broker=broker_url, backend=broker_url)
    application.conf.update(celery_settings(visibility_seconds))
    return application


def _guarded_celery_manager(broker_url: str):
    from dash import CeleryManager

    class GuardedCeleryManager(CeleryManager):
        """Revokes a queued task when Dash asks, but never terminates a running one."""

        def call_job_fn(self, key, job_fn, args, context):
            take_job_start()  # as for DiskCache: the rate limit applies before the task is sent
            return super().call_job_fn(key, job_fn, args, context)

        def terminate_job(self, job):
            if job:
                self.handle.control.revoke(str(job))

    return GuardedCeleryManager(celery_app(broker_url), expire=JOB_EXPIRE_SECONDS)


def background_manager(workspace: Workspace, broker_url: str = ""):
    """CeleryManager when a broker URL is given, else the DiskCache one in the workspace."""
    if broker_url:
        logger.info("background jobs go to Celery workers through %s", redacted(broker_url))
        return _guarded_celery_manager(broker_url)
    return _guarded_diskcache_manager(workspace)


def _celery_task_id() -> str | None:
    with contextlib.suppress(ImportError):
        from celery import current_task

        if current_task and current_task.request and current_task.request.id:
            return current_task.request.id
    return None


def job_owner_name() -> str:
    """Who runs the watcher of a job: ``celery:<task id>`` in a worker, else ``dash-diskcache``."""
    task = _celery_task_id()
    return f"celery:{task}" if task else "dash-diskcache"


def run_job_process(
    kind: str,
    name: str,
    on_progress: Callable[[dict], None] | None = None,
    export: bool = False,
    timeout: float | None = None,
) -> JobOutcome:
    """The one way a background callback runs a job: in a new interpreter, watched to its end (cancelled
    through the registry past ``timeout`` seconds, when given).

    The callback's own process (a DiskCache child forked from the server, or a Celery pool
    process) only starts and watches, so it never holds TensorFlow or ONNX Runtime state.
    Under DiskCache, Dash may terminate the callback (triggered again): its SIGTERM then
    ends an attached job (a preview) and leaves a detached one (a training) running.
    """
    from cocoseg.app.context import current_workspace

    owner = job_owner_name()
    end_on_sigterm = not owner.startswith("celery:") and threading.current_thread() is threading.main_thread()
    return run_and_watch(
        current_workspace(),
        kind,
        name,
        owner,
        on_progress,
        export=export,
        end_on_sigterm=end_on_sigterm,
        timeout=timeout,
    )


def run_short_job(
    kind: str,
    config: dict,
    on_progress: Callable[[dict], None] | None = None,
    timeout: float | None = None,
) -> JobOutcome:
    """Queue a short job (export, evaluate, preview, summary, doctor) and run it with ``run_job_process``."""
    from cocoseg.app.context import current_workspace

    return run_job_process(kind, queue(current_workspace(), kind, config).name, on_progress, timeout=timeout)


def run_queued_with_lines(kind: str, queued: dict | None, set_progress, note: Callable[[JobOutcome], object]):
    """Run a queued job (``{"job": name}``: a correction round, the Quick start) to its end.

    Each progress event's ``message`` is shown through the background callback's
    ``set_progress``; the callback then shows ``note(outcome)``, or the error in an alert.
    """
    from dash import no_update

    from cocoseg.app.components.alerts import alert
    from cocoseg.pipeline.jobs import RunError

    entry = stored_job(queued)  # the Store is the browser's: a forged or stale name is no job
    if entry is None:
        return no_update
    try:
        outcome = run_job_process(kind, entry.name, lambda event: set_progress(event.get("message", "")))
    except (RunError, OSError) as error:
        return alert(str(error), "danger")
    return note(outcome)


def stored_job(stored: dict | None):
    """The registry entry of the job a page keeps in a Store (``{"job": name, ...}``), or None.

    A Store is the browser's to change, so the name goes through ``find_entry``'s name check:
    a forged or stale name is no job, never a path.
    """
    from cocoseg.app.context import current_workspace
    from cocoseg.pipeline.jobs import RunError, find_entry

    if not stored or not stored.get("job"):
        return None
    try:
        return find_entry(current_workspace(), str(stored["job"]))
    except (RunError, ValueError):
        return None


def run_stored_job(kind: str, stored: dict | None) -> dict | None:
    """Run the queued job a page keeps in a Store with ``run_job_process``, for a background callback.

    Returns the Store's record with the outcome's ``status`` and ``message``; None (nothing run)
    when the Store names no job of this kind, or one that is not ``queued`` any more: another
    tab's runner, or a worker after a redelivery, has it, and the page's poll watches it.
    """
    from cocoseg.pipeline.jobs import RunError, observe

    entry = stored_job(stored)
    if entry is None or entry.config().get("kind") != kind or observe(entry).state != "queued":
        return None
    try:
        outcome = run_job_process(kind, entry.name)
    except (RunError, OSError) as error:
        return {**stored, "status": "failed", "message": str(error)}
    return {**stored, "status": outcome.status, "message": outcome.message}


def cancel_stored_job(clicks, stored: dict | None):
    """A Cancel button's answer for the job in a Store: ask it to stop (it checks at every progress step)."""
    from dash import no_update

    from cocoseg.app.components.alerts import alert
    from cocoseg.pipeline.jobs import cancel

    entry = stored_job(stored) if clicks else None
    if entry is None:
        return no_update
    return alert(cancel(entry, "browser"), "warning")
