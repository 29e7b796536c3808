"""What the commands print: result lines on stdout, progress bars on stderr.

Progress bars are fed by the pipeline's ``progress(done, total)`` callbacks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from tqdm import tqdm

Result = TypeVar("Result")


def write(text: str = "") -> None:
    """One result line on stdout (progress and chatter go to stderr, so output can be piped)."""
    sys.stdout.write(text + "\n")


class ProgressBar:
    """A tqdm bar on stderr, silent when stderr is not a terminal (scripts, CI)."""

    def __init__(self, description: str, unit: str = "it") -> None:
        self.bar = tqdm(desc=description, unit=unit, disable=None, leave=False, file=sys.stderr)

    def __call__(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.reset(total=total)
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def with_progress_bar(
    description: str, unit: str, work: Callable[[Callable[[int, int], None]], Result]
) -> Result:
    """Run ``work(progress)`` with a bar that is closed however ``work`` ends."""
    bar = ProgressBar(description, unit)
    try:
        return work(bar)
    finally:
        bar.close()
