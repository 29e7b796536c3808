"""The app latency benchmark runs end to end at its smallest settings (figures are not asserted, only that they exist)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_app_latency_measures_segment_uploads_and_explore_visits():
    from benchmarks.app_latency import SEGMENT_LABELS, format_table, run

    results = run(uploads=2, size=64, explore_repeats=1, wait_quiet_s=0)
    rows = results["segment_rows"]
    assert [row["warmup"] for row in rows] == [True, False, False]
    assert len({row["name"] for row in rows}) == 3  # a new file each time
    for key in SEGMENT_LABELS:
        figures = results["segment"][key]
        assert figures["n"] == 2 and 0 < figures["min"] <= figures["p50"] <= figures["p95"] <= figures["max"]
    for row in rows:
        assert row["server_upload_ms"] > 0 and row["server_segment_ms"] > 0 and row["browser_ms"] > 0
        assert row["provider"] == "CPU" and row["variant"] == "fp32"
    visits = results["explore_visits"]
    assert [visit["cold"] for visit in visits] == [True, False]
    assert all(visit["page_ms"] > 0 and visit["python_wall_ms"] > 0 for visit in visits)
    assert results["explore"]["cold_ms"] > 0 and results["explore"]["warm"]["p50"] > 0
    assert results["wall_seconds"] > 0 and results["chromium"]

    table = format_table(results)
    for header in ("Machine: ", "onnxruntime", "dash", "| Segment upload | p50 ms | p95 ms | min ms | max ms |",
                   "server: segment callback (request timing)", "browser-visible: file picked -> mask layer src set",
                   "| Explore (demo/val) until the class bars and the summary show | in page ms | Python wall ms |",
                   "| target | measured | met |", "other processes used"):
        assert header in table
    assert table.count("| yes |") + table.count("| no |") == 3
