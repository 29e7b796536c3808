"""``cocoseg doctor``: the CPU and its flags, the GPUs, what ONNX Runtime and TensorFlow can use, what
cocoseg will use, and the command that would enable a missing device."""

from __future__ import annotations

import json

from cocoseg.cli.output import write
from cocoseg.pipeline.core import Settings, Workspace
from cocoseg.pipeline.inference.devices import doctor_report, format_report


def format_jobs(facts: dict) -> str:
    where = f"Celery workers through {facts['broker']}" if facts["broker"] else "DiskCache (this machine)"
    rate = (
        f"{facts['job_starts_per_minute']:g} job starts a minute per client "
        f"(bursts of {facts['job_start_burst']})"
        if facts["job_starts_per_minute"]
        else "no limit on job starts"
        if facts["job_starts_per_minute"] == 0
        else "a limit on job starts per client when serving with a token (COCOSEG_JOB_STARTS_PER_MINUTE)"
    )
    return (
        f"Jobs         {where}; {facts['max_training_jobs']} training and {facts['max_preparation_jobs']} "
        f"preparation job(s) at a time; {rate}"
    )


def command_doctor(arguments, settings: Settings, workspace: Workspace) -> int:
    tensorflow = None
    if not arguments.no_tensorflow:
        from cocoseg.pipeline.training.devices import tensorflow_facts  # imports TensorFlow (seconds)

        tensorflow = tensorflow_facts()
    report = doctor_report(settings, tensorflow)  # the report a Home ``doctor`` job returns, too
    write(
        json.dumps(report, indent=2)
        if arguments.json
        else format_report(report) + "\n" + format_jobs(report["jobs"])
    )
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
