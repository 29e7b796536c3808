"""``cocoseg serve`` and ``cocoseg worker``: the web app, and the Celery worker that runs its jobs.

``serve`` imports the web stack only when it runs, and refuses a port outside 1-65535 with
exit code 3 (``cocoseg.cli.EXIT_INPUT``, raised as a user error).

``worker`` checks what it can before anything heavy starts (a broker URL is set, it is
a Redis URL, Redis answers a ping within a few seconds) and refuses with exit code 2 and
one line that says what to fix. It then runs the Celery worker of ``cocoseg.app.worker`` in this
very process (no child interpreter to forward signals to): Ctrl-C or a service
manager's SIGTERM reaches Celery's own handlers, which let the running job finish its
bookkeeping (warm shutdown; a second Ctrl-C stops at once) and end the pool processes.
Running in-process also means ``app`` is imported from where ``pipeline`` was, never
from a same-named folder in the current directory (``celery -A`` puts that first).
"""

from __future__ import annotations

import argparse
import logging
import sys
from urllib.parse import urlsplit

from cocoseg.cli.output import write
from cocoseg.pipeline.core import Settings, Workspace
from cocoseg.pipeline.core.broker import redacted
from cocoseg.pipeline.data import RegistryError

# the worker's log lines have always been named after its own module (cocoseg/cli/worker.py until
# it joined serve): keep the name so `cocoseg worker`'s stderr reads as before
logger = logging.getLogger("cocoseg.cli.worker")

EXIT_OK = 0
EXIT_USAGE = 2  # cocoseg.cli.EXIT_USAGE: the worker is refused before it starts


# --- serve -------------------------------------------------------------------------------


def command_serve(arguments, settings: Settings, workspace: Workspace) -> int:
    # the web stack is only imported for this command
    from cocoseg.app import access, serving
    from cocoseg.app.main import create_app

    if not 1 <= arguments.port <= 65535:
        raise RegistryError(f"port must be between 1 and 65535, got {arguments.port}")
    policy = access.access_policy(
        arguments.host, arguments.port, settings, token_required=arguments.token_required
    )
    app = create_app(workspace, policy, host=arguments.host)
    server = (
        "Werkzeug (development server)" if arguments.dev else f"waitress, {settings.server_threads} threads"
    )
    token = "" if policy.token is None else ", token required"
    write(f"cocoseg serving {workspace.root} on {arguments.host}:{arguments.port} ({server}{token})")
    for url in access.login_urls(policy, arguments.host, arguments.port):
        write(f"    {url}")
    sys.stdout.flush()
    serving.run(app, arguments.host, arguments.port, settings, dev=arguments.dev)
    return EXIT_OK


def add_serve_command(commands, settings: Settings) -> None:
    """Register ``serve`` on the top-level subparsers (its default port comes from ``settings``)."""
    serve = commands.add_parser("serve", help="run the web app")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1; 0.0.0.0 opens it to the network)",
    )
    serve.add_argument("--port", type=int, default=settings.port)
    serve.add_argument(
        "--token-required",
        action="store_true",
        help="require the access token on a loopback address too (always required beyond loopback)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="Werkzeug's development server instead of waitress (debug stays off)",
    )
    serve.set_defaults(handler=command_serve)


# --- worker ------------------------------------------------------------------------------

PING_TIMEOUT_SECONDS = 3.0
REDIS_SCHEMES = ("redis", "rediss", "unix")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
EXAMPLE_URL = "redis://127.0.0.1:6379/0"


class WorkerRefused(Exception):
    """The worker cannot start; the message is the one line shown to the user."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def check_broker(url: str, timeout: float = PING_TIMEOUT_SECONDS) -> None:
    """Refuse early, with a message the user can act on, unless ``url`` is a Redis that answers.

    Raises:
        WorkerRefused: no URL, not a Redis URL, or no PONG within ``timeout`` seconds.
    """
    if not url:
        raise WorkerRefused(
            "COCOSEG_BROKER_URL is not set; a worker takes jobs from Redis: "
            "set it to the URL the web app uses, "
            f"e.g. COCOSEG_BROKER_URL={EXAMPLE_URL}"
        )
    scheme = urlsplit(url).scheme
    if scheme not in REDIS_SCHEMES:
        raise WorkerRefused(
            f"COCOSEG_BROKER_URL must be a Redis URL such as {EXAMPLE_URL} "
            "(Redis is broker and result store), "
            f"got scheme {scheme or 'none'!r}"
        )
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise WorkerRefused(
            f"cannot reach Redis at {redacted(url)} ({reason}); start it (e.g. `redis-server --port 6379`) "
            f"or fix COCOSEG_BROKER_URL"
        ) from None


def celery_arguments(arguments) -> list[str]:
    """The ``celery worker`` arguments for the options given (prefork pool)."""
    command = [
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(arguments.concurrency),
        "--loglevel",
        arguments.loglevel,
    ]
    if arguments.queues:
        command += ["--queues", arguments.queues]
    return command


def command_worker(arguments, settings: Settings, workspace: Workspace) -> int:
    """Check the broker, then run the Celery worker until it is stopped; returns its exit code."""
    try:
        check_broker(settings.broker_url)
    except WorkerRefused as error:
        sys.stderr.write(f"cocoseg: error: {error}\n")
        return EXIT_USAGE
    logger.warning(
        "cocoseg worker for %s, jobs from %s, %d pool process(es)",
        workspace.root,
        redacted(settings.broker_url),
        arguments.concurrency,
    )
    from cocoseg.app.worker import (
        celery_app,
    )  # builds the Dash app, which registers every background job as a task

    exit_code = celery_app.start(celery_arguments(arguments))
    return exit_code or 0


def add_worker_command(commands) -> None:
    """Register ``worker`` on the top-level subparsers."""
    worker = commands.add_parser(
        "worker",
        help="run background jobs from Redis (Celery); needs COCOSEG_BROKER_URL",
        description="Run a Celery worker that executes the app's background jobs "
        "(evaluation, preparation, training) "
        "sent by `cocoseg serve` through Redis. Set COCOSEG_BROKER_URL (e.g. "
        + EXAMPLE_URL
        + ") to the same "
        "URL for the server and every worker, and COCOSEG_HOME to the same workspace folder (shared storage "
        "when workers run on other machines). "
        "Exits with code 2 when the URL is missing or Redis does not answer.",
    )
    worker.add_argument(
        "--concurrency",
        type=_positive,
        default=1,
        metavar="N",
        help="pool processes, i.e. jobs run at the same time (default 1: a training job uses every core)",
    )
    worker.add_argument(
        "--loglevel",
        choices=LOG_LEVELS,
        default="info",
        metavar="LEVEL",
        help=f"worker log level: {', '.join(LOG_LEVELS)} (default info)",
    )
    worker.add_argument(
        "--queues",
        metavar="NAMES",
        help="comma-separated Celery queues to consume (default: the 'celery' queue the app sends to)",
    )
    worker.set_defaults(handler=command_worker)
