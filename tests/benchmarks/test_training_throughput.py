"""The training-throughput benchmark runs end to end at a tiny size (figures are not asserted)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
@pytest.mark.extended
def test_benchmark_reports_the_architectures_asked_for():
    """Two architectures: every one goes through the same code, and each architecture's training is
    covered by tests/models (the pretrained encoders cost ~25 s more here and add nothing)."""
    from benchmarks.training_throughput import format_table, run

    results = run(steps=1, sizes=[64], names=["unet", "residual_unet"])
    assert [row["name"] for row in results["rows"]] == ["unet", "residual_unet"]
    assert all(row["images_per_second"] > 0 and 0 < row["fraction"] < 1.5 for row in results["rows"])
    table = format_table(results)
    assert "No CUDA GPU visible" in table or "GPU images/s" in table


@pytest.mark.slow
@pytest.mark.extended
def test_precision_rows_set_auto_against_float32():
    """One round at 64 px: float32 and auto's pick on the CPU, a ratio, and the CPU's flags beside them."""
    from benchmarks.training_throughput import format_precision, precision_rows
    from cocoseg.pipeline.core.devices import cpu_info

    results = precision_rows(steps=1, rounds=1, size=64)
    cpu = results["rows"][0]
    assert cpu["device"] == "CPU" and cpu["auto"] == ("mixed_bfloat16" if cpu_info().bfloat16 else "float32")
    assert cpu["float32"] > 0 and cpu["auto_rate"] > 0 and cpu["ratio"] > 0
    table = format_precision(results)
    assert cpu_info().describe() in table and "auto vs float32" in table
