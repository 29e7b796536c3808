"""Polling helpers for tests that watch real processes and files change."""

from __future__ import annotations

import time

import psutil
import pytest


def wait_for(condition, timeout: float = 30.0, message: str = "the condition", interval: float = 0.05):
    """Poll ``condition()`` until it returns something true (returned); fail the test with ``message`` after
    ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


def process_running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody has reaped yet does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
