"""Every page loads in headless Chromium with no console errors, empty or with models; a screenshot of
each.
"""

from __future__ import annotations

import pytest

from cocoseg.app.ids import Prepare, Review, Segment
from tests.e2e.conftest import assert_fits_window, in_window

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = {
    "/": "Home",
    "/explore": "Explore",
    "/prepare": "Prepare",
    "/train": "Train",
    "/segment": "Segment",
    "/review": "Review",
    "/annotate": "Annotate",
    "/compare": "Compare",
    "/evaluate": "Evaluate",
}

# each page's first action with models in the workspace (no prepared set: Train shows no form), which must
# be in the window without scrolling the page or a panel
ACTIONS = {
    "/prepare": f"#{Prepare.START}",
    "/segment": f"#{Segment.UPLOAD}",
    "/review": f"#{Review.RANK}",
}


def _visit_all(page, server, screenshot_dir, prefix: str) -> list[str]:
    """Every page: loads, fits the window, its first action in view where it has one; returns those pages."""
    page.goto(server.url + "/", wait_until="networkidle")
    links = page.locator(".sidebar-links .nav-link")
    links.first.wait_for()
    checked = []
    assert sorted(links.all_inner_texts()) == sorted(PAGES.values())  # a new page needs a line here
    for path, title in PAGES.items():
        response = page.goto(server.url + path, wait_until="networkidle")
        assert response is not None and response.status == 200
        page.locator(".page-header h2", has_text=title).wait_for()
        page.wait_for_load_state("networkidle")
        assert "Traceback" not in page.content()
        assert_fits_window(page)
        if path in ACTIONS and page.locator(ACTIONS[path]).count():
            assert in_window(page, ACTIONS[path]), f"{title}: {ACTIONS[path]} is outside the window"
            checked.append(path)
        page.screenshot(path=str(screenshot_dir / f"{prefix}-{title.lower()}.png"), full_page=True)
    assert page.problems.all() == []
    return checked


def test_every_page_on_an_empty_workspace(page, server, screenshot_dir):
    _visit_all(page, server, screenshot_dir, "empty")
    page.goto(server.url + "/segment", wait_until="networkidle")
    assert "No models yet." in page.locator(".page-segment").inner_text()


def test_every_page_with_models(page, model_server, screenshot_dir):
    _visit_all(page, model_server, screenshot_dir, "models")


def test_every_page_fits_a_1280x720_window(page, model_server, screenshot_dir):
    """A 1920x1080 laptop at 150 % scaling: the panels still stay inside the window."""
    page.set_viewport_size({"width": 1280, "height": 720})
    assert _visit_all(page, model_server, screenshot_dir, "small") == list(ACTIONS)  # each page's action seen
