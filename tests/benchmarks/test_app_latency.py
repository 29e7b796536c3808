"""The app latency benchmark runs end to end at its smallest settings (figures are not asserted, only that
they exist).

The script runs as its own process, as a user runs it: Playwright's sync API refuses to start inside a
process where another test's browser session is still open (two pytest-xdist workers share out files).
"""

from __future__ import annotations

import shutil

import pytest

from cocoseg.pipeline.inference.predictor import provider_label, usable_providers
from tests.benchmarks.scripts import run_script

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.extended]


def test_app_latency_measures_segment_uploads_and_explore_visits(tmp_path):
    from benchmarks.app_latency import FIRST_VISITS, SEGMENT_LABELS, format_table

    arguments = ["--uploads", "2", "--size", "64", "--explore-repeats", "1", "--wait-quiet", "0"]
    results, output = run_script("app_latency.py", arguments, tmp_path / "latency.json")
    assert "| Segment upload |" in output
    rows = results["segment_rows"]
    assert [row["warmup"] for row in rows] == [True, False, False]
    assert len({row["name"] for row in rows}) == 3  # a new file each time
    for key in SEGMENT_LABELS:
        figures = results["segment"][key]
        assert figures["n"] == 2 and 0 < figures["min"] <= figures["p50"] <= figures["p95"] <= figures["max"]
    for row in rows:
        assert row["server_upload_ms"] > 0 and row["server_segment_ms"] > 0 and row["browser_ms"] > 0
        assert row["provider"] == provider_label(usable_providers().usable[0]) and row["variant"] == "fp32"
    for arm in ("app", "full"):  # the app as make sets it up, and the same app with Dash's full plotly.js
        visits = results["explore_visits"][arm]
        assert {kind: len(rows) for kind, rows in visits.items()} == {
            "first": FIRST_VISITS,
            "returning": 1,
            "private": 1,
        }
        assert all(
            visit["page_ms"] > 0 and visit["python_wall_ms"] > 0 for rows in visits.values() for visit in rows
        )
    for key in ("explore", "explore_full_plotly"):
        assert all(results[key][kind]["p50"] > 0 for kind in ("first", "returning", "private"))
    assert results["explore_statistics_ms"] > 0
    assert results["plotly_bytes"]["full"] > 4_000_000  # Dash's own copy
    if shutil.which("npm"):
        assert results["plotly_bytes"]["app"] < 2_000_000  # the cartesian bundle make installs
    else:  # make could not install it: the app serves Dash's full bundle and the ratio is about 1
        assert results["plotly_bytes"]["app"] == results["plotly_bytes"]["full"]
    assert results["wall_seconds"] > 0 and results["chromium"]

    table = format_table(results)
    for header in (
        "Machine: ",
        "onnxruntime",
        "dash",
        "| Segment upload | p50 ms | p95 ms | min ms | max ms |",
        "server: segment callback (request timing)",
        "browser-visible: file picked -> mask layer src set",
        (
            "| Explore (demo/val) until the class bars and the summary show, in page ms "
            "| app | app with the full plotly.js | ratio |"
        ),
        "| plotly.js served |",
        "| target | measured | met |",
        "other processes used",
    ):
        assert header in table
    assert table.count("| yes |") + table.count("| no |") == 4
