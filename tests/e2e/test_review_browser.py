"""Review in a real browser: rank a split, open the most uncertain image in Annotate pre-filled, correct and
save it, move on with N, and find it marked done at the end of the queue."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.conftest import _serve, assert_fits_window
from tests.e2e.test_annotate_browser import paint_stroke
from tests.e2e.test_prepare_browser import _choose

pytestmark = [pytest.mark.browser]

RANK_TIMEOUT_MS = 240_000  # 80 demo images through two tiny models on a slow 2-core machine


@pytest.fixture
def review_server(tmp_path_factory, prepared_workspace, exported_models):
    """A server over a private copy of the session's workspace (its models), so saves stay here."""
    home = tmp_path_factory.mktemp("e2e-review-home") / "workspace"
    shutil.copytree(
        prepared_workspace.root, home, ignore=shutil.ignore_patterns("locks", "cache", "rankings")
    )
    yield from _serve(home, tmp_path_factory.mktemp("e2e-review-server") / "server.log")


def _queue_files(page) -> list[str]:
    return page.locator("#review-queue .review-card [data-file]").evaluate_all(
        "nodes => nodes.map(node => node.dataset.file)"
    )


def test_rank_open_prefilled_save_next_and_see_it_done(review_server, page, exported_models, screenshot_dir):
    model = exported_models[0]
    page.goto(review_server.url + "/review")
    _choose(page, "review-model", model)
    page.locator("#review-queue", has_text="is not ranked by").wait_for(timeout=30_000)
    page.get_by_role("button", name="Rank").click()
    page.locator("#review-message", has_text="Ranked 80 images by entropy").wait_for(timeout=RANK_TIMEOUT_MS)

    cards = page.locator("#review-queue .review-card")
    cards.nth(79).wait_for(timeout=30_000)
    scores = [float(text) for text in page.locator("#review-queue .review-score").all_inner_texts()]
    assert len(scores) == 80 and scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    queue = _queue_files(page)

    cards.first.click()  # client-side link into Annotate, pre-filled with the ranking model
    page.locator("#annotate-message", has_text=f"Pre-filled with {model}").wait_for(timeout=60_000)
    assert page.locator("#annotate-image").inner_text().strip() == queue[0]
    paint_stroke(page, "person", (0.3, 0.3), (0.5, 0.6))
    page.keyboard.press("Control+s")
    page.locator("#annotate-message", has_text="Saved").wait_for(timeout=30_000)

    page.keyboard.press("n")  # the next image of the queue that is not corrected yet
    page.locator("#annotate-message", has_text=f"Pre-filled with {model}").wait_for(timeout=60_000)
    page.wait_for_function(
        "name => document.querySelector('#annotate-image').innerText.trim() === name", arg=queue[1]
    )

    page.goto(review_server.url + "/review")
    _choose(page, "review-model", model)
    page.locator("#review-queue .review-done").wait_for(timeout=30_000)
    reordered = _queue_files(page)
    assert reordered[0] == queue[1] and reordered[-1] == queue[0]  # corrected: marked, at the end
    assert page.locator("#review-queue .review-done [data-file]").get_attribute("data-file") == queue[0]
    assert "1 corrected, at the end" in page.locator("#review-summary").inner_text()

    page.locator("#review-maps").check()  # the uncertainty maps instead of the images
    page.locator("#review-queue.review-show-maps").wait_for(timeout=10_000)
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "review.png"))
    page.keyboard.press("j")  # keys move along the queue: focus the first card
    assert page.evaluate("document.activeElement.querySelector('[data-file]').dataset.file") == queue[1]
    assert page.problems.all() == []
