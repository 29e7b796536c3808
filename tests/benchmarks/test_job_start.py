"""The job start benchmark runs both entry points on a real job (figures exist, not their size)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_both_entry_points_run_the_job_and_are_reported():
    from benchmarks.job_start import ENTRY_POINTS, format_table, run

    results = run(repeats=1)
    assert set(results["medians"]) == set(ENTRY_POINTS)
    for figures in results["samples"].values():
        assert len(figures["wall"]) == len(figures["cpu"]) == 1
        assert figures["wall"][0] > 0 and figures["cpu"][0] > 0
    assert results["wall_ratio"] > 0 and results["cpu_ratio"] > 0
    table = format_table(results)
    assert "| job process | wall s | CPU s |" in table and "Machine: " in table
    for name in ENTRY_POINTS:
        assert f"| {name} |" in table
