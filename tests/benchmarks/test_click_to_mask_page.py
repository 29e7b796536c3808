"""A tiny run of the page-path click-to-mask benchmark: every part of a call is timed."""

from __future__ import annotations

from benchmarks.click_to_mask_page import PARTS, format_table, run


def test_one_image_box_and_two_clicks_time_every_part():
    results = run(images=1, clicks=2)
    assert results["images"] == 1 and 2 <= results["calls"] <= 3
    for part in PARTS:
        assert results["first_call"][part]["p50_ms"] > 0
    assert results["parts"]["server"]["p50_ms"] >= results["parts"]["tool"]["p50_ms"]
    assert results["server_over_tool"] >= 1.0  # the page's path includes the tool
    table = format_table(results)
    assert "| server |" in table and "median" in table
