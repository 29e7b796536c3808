"""``cocoseg worker``: refusals with exit code 2 before anything starts, its options, and a real
start against a real redis-server that Ctrl-C stops cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from benchmarks.server_process import clean_environment, free_port, stop_process
from cocoseg.cli.serve import celery_arguments
from tests.celery_support import PROJECT_ROOT, start_redis, start_worker

# hang guards, not speed claims: a refusal takes one interpreter start (and at most one 3 s ping),
# a warm shutdown a moment; both may be slow on a loaded machine
REFUSAL_TIMEOUT_S = 120
HANG_GUARD_S = 120


def _cocoseg(
    *arguments: str, timeout: float = REFUSAL_TIMEOUT_S, **environment: str
) -> subprocess.CompletedProcess:
    """Run the CLI in a child process (a worker that wrongly started must not replace the test process)."""
    env = clean_environment(**environment)
    return subprocess.run(
        [sys.executable, "-m", "cocoseg", *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_without_a_broker_url_the_worker_refuses_with_exit_code_2(isolated_home):
    finished = _cocoseg("worker", COCOSEG_HOME=str(isolated_home))
    assert finished.returncode == 2
    message = finished.stderr.strip()
    assert len(message.splitlines()) == 1
    assert (
        message.startswith("cocoseg: error: COCOSEG_BROKER_URL is not set")
        and "redis://127.0.0.1:6379/0" in message
    )


def test_an_unreachable_redis_is_refused_quickly(isolated_home):
    """Refused after one ping (exit 2, one line), instead of Celery retrying the broker for ever:
    such a hang would end in ``_cocoseg``'s hang-guard timeout."""
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nobody listens there
    finished = _cocoseg("worker", COCOSEG_HOME=str(isolated_home), COCOSEG_BROKER_URL=url)
    assert finished.returncode == 2
    message = finished.stderr.strip()
    assert len(message.splitlines()) == 1 and "cannot reach Redis at redis://:***@127.0.0.1:" in message
    assert "hunter2" not in finished.stderr + finished.stdout


def test_a_broker_url_that_is_not_redis_is_refused(isolated_home):
    finished = _cocoseg(
        "worker", COCOSEG_HOME=str(isolated_home), COCOSEG_BROKER_URL="amqp://guest@127.0.0.1//"
    )
    assert (
        finished.returncode == 2 and "must be a Redis URL" in finished.stderr and "'amqp'" in finished.stderr
    )


def test_help_lists_the_options():
    finished = _cocoseg("worker", "--help")
    assert finished.returncode == 0
    for option in (
        "--concurrency N",
        "--loglevel LEVEL",
        "--queues NAMES",
        "COCOSEG_BROKER_URL",
        "default 1",
    ):
        assert option in finished.stdout
    assert _cocoseg("worker", "--concurrency", "0").returncode == 2


def test_options_become_celery_worker_arguments():
    from cocoseg.cli import build_parser
    from cocoseg.pipeline.core.settings import get_settings

    parser = build_parser(get_settings())
    assert celery_arguments(parser.parse_args(["worker"])) == [
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        "1",
        "--loglevel",
        "info",
    ]
    chosen = parser.parse_args(
        ["worker", "--concurrency", "3", "--loglevel", "debug", "--queues", "celery,gpu"]
    )
    assert celery_arguments(chosen)[-6:] == [
        "--concurrency",
        "3",
        "--loglevel",
        "debug",
        "--queues",
        "celery,gpu",
    ]


@pytest.mark.slow
def test_the_celery_module_refuses_without_a_broker_url(isolated_home):
    env = clean_environment(COCOSEG_HOME=str(isolated_home))
    finished = subprocess.run(
        [sys.executable, "-m", "celery", "--app", "cocoseg.app.worker", "worker"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "COCOSEG_BROKER_URL is not set" in finished.stdout + finished.stderr


@pytest.mark.slow
def test_a_real_worker_starts_without_tensorflow_and_stops_on_ctrl_c(tmp_path):
    import psutil

    redis_process = start_redis(tmp_path / "redis")
    try:
        worker = start_worker(tmp_path / "home", redis_process.url(0), tmp_path / "worker.log")
        tree = [
            psutil.Process(worker.process.pid),
            *psutil.Process(worker.process.pid).children(recursive=True),
        ]
        assert len(tree) == 2  # the main process and one pool process (--concurrency default 1)
        for process in tree:
            assert not any("tensorflow" in mapped.path for mapped in process.memory_maps()), (
                "TensorFlow was loaded"
            )
        assert "background_callback_" in worker.log()  # Celery lists the app's background jobs as its tasks
        # exit code 0: a warm shutdown of its own; a worker that ignored Ctrl-C would be killed (-9)
        # after the hang guard
        assert stop_process(worker.process, signal.SIGINT, HANG_GUARD_S) == 0
        assert not any(process.is_running() and process.status() != psutil.STATUS_ZOMBIE for process in tree)
        assert "Warm shutdown" in worker.log()
    finally:
        redis_process.stop()
