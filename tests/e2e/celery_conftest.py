"""Session fixtures for Celery mode: a real redis-server, a real ``cocoseg worker``, and
``cocoseg serve`` sending its background jobs to that worker.

Use them from a test module under ``tests/e2e`` with::

    pytest_plugins = ["tests.e2e.celery_conftest"]

Fixtures (all session-scoped; each is started once, on first use, and stopped at the end):

- ``redis_server`` -> ``tests.celery_support.RedisProcess``: diskless, on a free loopback
  port; ``.url(db)`` is a broker URL, ``.client(db)`` a redis client. Database 0 belongs to
  ``celery_worker``/``celery_server``; tests that need a broker nobody listens to (a job
  that must wait in the queue) take another database, e.g. ``redis_server.url(1)``.
  The tests are skipped, with the reason shown, only when no redis-server exists here.
- ``celery_home`` -> ``Path``: the workspace folder (COCOSEG_HOME) that worker and server
  share; empty apart from the bundled demo dataset. Put what a test needs (models, prepared
  data) in it before the job starts; both processes read the workspace when a job runs.
- ``celery_worker`` -> ``tests.celery_support.WorkerProcess``: ``cocoseg worker`` (one pool
  process) on ``redis_server.url(0)``; ``.log()``, ``.task_lines(since)`` (Celery's lines about
  background-callback tasks), ``.pool_pids()``.
- ``celery_server`` -> ``tests.e2e.conftest.Server``: ``cocoseg serve`` in Celery mode on the
  same home and broker; it depends on ``celery_worker``, so its jobs run. The worker runs one
  job at a time: a test must see its job finish (or stop it) before it ends, or the next
  test's job waits behind it.
- ``serve_celery_mode`` -> the function ``serve_in_celery_mode(home, broker_url, log_path)``, a
  context manager that runs one more server for a single test (``with ... as server``);
  ``tests.celery_support.start_worker`` does the same for a worker (see the queued-job
  test in test_celery_mode.py). Test modules take it as a fixture rather than importing
  this module, which pytest must load first to rewrite its asserts.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.celery_support import require_redis_binary, start_redis, start_worker
from tests.e2e.conftest import Server, _serve


@contextlib.contextmanager
def serve_in_celery_mode(home: Path, broker_url: str, log_path: Path, **settings: str):
    """``with serve_in_celery_mode(...) as server``: ``cocoseg --verbose serve`` for ``home`` with
    COCOSEG_BROKER_URL (and ``settings``, more COCOSEG_* variables) set, stopped on exit."""
    yield from _serve(home, log_path, options=("--verbose",), COCOSEG_BROKER_URL=broker_url, **settings)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A private redis-server for the session (skipped, with the reason, only when none is installed)."""
    binary = require_redis_binary()
    running = start_redis(tmp_path_factory.mktemp("redis"), binary)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def celery_home(tmp_path_factory) -> Path:
    """The workspace folder shared by ``celery_worker`` and ``celery_server``."""
    from cocoseg.pipeline.core.workspace import Workspace

    home = tmp_path_factory.mktemp("celery-home")
    Workspace(home).ensure()
    return home


@pytest.fixture(scope="session")
def celery_worker(redis_server, celery_home, tmp_path_factory):
    """``cocoseg worker`` on database 0 of ``redis_server``, ready to take jobs; stopped with its pool at the
    end.
    """
    log_path = tmp_path_factory.mktemp("celery-worker") / "worker.log"
    try:
        worker = start_worker(celery_home, redis_server.url(0), log_path)
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="session")
def serve_celery_mode():
    """``serve_in_celery_mode``, for tests that need a server of their own (another home or broker
    database).
    """
    return serve_in_celery_mode


@pytest.fixture(scope="session")
def celery_server(redis_server, celery_home, celery_worker, tmp_path_factory) -> Server:
    """``cocoseg serve`` in Celery mode on ``celery_home``; its background jobs run in ``celery_worker``."""
    with serve_in_celery_mode(
        celery_home, redis_server.url(0), tmp_path_factory.mktemp("celery-server") / "server.log"
    ) as server:
        yield server
