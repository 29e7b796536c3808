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


def pool_workers(parent: psutil.Process | None = None, recursive: bool = True) -> list[psutil.Process]:
    """The live multiprocessing (spawn) workers under ``parent`` (this process by default). A zombie
    that another test left unreaped, or a process gone meanwhile, is not one."""
    found = []
    for child in (parent or psutil.Process()).children(recursive=recursive):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:  # ZombieProcess is one too
            continue
    return found
