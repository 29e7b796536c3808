"""The serving soak (issue 19) runs end to end at a tiny size: the report's structure and no error, not
its timings.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.extended]


def test_soak_runs_upload_segment_cycles_through_waitress():
    from benchmarks.soak_server import format_report, run

    results = run(cycles=30, warmup=10, window=10, size=64)
    assert results["errors"] == []
    assert results["server_header"] == "waitress" and results["server_alive"]
    rows = results["rows"]
    assert [row["cycle"] for row in rows] == list(range(30))
    for row in rows:
        assert row["error"] is None
        assert row["ms"] >= row["upload_ms"] + row["segment_ms"] > 0 and row["picture_ms"] > 0
        assert row["rss_mb"] > 0 and row["cpu_ms"] > 0  # the server worked for every cycle
    assert [(window["first"], window["last"]) for window in results["windows"]] == [(10, 19), (20, 29)]
    assert (
        results["rss_at_warmup_mb"] > 0 and results["rss_max_after_warmup_mb"] >= results["rss_at_warmup_mb"]
    )
    assert [name for name, _, _ in results["targets"]][0] == "no error"
    assert results["targets"][0][2] is True
    assert [name for name, _, _ in results["targets"]][3].startswith("the same for the server's CPU")

    report = format_report(results)
    for line in (
        "Machine: ",
        "CPU flags: ",
        "| cycles | p50 ms | p95 ms | server CPU p50 ms | server CPU p95 ms |",
        "| 11-20 |",
        "| target | measured | met |",
    ):
        assert line in report
