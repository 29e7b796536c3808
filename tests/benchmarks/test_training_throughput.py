"""The training-throughput benchmark runs end to end at a tiny size (figures are not asserted)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_benchmark_reports_every_architecture():
    from benchmarks.training_throughput import format_table, run
    from cocoseg.models.registry import ARCHITECTURES

    results = run(steps=1, sizes=[64])
    assert [row["name"] for row in results["rows"]] == list(ARCHITECTURES)
    assert all(row["images_per_second"] > 0 and 0 < row["fraction"] < 1.5 for row in results["rows"])
    table = format_table(results)
    assert "No CUDA GPU visible" in table or "GPU images/s" in table
