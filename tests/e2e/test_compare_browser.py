"""Compare page in headless Chromium: member and ensemble panels with IoU, linked zoom, metrics."""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from cocoseg.app.components.figures import short_label
from cocoseg.app.ids import Compare
from tests.e2e.conftest import assert_fits_window

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RANGES = (
    "Array.from(document.querySelectorAll('.compare-panel .js-plotly-plot'))"
    ".map(p => JSON.stringify(p.layout.xaxis.range))"
)


def test_members_ensemble_and_disagreement_with_linked_zoom(
    page, model_server, exported_models, screenshot_dir
):
    response = page.goto(model_server.url + "/compare", wait_until="networkidle")
    assert response is not None and response.status == 200
    titles = page.locator(f"#{Compare.GRID} .gtitle")
    titles.nth(5).wait_for(state="visible")
    texts = titles.all_text_contents()  # SVG text has no innerText
    assert texts[0].startswith("original · ") and texts[1].startswith("ground truth")
    for name in exported_models:  # a run's name cut in the middle, so its mIoU stays in view
        assert any(text.startswith(f"{short_label(name, 22)} · mIoU ") for text in texts)
    assert any(text.startswith("ensemble (mean) · mIoU ") for text in texts)
    assert texts[-1].startswith("disagreement · ")
    past_the_panel = page.evaluate(
        f"""() => [...document.querySelectorAll("#{Compare.GRID} .gtitle")].filter((title) => {{
            const cell = title.closest(".compare-cell").getBoundingClientRect();
            return title.getBoundingClientRect().right > cell.right + 1;
        }}).map((title) => title.textContent)"""
    )
    assert past_the_panel == []

    page.locator(f"#{Compare.STRATEGY}").get_by_text("vote").click()
    page.locator(f"#{Compare.GRID} .gtitle", has_text="ensemble (vote)").wait_for()

    page.wait_for_load_state("networkidle")  # the vote's panels drawn, not only their titles
    before = page.evaluate(RANGES)
    # a plain wheel over a panel scrolls the page (Plotly's scroll zoom would take it and scroll nothing)
    box = page.locator(".compare-panel .js-plotly-plot").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 300)
    page.wait_for_function("document.querySelector('.content').scrollTop > 0", timeout=5_000)
    assert page.evaluate(RANGES) == before
    page.evaluate("document.querySelector('.content').scrollTop = 0")
    zoomed = f"(() => {{ const r = {RANGES}; return r[0] !== {before[0]!r} && r.every(x => x === r[0]); }})()"
    for _attempt in range(10):  # a wheel that lands while Plotly redraws a panel zooms nothing: scroll again
        box = page.locator(".compare-panel .js-plotly-plot").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.keyboard.down("Control")  # Ctrl + wheel zooms the panel under the pointer
        page.mouse.wheel(0, -400)
        page.keyboard.up("Control")
        try:
            page.wait_for_function(zoomed, timeout=3_000)
            break
        except PlaywrightTimeoutError:
            continue
    ranges = page.evaluate(RANGES)
    assert ranges[0] != before[0] and len(set(ranges)) == 1, ranges  # zoomed, and every panel follows

    metrics = page.locator(f"#{Compare.METRICS}")
    for name in exported_models:
        metrics.locator("td", has_text=name).first.wait_for()
    table_right, column_right = page.evaluate(
        f"""() => {{
            const table = document.querySelector("#{Compare.METRICS} table");
            return [table.getBoundingClientRect().right, table.parentElement.getBoundingClientRect().right];
        }}"""
    )
    assert table_right <= column_right + 1  # long run names break inside the table, not under the heatmap
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "compare.png"), full_page=True)
    assert page.problems.all() == []
