"""``cocoseg doctor``: the CPU and its flags, the GPUs, what ONNX Runtime and TensorFlow can use, what
cocoseg will use, and the command that would enable a missing device."""

from __future__ import annotations

import json

from cocoseg.cli.output import write
from cocoseg.pipeline.core import Settings, Workspace
from cocoseg.pipeline.inference.devices import device_report, format_report


def command_doctor(arguments, settings: Settings, workspace: Workspace) -> int:
    tensorflow = None
    if not arguments.no_tensorflow:
        from cocoseg.pipeline.training.devices import tensorflow_facts  # imports TensorFlow (seconds)

        tensorflow = tensorflow_facts()
    report = device_report(tensorflow)
    write(json.dumps(report, indent=2) if arguments.json else format_report(report))
    return 0


def add_doctor_command(commands) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="what this machine's CPU and GPUs can do, and what cocoseg will use for training and inference",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument(
        "--no-tensorflow",
        action="store_true",
        help="skip TensorFlow's devices (saves the seconds its import takes)",
    )
    doctor.set_defaults(handler=command_doctor)
