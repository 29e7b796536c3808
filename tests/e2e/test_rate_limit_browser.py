"""The job-start rate limit as a person meets it: a refused start says so on the page, nothing runs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from cocoseg.app.ids import Home
from tests.e2e.conftest import _serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def limited_server(tmp_path):
    """A server that allows one job start a minute per client (a burst of one)."""
    yield from _serve(
        tmp_path / "home",
        tmp_path / "server.log",
        COCOSEG_JOB_STARTS_PER_MINUTE="1",
        COCOSEG_JOB_START_BURST="1",
    )


def test_a_start_over_the_rate_shows_a_notice_with_the_wait(limited_server, page):
    page.goto(limited_server.url + "/", wait_until="networkidle")
    refused = []
    page.on("response", lambda response: refused.append(response.url) if response.status == 429 else None)
    button = page.locator(f"#{Home.DEVICE_CHECK}")
    button.click()  # the one start allowed: TensorFlow's device check in a child process
    expect(button).to_have_text("Check again", timeout=120_000)  # the result replaced the button
    expect(button).to_be_enabled(timeout=30_000)
    assert page.locator("#cocoseg-rate-notice").count() == 0 and refused == []
    button.click()  # over the rate: the server answers 429 and starts nothing
    notice = page.locator("#cocoseg-rate-notice")
    notice.wait_for(timeout=30_000)
    assert refused, "the second start was not refused"
    text = notice.inner_text()
    assert "Too many job starts" in text and "nothing was started" in text
    assert re.search(r"wait \d+ s and try again", text)  # the wait the server gave in Retry-After
    problems = [problem for problem in page.problems.all() if "429" not in problem]
    assert problems == []
