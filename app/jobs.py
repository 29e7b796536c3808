"""Background jobs: the callback manager (DiskCache or Celery) and the job bodies' glue.

Managers. DiskcacheManager (default) runs a background callback in a child process of
the web server, its cache in ``<workspace>/cache/jobs`` (0700, entries expire after a
day). With ``COCOSEG_BROKER_URL`` set (a Redis URL) it is CeleryManager instead: the
same callbacks run in ``cocoseg worker`` processes, on this machine or others that
share the workspace folder.

Neither manager ever kills a process on the browser's word. Dash asks the manager to
terminate a job when a background callback is triggered again (``oldJob``) or its
cancel input fires; a job that trains or prepares is detached from that life cycle
(it is cancelled through the run registry, ``pipeline.runs``), and any other job is
ended only if it is a process this manager started itself, checked by pid *and* start
time. A forged, replayed or recycled pid therefore never reaches ``kill``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

from pipeline.runs import OWNER_VARIABLE
from pipeline.workspace import Workspace

logger = logging.getLogger(__name__)

JOB_EXPIRE_SECONDS = 24 * 3600
_STARTED_PREFIX = "cocoseg-started-"


def _detached_pids(workspace: Workspace) -> set[int]:
    """Pids of jobs that the registry tracks (training runs, preparation jobs) on this host."""
    from pipeline.runs import ACTIVE, RunFolder

    pids = set()
    for parent in (workspace.runs_dir, workspace.jobs_dir):
        if not parent.is_dir():
            continue
        for folder in parent.iterdir():
            status = RunFolder(folder).status() if (folder / "status.json").is_file() else {}
            if status.get("status") in ACTIVE and isinstance(status.get("pid"), int):
                pids.add(status["pid"])
    return pids


def _guarded_diskcache_manager(workspace: Workspace):
    import diskcache
    import psutil
    from dash import DiskcacheManager

    class GuardedDiskcacheManager(DiskcacheManager):
        """Records every process it starts; terminates only those, and never registry jobs."""

        def call_job_fn(self, key, job_fn, args, context):
            pid = super().call_job_fn(key, job_fn, args, context)
            with contextlib.suppress(psutil.NoSuchProcess):
                self.handle.set(f"{_STARTED_PREFIX}{pid}", psutil.Process(pid).create_time(), expire=JOB_EXPIRE_SECONDS)
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
            if pid in _detached_pids(workspace):
                logger.info("job process %s trains or prepares; it is cancelled through the run registry, not killed", pid)
                return
            super().terminate_job(pid)

    workspace.ensure()
    folder = workspace.cache_dir / "jobs"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return GuardedDiskcacheManager(diskcache.Cache(str(folder)), expire=JOB_EXPIRE_SECONDS)


def celery_app(broker_url: str):
    """The Celery application behind CeleryManager (Redis as broker and result store)."""
    from celery import Celery

    application = Celery("cocoseg", broker=broker_url, backend=broker_url)
    application.conf.update(
        result_expires=JOB_EXPIRE_SECONDS,
        worker_prefetch_multiplier=1,  # a long training must not hold queued jobs hostage
        task_acks_late=False,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return application


def _guarded_celery_manager(broker_url: str):
    from dash import CeleryManager

    class GuardedCeleryManager(CeleryManager):
        """Revokes a queued task when Dash asks, but never terminates a running one."""

        def terminate_job(self, job):
            if job:
                self.handle.control.revoke(str(job))

    return GuardedCeleryManager(celery_app(broker_url), expire=JOB_EXPIRE_SECONDS)


def background_manager(workspace: Workspace, broker_url: str = ""):
    """CeleryManager when a broker URL is given, else the DiskCache one in the workspace."""
    if broker_url:
        logger.info("background jobs go to Celery workers through %s", _redacted(broker_url))
        return _guarded_celery_manager(broker_url)
    return _guarded_diskcache_manager(workspace)


def _redacted(url: str) -> str:
    """The URL without a password, for logs."""
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}://{rest}"


@contextlib.contextmanager
def job_owner(kind: str) -> Iterator[None]:
    """Name the callback that runs a job (``dash-diskcache`` or ``celery:<task id>``) for its registry entry."""
    owner = kind
    with contextlib.suppress(ImportError):
        from celery import current_task

        if current_task and current_task.request and current_task.request.id:
            owner = f"celery:{current_task.request.id}"
    previous = os.environ.get(OWNER_VARIABLE)
    os.environ[OWNER_VARIABLE] = owner
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(OWNER_VARIABLE, None)
        else:
            os.environ[OWNER_VARIABLE] = previous
