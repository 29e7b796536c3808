"""``cocoseg`` command line: thin calls into the pipeline modules.

Exit codes scripts can rely on:
    0  success
    1  the command ran and found problems (``data validate`` with errors)
    2  wrong usage (unknown command or option)
    3  bad input: unknown dataset, unreadable file, invalid name or label map
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from cocoseg.cli.annotations import add_annotation_commands
from cocoseg.cli.data import add_data_commands
from cocoseg.cli.doctor import add_doctor_command
from cocoseg.cli.jobs import add_job_commands
from cocoseg.cli.models import add_model_commands
from cocoseg.cli.prepare import add_prepare_commands, expand_shorthand
from cocoseg.cli.rank import add_rank_command
from cocoseg.cli.serve import add_serve_command, add_worker_command
from cocoseg.cli.train import add_train_commands
from cocoseg.cli.weights import add_weights_commands
from cocoseg.pipeline.core import BusyError, ConfigError, Settings, UnsafePathError, Workspace, get_settings
from cocoseg.pipeline.data import CocoFileError, ExportError, LabelMapError, RegistryError
from cocoseg.pipeline.inference import EvaluationError, InferenceInputError, ModelError, RankingError
from cocoseg.pipeline.jobs import RunError
from cocoseg.pipeline.prepare import PrepareError

logger = logging.getLogger("cocoseg")

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_INTERRUPTED = 130

USER_ERRORS = (
    RegistryError,
    CocoFileError,
    LabelMapError,
    UnsafePathError,
    ExportError,
    PrepareError,
    RunError,
    ConfigError,
    ModelError,
    EvaluationError,
    InferenceInputError,
    RankingError,
    BusyError,
)


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cocoseg", description="Semantic segmentation studio for COCO datasets."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    add_serve_command(commands, settings)
    add_data_commands(commands)
    add_prepare_commands(commands)
    add_train_commands(commands)
    add_model_commands(commands)
    add_worker_command(commands)
    add_annotation_commands(commands)
    add_job_commands(commands)
    add_weights_commands(commands)
    add_rank_command(commands)
    add_doctor_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cocoseg`` console script."""
    try:
        settings = get_settings()
    except ValueError as error:
        sys.stderr.write(f"cocoseg: configuration error: {error}\n")
        return EXIT_INPUT
    arguments = build_parser(settings).parse_args(
        expand_shorthand(list(sys.argv[1:] if argv is None else argv))
    )
    logging.basicConfig(
        level=logging.INFO if arguments.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    workspace = Workspace(settings.home)
    try:
        return arguments.handler(arguments, settings, workspace)
    except USER_ERRORS as error:
        sys.stderr.write(f"cocoseg: error: {error}\n")
        return EXIT_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("cocoseg: interrupted\n")
        return EXIT_INTERRUPTED
