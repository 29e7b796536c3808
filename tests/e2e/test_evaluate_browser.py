"""Evaluate page in headless Chromium: leaderboard with protocol, a background evaluation, an ensemble from
rows.
"""

from __future__ import annotations

import pytest

from cocoseg.app.ids import Evaluate
from tests.e2e.conftest import assert_fits_window, assert_labels_inside

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_leaderboard_evaluation_job_and_ensemble_from_rows(
    page, model_server, exported_models, screenshot_dir
):
    response = page.goto(model_server.url + "/evaluate", wait_until="networkidle")
    assert response is not None and response.status == 200
    table = page.locator(f"#{Evaluate.TABLE}")
    table.locator("td", has_text=exported_models[0]).first.wait_for(state="visible")
    text = table.inner_text()
    for name in exported_models:
        assert name in text
    assert "int8" in text and "fp16" in text
    page.locator(
        f"#{Evaluate.PROTOCOL}", has_text="Protocol: demo/val, 80 images at original image size"
    ).wait_for()
    page.locator(f"#{Evaluate.IOU} .main-svg").first.wait_for(state="visible")

    # clicking a row shows that row's confusion matrix
    table.locator("td", has_text=exported_models[1]).first.click()
    page.locator(f"#{Evaluate.CONFUSION} .gtitle", has_text=exported_models[1]).wait_for()
    for graph in (Evaluate.IOU, Evaluate.CONFUSION):  # model and class names beside the rows, whole
        assert_labels_inside(page, graph)

    # the ensemble has no result yet: evaluate it as a background job
    page.locator(f"#{Evaluate.PENDING_MODEL}").click()
    page.get_by_role("option").filter(has_text="pair-mean").first.click()
    page.keyboard.press("Escape")  # close the menu so it cannot cover the button
    page.locator(f"#{Evaluate.RUN}").click()
    page.locator(f"#{Evaluate.RUN_MESSAGE}", has_text="pair-mean: mIoU").wait_for(timeout=120_000)
    table.locator("td", has_text="pair-mean").first.wait_for(state="visible")

    # an ensemble from two selected rows
    checkboxes = table.locator("input[type=checkbox]")
    rows_text = table.locator("tbody tr").all_inner_texts()
    picked = 0
    for index, row_text in enumerate(rows_text[1:] if rows_text and "Model" in rows_text[0] else rows_text):
        if "fp32" in row_text and "exported" in row_text and picked < 2:
            checkboxes.nth(index).check()
            picked += 1
    assert picked == 2
    page.locator(f"#{Evaluate.ENSEMBLE_NAME}").fill("from-rows")
    page.locator(f"#{Evaluate.ENSEMBLE_STRATEGY} input[id$='_input_vote']").check()
    page.locator(f"#{Evaluate.ENSEMBLE_CREATE}").click()
    page.locator(f"#{Evaluate.ENSEMBLE_MESSAGE}", has_text="ensemble from-rows created (vote of").wait_for(
        timeout=60_000
    )
    assert (model_server.home / "ensembles" / "from-rows" / "model.onnx").is_file()
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "evaluate.png"), full_page=True)
    assert page.problems.all() == []
