"""The correction loop in a real browser: pre-fill, correct, save, Fine-tune on corrections, then Compare
lists parent and child (the child trained, exported and evaluated by the round's job process)."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.conftest import _serve
from tests.e2e.test_annotate_browser import open_first_image, paint_stroke
from tests.e2e.test_prepare_browser import _choose

pytestmark = [pytest.mark.browser]

ROUND_TIMEOUT_MS = 480_000  # prepare 160 images, one epoch, export, two evaluations, on a slow 2-core machine


@pytest.fixture
def loop_server(tmp_path_factory, prepared_workspace, exported_models):
    """A server over a private copy of the session's workspace: its prepared demo, runs and models."""
    home = tmp_path_factory.mktemp("e2e-loop-home") / "workspace"
    shutil.copytree(prepared_workspace.root, home, ignore=shutil.ignore_patterns("locks", "cache"))
    yield from _serve(home, tmp_path_factory.mktemp("e2e-loop-server") / "server.log")


def test_fine_tune_on_corrections_in_one_click_then_compare_parent_and_child(
    loop_server, page, exported_models
):
    parent = exported_models[0]
    page.goto(loop_server.url + "/annotate")
    page.get_by_role("button", name="Fine-tune on corrections").click()
    page.locator("#annotate-finetune-message", has_text="no saved corrections of demo").wait_for(
        timeout=30_000
    )

    open_first_image(page, loop_server.url)
    _choose(page, "annotate-model", parent)
    page.get_by_role("button", name="Pre-fill").click()
    page.locator("#annotate-message", has_text=f"Pre-filled with {parent}").wait_for(timeout=60_000)
    paint_stroke(page, "dog", (0.2, 0.3), (0.6, 0.4))
    page.keyboard.press("Control+s")
    page.locator("#annotate-message", has_text="Saved").wait_for(timeout=30_000)

    page.get_by_role("button", name="Fine-tune on corrections").click()
    page.locator("#annotate-finetune-message", has_text="Round 1: 1 corrected images of demo").wait_for(
        timeout=30_000
    )
    result = page.locator("#annotate-finetune-result", has_text="Round 1:")
    result.wait_for(timeout=ROUND_TIMEOUT_MS)
    text = result.inner_text()
    assert f"(parent {parent}:" in text and "val mIoU on demo/val" in text
    child = text.split("Round 1: ", 1)[1].split(" reaches", 1)[0]
    assert (loop_server.home / "models" / child / "model.onnx").is_file()
    assert list((loop_server.home / "models" / child).rglob("*val*.json")), "the child was evaluated"

    page.get_by_role("link", name="Compare parent and child").click()
    page.locator("#compare-members", has_text=child).wait_for(timeout=30_000)
    assert parent in page.locator("#compare-members").inner_text()
    assert page.problems.all() == []
