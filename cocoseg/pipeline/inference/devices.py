"""The device report: what this machine has, what cocoseg will use on it, and how to enable the rest.

``cocoseg doctor`` prints it (``--json`` for machines) and Home's device panel shows it. The
CPU, the NVIDIA GPUs and ONNX Runtime's providers are read here, in any process; TensorFlow's
side (``training.devices.tensorflow_facts``) is passed in, because only a process that may
import TensorFlow can read it: the CLI itself, or a ``doctor`` job for Home (``jobs.bodies.doctor``,
a fresh interpreter started and watched by the job layer, recorded in the job registry). Both build
the report with ``doctor_report``; the job keeps it a day (``remember_report``) for ``checked_report``.
"""

from __future__ import annotations

import sys

from cocoseg.pipeline.core.broker import redacted
from cocoseg.pipeline.core.cache import open_cache
from cocoseg.pipeline.core.devices import cpu_info, cuda_packages, nvidia_info
from cocoseg.pipeline.core.settings import Settings
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.inference.predictor import provider_label, usable_providers
from cocoseg.pipeline.training.precision import choose_precision

DOCTOR_JOB_SECONDS = 180  # a doctor job's limit: TensorFlow's import and device discovery take seconds
CACHE_SECONDS = 24 * 3600
CACHE_NAME = "devices"
GPU_INSTALL = "make run GPU=1"  # the gpu extra: onnxruntime-gpu[cuda,cudnn] and tensorflow[and-cuda]
ORT_GPU_PIP = "pip install 'onnxruntime-gpu[cuda,cudnn]'"
TF_GPU_PIP = "pip install 'tensorflow[and-cuda]'"
ORT_DEFAULT_CUDA = "13"  # the CUDA that the onnxruntime-gpu wheel pyproject.toml installs is built for
TENSORRT_MAJOR = 10  # the libnvinfer.so major that onnxruntime-gpu 1.31 links (seen on an H200, 2026-12-04)


def device_report(tensorflow: dict | None = None) -> dict:
    """Everything ``cocoseg doctor`` says, as JSON-ready data.

    Args:
        tensorflow: ``training.devices.tensorflow_facts()``, or None when it was not checked.
    """
    cpu, nvidia, providers = cpu_info(), nvidia_info(), usable_providers()
    usable = [provider_label(name) for name in providers.usable]
    report = {
        "cpu": {
            "model": cpu.model,
            "cores": cpu.cores,
            "flags": cpu.named_flags,
            "bfloat16": cpu.bfloat16,
        },
        "gpus": [
            {"name": gpu.name, "memory_mib": gpu.memory_mib, "compute_capability": gpu.compute_capability}
            for gpu in nvidia.gpus
        ],
        "driver": nvidia.driver,
        "driver_cuda": nvidia.cuda,
        "gpu_note": nvidia.note,
        "cuda_packages": cuda_packages(),
        "onnxruntime": {
            "version": providers.version,
            "built": [provider_label(name) for name in providers.built],
            "usable": usable,
            "cuda_build": providers.cuda_build,
            "refused": {
                provider_label(name): reason if nvidia.gpus or name == "CPUExecutionProvider" else nvidia.note
                for name, reason in providers.reasons
            },
        },
        "tensorflow": tensorflow,
        "inference": {"device": providers.device, "provider": usable[0] if usable else "none"},
        "training": _training(tensorflow),
    }
    report["advice"] = advice(report)
    return report


def _training(tensorflow: dict | None) -> dict:
    if tensorflow is None:
        return {"device": "not checked", "why": "TensorFlow was not asked (run `cocoseg doctor`)"}
    if "error" in tensorflow:
        return {"device": "none", "why": tensorflow["error"]}
    gpus = [device for device in tensorflow["devices"] if device["type"] == "GPU"]
    cpu = cpu_info()
    precision = choose_precision(
        "auto", [gpu["compute_capability"] or None for gpu in gpus], cpu.bfloat16, cpu.model
    )
    chosen = {"precision": precision.policy, "precision_why": precision.reason}
    if gpus:
        strategy = "MirroredStrategy over all of them" if len(gpus) > 1 else "one device"
        return {
            "device": f"{len(gpus)} GPU",
            "why": f"TensorFlow sees {len(gpus)} GPU ({strategy})",
            **chosen,
        }
    return {"device": "CPU", "why": "TensorFlow sees no GPU", **chosen}


def advice(report: dict) -> list[dict]:
    """What would enable a missing device, each with the exact command."""
    found = []
    has_gpu = bool(report["gpus"])
    ort_gpu = report["inference"]["device"] == "GPU"
    cuda = (report["onnxruntime"].get("cuda_build") or ORT_DEFAULT_CUDA).split(".")[0]
    if has_gpu and not ort_gpu:
        refused = report["onnxruntime"]["refused"].get("CUDA") or "the CUDA provider is not built in"
        found.append(
            {
                "what": f"ONNX Runtime cannot use the GPU ({refused}): install CUDA {cuda} and cuDNN 9",
                "command": f"{GPU_INSTALL}   # or: {ORT_GPU_PIP}",
            }
        )
    tensorflow = report["tensorflow"] or {}
    if has_gpu and tensorflow and "error" not in tensorflow and report["training"]["device"] == "CPU":
        found.append(
            {
                "what": f"TensorFlow {tensorflow['version']} sees no GPU: install its CUDA "
                f"{tensorflow['built_cuda'] or '12'} and cuDNN wheels",
                "command": f"{GPU_INSTALL}   # or: {TF_GPU_PIP}",
            }
        )
    if "TensorRT" in report["onnxruntime"]["refused"] and ort_gpu:
        found.append(
            {
                "what": f"TensorRT is optional (CUDA is used): install TensorRT {TENSORRT_MAJOR} for CUDA "
                f"{cuda} (this ONNX Runtime links libnvinfer.so.{TENSORRT_MAJOR}; a newer major does not "
                "load) and put its libraries on LD_LIBRARY_PATH",
                "command": f"pip install 'tensorrt-cu{cuda}=={TENSORRT_MAJOR}.*'",
            }
        )
    return found


def onnxruntime_label(ort: dict) -> str:
    """``ONNX Runtime 1.31.1 (built for CUDA 13.0)``: the version and, for a GPU build, its CUDA."""
    return f"ONNX Runtime {ort['version']}" + (
        f" (built for CUDA {ort['cuda_build']})" if ort.get("cuda_build") else ""
    )


def format_report(report: dict) -> str:
    """The report as the lines ``cocoseg doctor`` prints."""
    cpu = report["cpu"]
    flags = ", ".join(cpu["flags"]) or "none of AVX2 / AVX-512 / VNNI / BF16 / AMX"
    lines = [f"CPU          {cpu['model']}, {cpu['cores']} cores", f"             {flags}"]
    if report["gpus"]:
        for gpu in report["gpus"]:
            lines.append(
                f"GPU          {gpu['name']}, {gpu['memory_mib']} MiB, compute capability "
                f"{gpu['compute_capability']}"
            )
        lines.append(f"driver       {report['driver']} (CUDA {report['driver_cuda'] or '?'})")
    else:
        lines.append(f"GPU          none: {report['gpu_note']}")
    for description, version in report["cuda_packages"].items():
        lines.append(f"             {description}: {version}")
    ort = report["onnxruntime"]
    built, usable = ", ".join(ort["built"]), ", ".join(ort["usable"])
    lines.append(f"{onnxruntime_label(ort)}: built with {built}; usable: {usable}")
    for provider, reason in ort["refused"].items():
        lines.append(f"             {provider} not usable: {reason}")
    tensorflow = report["tensorflow"]
    if tensorflow is None:
        lines.append("TensorFlow   not checked")
    elif "error" in tensorflow:
        lines.append(f"TensorFlow   {tensorflow['error']}")
    else:
        devices = ", ".join(
            device["name"]
            + (f" (compute {device['compute_capability']})" if device["compute_capability"] else "")
            for device in tensorflow["devices"]
        )
        lines.append(
            f"TensorFlow   {tensorflow['version']} (built for CUDA {tensorflow['built_cuda'] or '-'}, "
            f"cuDNN {tensorflow['built_cudnn'] or '-'}): {devices}"
        )
    inference, training = report["inference"], report["training"]
    lines.append(f"inference    {inference['device']} ({inference['provider']} provider)")
    lines.append(f"training     {training['device']}: {training['why']}")
    if "precision" in training:
        lines.append(
            f"precision    {training['precision']} with --precision auto ({training['precision_why']})"
        )
    for item in report["advice"]:
        lines.append(f"to do        {item['what']}")
        lines.append(f"             {item['command']}")
    return "\n".join(lines)


def jobs_facts(settings: Settings) -> dict:
    """How background jobs run and what limits them; the broker URL with its password masked."""
    return {
        "manager": "celery" if settings.broker_url else "diskcache",
        "broker": redacted(settings.broker_url) if settings.broker_url else None,
        "max_training_jobs": settings.max_training_jobs,
        "max_preparation_jobs": settings.max_preparation_jobs,
        "job_starts_per_minute": settings.job_starts_per_minute,
        "job_start_burst": settings.job_start_burst,
    }


def doctor_report(settings: Settings, tensorflow: dict | None = None) -> dict:
    """What ``cocoseg doctor --json`` prints and a ``doctor`` job returns: the device report and the jobs'.

    Args:
        tensorflow: ``training.devices.tensorflow_facts()`` (read in a process that may import TensorFlow),
            or None when it was not checked.
    """
    report = device_report(tensorflow)
    report["jobs"] = jobs_facts(settings)
    return report


class DoctorError(RuntimeError):
    """Home's device check (a ``doctor`` job) did not give a report; the message says why, in a line."""


def _cache_key() -> tuple:
    # the interpreter the job layer starts job processes with (``jobs.runner.command``) is this one
    return ("doctor", sys.executable)


def checked_report(workspace: Workspace) -> dict | None:
    """The last report made with TensorFlow's facts (a ``doctor`` job), or None within a day of none."""
    with open_cache(workspace, CACHE_NAME) as cache:
        return cache.get(_cache_key())


def remember_report(workspace: Workspace, report: dict) -> None:
    """Keep a report made with TensorFlow's facts for a day, for ``checked_report`` (the Home page)."""
    with open_cache(workspace, CACHE_NAME) as cache:
        cache.set(_cache_key(), report, expire=CACHE_SECONDS)


def job_report(outcome) -> dict:
    """The report a ``doctor`` job returned (its ``JobOutcome``).

    Raises:
        DoctorError: the job failed, ran past its limit, was cancelled or returned no report.
    """
    if outcome.ok and isinstance(outcome.result, dict) and "training" in outcome.result:
        return outcome.result
    said = " ".join((outcome.message or "").split())[:300]
    why = "returned no report" if outcome.ok else f"ended {outcome.status}" + (f": {said}" if said else "")
    raise DoctorError(
        f"The device check (job {outcome.name}) {why}; run `cocoseg doctor` in a terminal to see why"
    )
