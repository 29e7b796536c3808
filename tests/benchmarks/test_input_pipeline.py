"""The input-pipeline benchmark runs end to end at a tiny scale (figures are not asserted)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
@pytest.mark.extended
def test_benchmark_produces_every_row():
    from benchmarks.input_pipeline import format_table, run

    results = run(repeat=1, batches=3, steps=1, size=64)
    assert all(
        results[key] > 0 for key in ("writer_1", "writer_all", "input_cached", "input_uncached", "training")
    )
    table = format_table(results)
    assert table.count("\n| (") == 5 and "64 px" in table
