"""Run a benchmark script as its own process, as a user does, and read the figures it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_script(script: str, arguments: list[str], figures: Path, timeout: int = 900) -> tuple[dict, str]:
    """``benchmarks/<script>`` with ``arguments`` and ``--json figures``: its figures and its stdout.

    A browser benchmark must run this way inside the suite: Playwright's sync API cannot start in a
    process where a browser test's session is still open (a pytest-xdist worker runs both).
    """
    completed = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *arguments, "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(figures.read_text()), completed.stdout
