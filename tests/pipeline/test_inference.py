"""ONNX Runtime provider probe: honest about what runs here, and quiet about what does not."""

from __future__ import annotations

import onnxruntime

from pipeline.inference import ProviderReport, provider_label, usable_providers


def test_probe_reports_cpu_and_only_providers_that_open_a_session(capfd):
    usable_providers.cache_clear()
    report = usable_providers()
    assert "CPUExecutionProvider" in report.usable
    assert set(report.usable) <= set(onnxruntime.get_available_providers())
    assert report.version == onnxruntime.__version__
    captured = capfd.readouterr()
    assert "EP Error" not in captured.out + captured.err and "Falling back" not in captured.out + captured.err
    assert usable_providers() is report  # probed once per process


def test_device_follows_usable_providers():
    assert ProviderReport("1", ("CUDAExecutionProvider", "CPUExecutionProvider"), ("CPUExecutionProvider",)).device == "CPU"
    assert ProviderReport("1", ("CUDAExecutionProvider", "CPUExecutionProvider"), ("CUDAExecutionProvider", "CPUExecutionProvider")).device == "GPU"


def test_provider_labels():
    assert [provider_label(name) for name in ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider", "OpenVINOExecutionProvider")] == [
        "TensorRT", "CUDA", "CPU", "OpenVINO"]
