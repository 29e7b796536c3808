"""The own-dataset benchmark runs end to end at a tiny size; its structure is checked, never its timings.

It runs as its own process (as it is meant to be run): Playwright's sync API cannot start inside a
test session whose browser fixture already holds one.
"""

from __future__ import annotations

import pytest

from benchmarks import own_dataset
from tests.benchmarks.scripts import run_script

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.extended]


def test_run_measures_every_case_and_reports_every_target(tmp_path):
    arguments = ["--images", "120", "--annotations-per-image", "4", "--switches", "2", "--reloads", "2"]
    results, output = run_script("own_dataset.py", arguments, tmp_path / "own.json")
    assert results["cli_cold"]["exit"] == 0 and results["cli_cold"]["cached"] is False
    assert results["cli_cold"]["label_map"] == "all"  # class_1 ... class_80 are not COCO's names
    assert results["cli_cold"]["images"] == 120 == results["counts"]["images"]
    assert results["pycocotools"]["annotations"] == results["counts"]["annotations"]
    app = results["app"]
    assert 0 < app["first"]["progress_ms"] <= app["first"]["ready_ms"]
    assert app["first"]["server_peak_rss_mb"] > 0
    assert app["switch"]["n"] == 2 and app["reload"]["n"] == 2
    checks = own_dataset.target_checks(results)
    assert [name for name, _measured, _holds in checks] == [
        "progress visible",
        "first Explore total",
        "switching split p50",
        "reload p50",
        "server peak RSS while the job runs",
    ]
    table = own_dataset.format_table(results)
    assert table.count("\n| ") == 14 and "categories class_1 ... class_80" in table
    assert table in output
