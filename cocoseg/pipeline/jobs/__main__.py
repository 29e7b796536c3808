"""``python -m cocoseg.pipeline.jobs KIND NAME [--export]``: the job process the runner starts.

It does what ``cocoseg jobs run`` does, without importing the whole command line first: that
costs about 1.5 s of imports (ONNX among them) that a statistics or validation job never
needs, paid by every job before its first progress line.
"""

from __future__ import annotations

import argparse
import logging
import sys

from cocoseg.pipeline.core.settings import get_settings
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.jobs.execution import run_and_report

EXIT_INPUT = 3  # the command line's code for bad input
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cocoseg.pipeline.jobs", description=__doc__)
    parser.add_argument("kind")
    parser.add_argument("name")
    parser.add_argument("--export", action="store_true", help="export the run when training ends")
    arguments = parser.parse_args(argv)
    try:
        settings = get_settings()
    except ValueError as error:
        sys.stderr.write(f"cocoseg: configuration error: {error}\n")
        return EXIT_INPUT
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run_and_report(Workspace(settings.home), arguments.kind, arguments.name, arguments.export)
    except ValueError as error:  # every pipeline error the job could not record in its entry
        sys.stderr.write(f"cocoseg: error: {error}\n")
        return EXIT_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("cocoseg: interrupted\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
