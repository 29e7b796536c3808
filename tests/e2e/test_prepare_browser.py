"""Prepare page in headless Chromium: a refused size, a real preparation job watched live, the new set listed,
and the TensorFlow augmentation preview re-rolled."""

from __future__ import annotations

import time

import pytest

from cocoseg.app.ids import Prepare
from tests.e2e.conftest import _serve, assert_fits_window

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# a limit on the outcome, not on speed: the throttled job takes 40 s or more (far more when busy)
JOB_TIMEOUT_S = 600
# each progress step (one per image) holds 0.25 s: 160 images give the page, which polls every second,
# 40 s or more of a moving bar on any machine
THROTTLE_SECONDS = "0.05"


@pytest.fixture(scope="module")
def prepare_server(tmp_path_factory):
    """A server of its own: the set this test prepares must not show up in other tests' empty workspace.

    Its jobs are throttled: preparing the demo takes 3.5 s on a fast machine, too fast to watch
    a bar move, so every progress step (one per image, 160) is held for 50 ms: 8 s or more, and
    the page polls every second.
    """
    yield from _serve(
        tmp_path_factory.mktemp("e2e-prepare-home"),
        tmp_path_factory.mktemp("e2e-prepare-server") / "server.log",
        COCOSEG_JOB_THROTTLE_SECONDS=THROTTLE_SECONDS,
    )


def _choose(page, dropdown: str, option: str) -> None:
    page.locator(f"#{dropdown}").click()
    page.get_by_role("option").filter(has_text=option).first.click()
    page.keyboard.press("Escape")  # close the menu so it cannot cover the next control


def _watch_bar(page, card) -> list[float]:
    """The job card's progress (percent) every 0.1 s until the job has ended."""
    seen = []
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        bar = card.locator(".progress-bar")
        if bar.count():
            seen.append(float(bar.first.get_attribute("aria-valuenow") or 0))
        state = card.locator(".job-status").inner_text().lower()
        if state in ("finished", "failed", "cancelled", "interrupted"):
            return seen
        page.wait_for_timeout(100)
    raise AssertionError(f"the job did not end within {JOB_TIMEOUT_S} s; progress seen: {seen[-10:]}")


def test_prepare_demo_live_progress_new_set_and_augmentation_preview(page, prepare_server, screenshot_dir):
    response = page.goto(prepare_server.url + "/prepare", wait_until="networkidle")
    assert response is not None and response.status == 200
    page.locator(".page-header h2", has_text="Prepare").wait_for()
    _choose(page, Prepare.DATASET, "demo")
    _choose(page, Prepare.LABELS, "voc21")
    note = page.locator(f"#{Prepare.DISTRIBUTION_NOTE}")

    # a size that is not a multiple of 32 is refused beside the field, and nothing starts
    page.locator(f"#{Prepare.SIZE}").fill("100")
    page.locator(f"#{Prepare.SIZE}").press("Tab")
    note.filter(has_text="multiple of 32").wait_for()
    page.locator(f"#{Prepare.START}").click()
    page.locator(f"#{Prepare.SIZE}-feedback", has_text="multiple of 32").wait_for(state="visible")
    assert "is-invalid" in page.locator(f"#{Prepare.SIZE}").get_attribute("class")
    page.locator(f"#{Prepare.FORM_MESSAGE}", has_text="Not started").wait_for()

    page.locator(f"#{Prepare.SIZE}").fill("64")
    page.locator(f"#{Prepare.SIZE}").press("Tab")
    note.filter(has_text="Start writes demo-voc21-64-").wait_for()
    assert "train: 64 images, 16 below the labelled-area filter." in note.inner_text()
    page.locator(f"#{Prepare.DISTRIBUTION} .bars path").first.wait_for(state="attached")

    page.locator(f"#{Prepare.START}").click()
    page.locator(f"#{Prepare.FORM_MESSAGE}", has_text="Queued prepare-").wait_for()
    assert page.locator(f"#{Prepare.SIZE}-feedback").inner_text() == ""
    card = page.locator(".prepare-job-card").first
    card.wait_for()
    seen = _watch_bar(page, card)
    assert card.locator(".job-status").inner_text().lower() == "finished", card.inner_text()
    assert any(0 < value < 100 for value in seen), f"the bar never showed a partial value: {seen}"
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    assert card.locator(".progress-bar").inner_text() == "160/160 images" and "images/s" in card.inner_text()
    page.locator(f"#{Prepare.JOB_MESSAGE}", has_text="is ready").wait_for()
    sets = page.locator(f"#{Prepare.SETS}")
    sets.locator("summary", has_text="demo-voc21-64-").wait_for()
    assert "voc21 (21 classes)" in sets.inner_text() and "train 64 · val 80" in sets.inner_text()
    assert any(
        (path / "manifest.json").is_file()
        for path in (prepare_server.home / "prepared").glob("demo-voc21-64-*")
    )

    # another job, cancelled while it runs: it stops and publishes nothing
    page.locator(f"#{Prepare.SIZE}").fill("128")
    page.locator(f"#{Prepare.SIZE}").press("Tab")
    note.filter(has_text="Start writes demo-voc21-128-").wait_for()
    page.locator(f"#{Prepare.START}").click()
    page.locator(f"#{Prepare.FORM_MESSAGE}", has_text="into demo-voc21-128-").wait_for()
    running = page.locator(".prepare-job-card", has_text="128 px")
    running.locator(".job-status", has_text="running").wait_for(timeout=60_000)
    running.get_by_role("button", name="Cancel").click()
    page.locator(f"#{Prepare.JOB_MESSAGE}", has_text="was cancelled; nothing was published").wait_for(
        timeout=60_000
    )
    running.locator(".job-status", has_text="cancelled").wait_for()
    assert not list((prepare_server.home / "prepared").glob("demo-voc21-128-*"))

    # the augmentation preview: 8 pictures from a TensorFlow job; Re-roll draws 8 new ones
    pictures = page.locator(f"#{Prepare.PREVIEW} img.preview-cell")
    page.locator(f"#{Prepare.REROLL}").click()
    pictures.nth(7).wait_for(state="visible", timeout=120_000)
    assert pictures.count() == 8
    first = [pictures.nth(index).get_attribute("src") for index in range(8)]
    assert all(source.startswith("data:image/jpeg;base64,") for source in first) and len(set(first)) > 1
    page.locator(f"#{Prepare.REROLL}", has_text="Re-roll").wait_for()
    page.wait_for_function(f"!document.getElementById('{Prepare.REROLL}').disabled")
    page.locator(f"#{Prepare.REROLL}").click()
    page.wait_for_function(
        "([id, before]) => { const shown = [...document.querySelectorAll(`#${id} img.preview-cell`)]"
        ".map(img => img.src);"
        " return shown.length === 8 && shown.every((source, index) => source !== before[index]); }",
        arg=[Prepare.PREVIEW, first],
        timeout=120_000,
    )
    assert "seed" in page.locator(f"#{Prepare.PREVIEW_NOTE}").inner_text()
    page.set_viewport_size(
        {"width": 1400, "height": 1900}
    )  # the content pane scrolls: a tall window shows all of it
    page.evaluate("document.querySelector('.content').scrollTo(0, 0)")
    page.wait_for_timeout(300)
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "prepare.png"), full_page=True)
    assert "Traceback" not in page.content()
    assert page.problems.all() == []
