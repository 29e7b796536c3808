"""A real ``cocoseg serve`` in a subprocess, for the browser tests and the benchmarks: start, wait, stop.

One place says how such a server runs: ``python -m cocoseg serve`` on a free loopback port, with
``COCOSEG_HOME`` and only the ``COCOSEG_*`` settings asked for (none from the caller's shell), its
output in a log file, and whatever it forked stopped with it. The tests' and benchmarks' other
child processes (Celery workers, redis-server, one-off CLI calls) use the same three parts:
``clean_environment``, ``read_log`` and ``stop_process``. Lives with the benchmarks so that they
need nothing from ``tests/``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 90  # a hang guard: the server answers in a few seconds, on a loaded machine in tens
STOP_TIMEOUT_S = 10


class ServerDidNotStart(RuntimeError):
    """The server exited, or did not answer in time; the message ends with its log's tail."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on the loopback ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def page_answers(port: int) -> bool:
    """Whether the app on ``port`` serves its page (HTTP 200 for ``/``): built, not only bound."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any ``COCOSEG_*`` variable, plus ``settings``.

    A child ``cocoseg`` sees only the settings its caller asks for, never the shell's (a
    ``COCOSEG_HOME`` there would point it at the user's own workspace); its output is unbuffered,
    so a log read while it runs is current.
    """
    environment = {key: value for key, value in os.environ.items() if not key.startswith("COCOSEG_")}
    environment.update(PYTHONUNBUFFERED="1", **settings)
    return environment


def read_log(log_path: Path) -> str:
    """A child's log as text so far ("" before the child has written it)."""
    return log_path.read_text(errors="replace") if log_path.exists() else ""


def stop_process(
    process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S
) -> int:
    """Send ``sig``, kill after ``timeout``; whatever it forked goes with it. Returns its exit code.

    A DiskCache job outlives a server stopped with SIGTERM (that is how a job survives a
    restart), and a Celery worker's pool may outlive a killed worker; a test's process must not
    leave one running for the rest of the suite.
    """
    import psutil

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=timeout)
    return process.returncode


def _log_tail(log_path: Path) -> str:
    return read_log(log_path)[-5000:]


@contextlib.contextmanager
def serving(
    home: Path,
    log_path: Path,
    arguments: tuple[str, ...] = (),
    options: tuple[str, ...] = (),
    settings: dict[str, str] | None = None,
    ready: Callable[[int], bool] = listening,
):
    """``with serving(home, log_path) as (port, process)``: ``cocoseg serve`` until ``ready(port)``.

    ``arguments`` go after ``serve`` (``--host 0.0.0.0``, ``--dev``), ``options`` before it
    (``--verbose``); ``settings`` are the ``COCOSEG_*`` (and other) variables the server and its
    jobs see besides ``COCOSEG_HOME``. The server is stopped on exit, also when it never answered.

    Raises:
        ServerDidNotStart: the process exited, or was not ready within STARTUP_TIMEOUT_S.
    """
    port = free_port()
    command = [sys.executable, "-m", "cocoseg", *options, "serve", "--port", str(port), *arguments]
    environment = clean_environment(COCOSEG_HOME=str(home), **(settings or {}))
    with running(command, port, log_path, environment, ready, "cocoseg serve") as process:
        yield port, process


@contextlib.contextmanager
def running(
    command: list[str],
    port: int,
    log_path: Path,
    environment: dict[str, str],
    ready: Callable[[int], bool] = listening,
    name: str = "the server",
):
    """``with running(command, port, log_path, environment) as process``: a server until ``ready(port)``.

    Its output goes to ``log_path``; it is stopped on exit (``stop_process``), also when it never
    answered. ``name`` is what the error calls it.

    Raises:
        ServerDidNotStart: the process exited, or was not ready within STARTUP_TIMEOUT_S; the
            message ends with the log's tail.
    """
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not ready(port):
            if process.poll() is not None:
                raise ServerDidNotStart(
                    f"{name} exited with code {process.returncode} before answering:\n{_log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise ServerDidNotStart(
                    f"{name} did not answer on port {port} within {STARTUP_TIMEOUT_S} s:\n"
                    f"{_log_tail(log_path)}"
                )
            time.sleep(0.2)
        yield process
    finally:
        stop_process(process)
