"""The headless Chromium that the browser tests and the app-latency benchmark drive.

One place says how Chromium runs here: $CHROMIUM_PATH, else the system package, never a
download at run time. Lives with the benchmarks so that they need nothing from ``tests/``.
"""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_CHROMIUM = Path("/usr/bin/chromium")


def chromium_executable() -> str | None:
    """The browser to drive: $CHROMIUM_PATH, else the system Chromium, else None (then Playwright
    looks in its own cache, which this project never fills, and the launch fails with a hint)."""
    for candidate in (os.environ.get("CHROMIUM_PATH"), str(SYSTEM_CHROMIUM)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def launch_chromium(playwright):
    """Headless Chromium with this project's arguments; a missing browser is a failure, never a skip."""
    executable = chromium_executable()
    try:
        return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
    except Exception as error:  # noqa: BLE001 - Playwright raises its own Error for a missing browser
        raise RuntimeError(
            f"browser tests need Chromium: set CHROMIUM_PATH, install the system 'chromium' package, or run "
            f"`make browser` ({str(error).splitlines()[0]})"
        ) from None


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
