"""The browser tests' problem collector drops only aborted requests the user could not see fail: those of a
document the page has left, Dash background-callback requests and abandoned display pictures."""

import pytest

from tests.e2e.conftest import PageProblems, is_background_callback_request

POLL = "http://127.0.0.1:1/_dash-update-component?endId=a~b&cacheKey=c~d&job=22589~e"


def test_an_aborted_background_poll_is_not_a_problem():
    problems = PageProblems()
    problems.record_failed_request(POLL, "net::ERR_ABORTED")
    assert problems.all() == []


def test_an_abandoned_display_picture_is_not_a_problem():
    problems = PageProblems()
    problems.record_failed_request(
        "http://127.0.0.1:1/uploads/JKi-yNaHkA2DQV1FT171Ug.jpg", "net::ERR_ABORTED"
    )
    assert problems.all() == []
    problems.record_failed_request("http://127.0.0.1:1/uploads/a/b.jpg", "net::ERR_ABORTED")
    problems.record_failed_request("http://127.0.0.1:1/uploads/key.jpg", "net::ERR_CONNECTION_RESET")
    assert len(problems.all()) == 2


def test_other_failures_are_kept():
    problems = PageProblems()
    problems.record_failed_request(POLL, "net::ERR_CONNECTION_RESET")  # the server went away mid-poll
    problems.record_failed_request(
        "http://127.0.0.1:1/_dash-update-component", "net::ERR_ABORTED"
    )  # a plain callback
    problems.record_failed_request("http://127.0.0.1:1/_dash-update-component?jobs=1", "net::ERR_ABORTED")
    problems.record_failed_request("http://127.0.0.1:1/assets/app.css?job=1", "net::ERR_ABORTED")
    assert len(problems.all()) == 4


BASE = "http://127.0.0.1:1/_dash-update-component"


@pytest.mark.parametrize(
    "query",
    [
        "job=1",
        "endId=a~b",
        "cacheKey=c~d",
        "oldJob=7",
        "cancelJob=7",  # each key alone
        "endId=a~b&cacheKey=c~d",
        "endId=a~b&cacheKey=c~d&job=22589~e",  # a poll, with and without job
        "endId=a~b&oldJob=7",
        "endId=a~b&oldJob=7&cancelJob=8",
        "cacheKey=&job=",  # empty values still name the key
    ],
)
def test_every_background_callback_key_is_recognised(query):
    assert is_background_callback_request(f"{BASE}?{query}")
    problems = PageProblems()
    problems.record_failed_request(f"{BASE}?{query}", "net::ERR_ABORTED")
    assert problems.all() == []


@pytest.mark.parametrize(
    "url",
    [
        BASE,
        f"{BASE}?",
        f"{BASE}?jobs=1",
        f"{BASE}?x=job%3D1",
        f"{BASE}?x=endId",
        f"{BASE}?JOB=1",
        f"{BASE}#job=1",
        "http://127.0.0.1:1/assets/app.css?endId=a",
        "http://127.0.0.1:1/_dash-layout?job=1",
    ],
)
def test_other_requests_are_not_background_callbacks(url):
    assert not is_background_callback_request(url)
    problems = PageProblems()
    problems.record_failed_request(url, "net::ERR_ABORTED")
    assert problems.all() == [f"{url}: net::ERR_ABORTED"]


@pytest.mark.parametrize(
    "failure", ["net::ERR_CONNECTION_REFUSED", "net::ERR_CONNECTION_RESET", "net::ERR_FAILED", None]
)
@pytest.mark.parametrize("query", ["job=1", "endId=a", "cacheKey=c&endId=a", "oldJob=7&endId=a"])
def test_a_background_callback_that_did_not_abort_is_a_problem(query, failure):
    problems = PageProblems()
    problems.record_failed_request(f"{BASE}?{query}", failure)
    assert problems.all() == [f"{BASE}?{query}: {failure}"]


def test_an_abort_counts_only_while_its_document_is_the_page_s():
    problems = PageProblems()
    left_behind, current = object(), object()
    problems.request_issued(left_behind)
    problems.record_failed_request("http://127.0.0.1:1/assets/a.js", "net::ERR_ABORTED", left_behind)
    assert problems.all() == ["http://127.0.0.1:1/assets/a.js: net::ERR_ABORTED"]
    problems.document_received()  # the cancel was reported before the new document: judged now
    assert problems.all() == []
    problems.request_issued(current)
    problems.record_failed_request("http://127.0.0.1:1/assets/b.js", "net::ERR_ABORTED", current)
    assert problems.all() == ["http://127.0.0.1:1/assets/b.js: net::ERR_ABORTED"]


def test_a_connection_error_counts_whichever_document_issued_it():
    problems = PageProblems()
    request = object()
    problems.request_issued(request)
    problems.document_received()
    problems.record_failed_request("http://127.0.0.1:1/assets/a.js", "net::ERR_CONNECTION_RESET", request)
    assert problems.all() == ["http://127.0.0.1:1/assets/a.js: net::ERR_CONNECTION_RESET"]


SITE = "http://cocoseg.invalid"


def serve_pages(page) -> None:
    """Two pages answered by the browser's router; the first one's script is never answered."""
    page.route(f"{SITE}/slow.js", lambda route: None)
    page.route(f"{SITE}/broken.js", lambda route: route.abort("aborted"))
    for path, script in [("/", "/slow.js"), ("/next", "/broken.js")]:
        page.route(f"{SITE}{path}", answer_with_script(script))


def answer_with_script(script: str):
    body = f'<script src="{script}"></script>'
    return lambda route: route.fulfill(content_type="text/html", body=body)


def test_a_script_cancelled_by_leaving_the_page_is_not_a_problem_but_one_aborted_on_the_page_is(page):
    serve_pages(page)
    with page.expect_request(f"{SITE}/slow.js"):
        page.goto(f"{SITE}/", wait_until="commit")
    page.goto(f"{SITE}/next")  # leaves /slow.js in flight: Chromium cancels it
    aborted = [url for url, _ in page.problems.aborted]
    # Both cancels were seen (Chromium may also cancel the first document's own request, which
    # it was still reading while the parser waited for /slow.js: another abort of a left document).
    assert f"{SITE}/slow.js" in aborted and f"{SITE}/broken.js" in aborted, aborted
    assert page.problems.all() == [f"{SITE}/broken.js: net::ERR_ABORTED"]
