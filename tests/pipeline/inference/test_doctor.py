"""``cocoseg doctor`` and its device report: nvidia-smi parsed, what is used, the advice."""

from __future__ import annotations

import json

import pytest

from cocoseg.pipeline.core.devices import Gpu, parse_nvidia_smi
from cocoseg.pipeline.core.settings import get_settings
from cocoseg.pipeline.inference import devices
from cocoseg.pipeline.inference.devices import (
    DOCTOR_JOB_SECONDS,
    DoctorError,
    advice,
    checked_report,
    device_report,
    doctor_report,
    format_report,
    job_report,
    jobs_facts,
)
from cocoseg.pipeline.jobs import observe, queue, run_and_watch
from cocoseg.pipeline.jobs.runner import RESULT_FILE
from tests.cli.test_cli import run_cocoseg

LISTING = "NVIDIA H200, 143771, 580.95.05, 9.0\nNVIDIA H200, 143771, 580.95.05, 9.0\n"
BANNER = "| NVIDIA-SMI 580.95.05   Driver Version: 580.95.05   CUDA Version: 13.0     |"
TF_ON_GPU = {
    "version": "2.21.0",
    "built_cuda": "12.5.1",
    "built_cudnn": "9",
    "devices": [
        {"type": "CPU", "name": "/physical_device:CPU:0", "compute_capability": ""},
        {"type": "GPU", "name": "NVIDIA H200", "compute_capability": "9.0"},
    ],
}
TF_ON_CPU = TF_ON_GPU | {"devices": TF_ON_GPU["devices"][:1]}


def test_nvidia_smi_output_gives_the_gpus_the_driver_and_its_cuda():
    info = parse_nvidia_smi(LISTING, BANNER)
    assert info.gpus == (Gpu("NVIDIA H200", 143771, "9.0"),) * 2
    assert (info.driver, info.cuda, info.note) == ("580.95.05", "13.0", "")
    assert parse_nvidia_smi("", "").note == "nvidia-smi lists no GPU"


def test_this_machine_s_report_names_what_inference_uses():
    report = device_report()
    assert report["inference"]["provider"] in report["onnxruntime"]["usable"]
    assert report["training"]["device"] == "not checked" and report["tensorflow"] is None
    assert json.loads(json.dumps(report)) == report  # JSON-ready
    text = format_report(report)
    assert text.startswith("CPU ") and "inference    " in text and "TensorFlow   not checked" in text


def test_a_gpu_that_neither_runtime_can_use_gets_the_install_commands():
    report = device_report(TF_ON_CPU)
    report |= {"gpus": [{"name": "NVIDIA H200", "memory_mib": 143771, "compute_capability": "9.0"}]}
    report["inference"] = {"device": "CPU", "provider": "CPU"}
    report["onnxruntime"]["refused"] = {"CUDA": "libcudnn.so.9: cannot open shared object file"}
    found = advice(report)
    assert [item["command"].split()[:3] for item in found] == [["make", "run", "GPU=1"]] * 2
    assert "libcudnn.so.9" in found[0]["what"] and "TensorFlow 2.21.0 sees no GPU" in found[1]["what"]
    assert "pip install 'onnxruntime-gpu[cuda,cudnn]'" in found[0]["command"]
    assert "pip install 'tensorflow[and-cuda]'" in found[1]["command"]


@pytest.mark.parametrize("cuda_build", ["13.0", "12.8"])
def test_the_tensorrt_advice_names_the_cuda_and_tensorrt_majors_this_onnxruntime_links(cuda_build):
    """On an H200 (2026-12-04) the advice said ``tensorrt-cu12`` to a CUDA 13 build; today's
    ``tensorrt-cu13`` is TensorRT 11, whose libnvinfer.so.11 that build cannot load."""
    report = device_report()
    report |= {"gpus": [{"name": "NVIDIA H200", "memory_mib": 143771, "compute_capability": "9.0"}]}
    report["inference"] = {"device": "GPU", "provider": "CUDA"}
    report["onnxruntime"] |= {"cuda_build": cuda_build, "refused": {"TensorRT": "Please install TensorRT"}}
    major = cuda_build.split(".")[0]
    [found] = advice(report)
    assert found["command"] == f"pip install 'tensorrt-cu{major}==10.*'"
    assert f"TensorRT 10 for CUDA {major}" in found["what"] and "LD_LIBRARY_PATH" in found["what"]
    assert f"ONNX Runtime {report['onnxruntime']['version']} (built for CUDA {cuda_build})" in format_report(
        report
    )
    report["inference"] = {"device": "CPU", "provider": "CPU"}
    report["onnxruntime"]["refused"] = {"CUDA": "libcublasLt.so.13: cannot open shared object file"}
    assert f"install CUDA {major} and cuDNN 9" in advice(report)[0]["what"]


def test_tensorflow_on_two_gpus_trains_mirrored_and_a_usable_gpu_needs_nothing():
    report = device_report(TF_ON_GPU | {"devices": TF_ON_GPU["devices"] + TF_ON_GPU["devices"][1:]})
    assert report["training"]["device"] == "2 GPU" and "MirroredStrategy" in report["training"]["why"]
    assert report["training"]["precision"] == "mixed_float16"  # tensor cores (compute 9.0)
    assert "precision    mixed_float16 with --precision auto" in format_report(report)
    report |= {"gpus": [{"name": "NVIDIA H200", "memory_mib": 1, "compute_capability": "9.0"}]}
    report["inference"] = {"device": "GPU", "provider": "CUDA"}
    report["onnxruntime"]["refused"] = {}
    assert advice(report) == []
    assert devices._training({"error": "TensorFlow cannot be imported: x"})["device"] == "none"


def test_the_cli_prints_tensorflow_s_devices_and_json(tmp_path):
    finished = run_cocoseg("doctor", home=tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert "TensorFlow   2." in finished.stdout and "/physical_device:CPU:0" in finished.stdout
    quick = run_cocoseg("doctor", "--json", "--no-tensorflow", home=tmp_path)
    assert quick.returncode == 0, quick.stderr
    report = json.loads(quick.stdout)
    assert report["cpu"]["cores"] >= 1 and report["tensorflow"] is None


def _doctor_job(workspace, timeout: float):
    entry = queue(workspace, "doctor", {})
    return entry, run_and_watch(workspace, "doctor", entry.name, "test", timeout=timeout)


def test_home_s_check_is_a_doctor_job_in_the_registry_that_keeps_the_report_a_day(workspace):
    assert checked_report(workspace) is None
    entry, outcome = _doctor_job(workspace, DOCTOR_JOB_SECONDS)
    report = job_report(outcome)
    assert report["tensorflow"]["version"].startswith("2.") and report["training"]["device"] in (
        "CPU",
        "1 GPU",
    )
    # the report `cocoseg doctor --json` prints, built by the same function, jobs' facts included
    assert report.keys() == doctor_report(get_settings()).keys() and report["jobs"] == jobs_facts(
        get_settings()
    )
    assert (
        observe(entry).state == "finished" and json.loads((entry.folder / RESULT_FILE).read_text()) == report
    )
    assert checked_report(workspace) == report

    entry, outcome = _doctor_job(workspace, 0.01)
    assert outcome.status == "cancelled" and observe(entry).state == "cancelled"
    assert "took over 0.01 s" in entry.status()["message"]  # the registry says why
    with pytest.raises(DoctorError, match="took over 0.01 s, its time limit"):
        job_report(outcome)
    assert checked_report(workspace) == report  # a failed check keeps the last good one
