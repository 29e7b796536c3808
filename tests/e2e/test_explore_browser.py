"""Explore page in headless Chromium: demo statistics, charts, the image browser and an image's detail."""

from __future__ import annotations

import urllib.parse

import pytest

from cocoseg.app.ids import Explore
from tests.e2e.conftest import assert_fits_window

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_demo_charts_filtered_browser_and_image_detail(page, server, screenshot_dir):
    response = page.goto(server.url + "/explore", wait_until="networkidle")
    assert response is not None and response.status == 200
    summary = page.locator(f"#{Explore.SUMMARY}")
    summary.locator(".summary-value", has_text="80").first.wait_for()
    assert "815" in summary.inner_text()  # demo/val annotations
    bars = page.locator(f"#{Explore.CLASSES} .bars path")
    bars.first.wait_for(state="attached")
    assert bars.count() >= 40  # coco80: every class present in the val split has a bar
    page.locator(f"#{Explore.METRIC}").get_by_text("pixel share").click()
    page.locator(f"#{Explore.CLASSES} .gtitle", has_text="share of all pixels").wait_for()
    page.locator(f"#{Explore.OPTIONS}").get_by_text("log scale").click()
    page.wait_for_function(
        f"document.querySelector('#{Explore.CLASSES} .js-plotly-plot').layout.yaxis.type === 'log'"
    )
    # the first view comes with the page; a new label map still redraws the cards and the chart
    page.locator(f"#{Explore.LABELS}").click()
    page.get_by_role("option", name="voc21").click()
    summary.get_by_text("label map voc21: 21 classes").wait_for()
    page.wait_for_function(f"document.querySelectorAll('#{Explore.CLASSES} .bars path').length <= 21")
    page.locator(f"#{Explore.LABELS}").click()
    page.get_by_role("option", name="coco80").click()
    summary.get_by_text("label map coco80: 81 classes").wait_for()

    page.get_by_role("tab", name="Co-occurrence").click()
    page.locator(f"#{Explore.COOCCURRENCE} .gtitle", has_text="co-occurrence").wait_for()
    page.get_by_role("tab", name="Images").click()
    label = page.locator(f"#{Explore.PAGE_LABEL}")
    label.filter(has_text="80 images · page 1 of 7").wait_for()
    page.locator(f"#{Explore.FILTER}").click()
    page.keyboard.type("person")
    page.keyboard.press("Enter")
    label.filter(has_text="49 images · page 1 of 5").wait_for()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowRight")  # keyboard shortcut: next page
    label.filter(has_text="page 2 of 5").wait_for()
    page.locator(".thumbnail").first.click()
    detail = page.locator(f"#{Explore.DETAIL} img")
    detail.nth(2).wait_for(state="attached")
    assert detail.nth(1).get_attribute("src").startswith("data:image/png;base64,")
    assert "person" in page.locator(f"#{Explore.LEGEND}").inner_text()
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "explore.png"), full_page=True)
    assert page.problems.all() == []


def test_a_split_whose_statistics_are_cached_starts_no_background_job(page, server):
    page.goto(server.url + "/explore", wait_until="networkidle")
    page.locator(f"#{Explore.SUMMARY} .summary-value", has_text="80").first.wait_for()  # cached from here on
    runner_requests = []
    jobs_before = sorted((server.home / "jobs").glob("stats-*"))  # the first visit's, which cached them

    def record(request):
        path = urllib.parse.urlsplit(request.url).path
        if path.endswith("/_dash-update-component") and Explore.STATS_RUN in (request.post_data or ""):
            runner_requests.append(request.url)

    page.on("request", record)
    page.reload(wait_until="networkidle")
    page.locator(f"#{Explore.SUMMARY} .summary-value", has_text="80").first.wait_for()
    # Dash requests every callback of the layout in the first batch, and "networkidle" is 500 ms with no
    # request in flight after it: a stats job would have been asked for, and queued in the registry, by now.
    assert runner_requests == []
    assert sorted((server.home / "jobs").glob("stats-*")) == jobs_before, "a statistics job was queued"
    assert page.problems.all() == []
