"""A per-client rate limit on job starts: one token bucket per remote address.

Every background callback starts a job watcher, and through it a job process, so the
background-callback manager (``cocoseg.app.jobs``) takes a token from the caller's bucket
in ``call_job_fn``, in the web process and inside the request: a client that starts jobs
faster than ``Settings.job_starts_per_minute`` (bursts of ``job_start_burst``) gets a 429
whose text says how long to wait, and no process starts. That holds for forged requests
too, which call a background callback directly.

The pages' Start buttons ask first (``refusal``, which takes nothing), so a person sees
"too many job starts; wait N s" beside the button instead of a job that never comes. A button
that triggers a background callback directly (Evaluate, the device check) meets the 429 itself;
``assets/cocoseg.js`` shows any refused callback as a notice with the ``Retry-After`` wait.
A client is its address as the server sees it: behind a reverse proxy every user shares
the proxy's bucket, unless ``COCOSEG_TRUSTED_PROXY`` names it (``cocoseg.app.serving``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import flask

LIMITER_KEY = "COCOSEG_JOB_START_LIMITER"
# the rate when COCOSEG_JOB_STARTS_PER_MINUTE is unset and a token guards the server (it is shared)
SHARED_JOB_STARTS_PER_MINUTE = 20.0
MAX_CLIENTS = 10_000  # buckets kept; full ones are forgotten first


class JobStartLimiter:
    """Token buckets keyed by client: ``burst`` tokens, refilled at ``per_minute`` a minute (0: no limit)."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)
        self._lock = threading.Lock()

    def _tokens(self, client: str, now: float) -> float:
        tokens, when = self._buckets.get(client, (self.burst, now))
        return min(self.burst, tokens + (now - when) * self.rate)

    def wait_seconds(self, client: str) -> float:
        """Seconds until ``client`` may start a job (0: now); takes nothing."""
        if not self.rate:
            return 0.0
        with self._lock:
            tokens = self._tokens(client, self.clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, client: str) -> float:
        """Take a token for a start: 0 when taken, else the seconds to wait (nothing taken)."""
        if not self.rate:
            return 0.0
        with self._lock:
            now = self.clock()
            tokens = self._tokens(client, now)
            if tokens < 1:
                return (1 - tokens) / self.rate
            if len(self._buckets) >= MAX_CLIENTS and client not in self._buckets:
                self._forget_full(now)
            self._buckets[client] = (tokens - 1, now)
            return 0.0

    def _forget_full(self, now: float) -> None:
        for client in [client for client in self._buckets if self._tokens(client, now) >= self.burst]:
            del self._buckets[client]
        if len(self._buckets) >= MAX_CLIENTS:  # all busy: forget the oldest
            oldest = min(self._buckets, key=lambda client: self._buckets[client][1])
            del self._buckets[oldest]


def message(seconds: float) -> str:
    return f"too many job starts; wait {max(1, math.ceil(seconds))} s"


def rate_per_minute(configured: float | None, shared: bool) -> float:
    """The limit in force: the configured one, else ``SHARED_JOB_STARTS_PER_MINUTE`` on a server others can
    reach (``shared``: it needs a token) and none for the one local user of a loopback server."""
    if configured is not None:
        return configured
    return SHARED_JOB_STARTS_PER_MINUTE if shared else 0.0


def install(server: flask.Flask, per_minute: float, burst: int) -> JobStartLimiter:
    """Give the app its limiter (one per server, shared by its threads)."""
    limiter = JobStartLimiter(per_minute, burst)
    server.config[LIMITER_KEY] = limiter
    return limiter


def _limiter_and_client() -> tuple[JobStartLimiter | None, str]:
    if not flask.has_request_context():
        return None, ""
    return flask.current_app.config.get(LIMITER_KEY), flask.request.remote_addr or "unknown"


def refusal() -> str | None:
    """The message for a Start button when this request's client must wait, else None (takes nothing)."""
    limiter, client = _limiter_and_client()
    wait = limiter.wait_seconds(client) if limiter else 0.0
    return message(wait) if wait else None


def take_job_start() -> None:
    """Count one job start for this request's client (the manager calls it before any process starts).

    Raises:
        werkzeug.exceptions.TooManyRequests: the client must wait; the text says how long.
    """
    from werkzeug.exceptions import TooManyRequests

    limiter, client = _limiter_and_client()
    wait = limiter.take(client) if limiter else 0.0
    if wait:
        raise TooManyRequests(message(wait), retry_after=max(1, math.ceil(wait)))
