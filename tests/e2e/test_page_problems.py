"""The browser tests' problem collector drops only abandoned background polls."""

from tests.e2e.conftest import PageProblems

POLL = "http://127.0.0.1:1/_dash-update-component?endId=a~b&cacheKey=c~d&job=22589~e"


def test_an_aborted_background_poll_is_not_a_problem():
    problems = PageProblems()
    problems.record_failed_request(POLL, "net::ERR_ABORTED")
    assert problems.all() == []


def test_other_failures_are_kept():
    problems = PageProblems()
    problems.record_failed_request(POLL, "net::ERR_CONNECTION_RESET")  # the server went away mid-poll
    problems.record_failed_request("http://127.0.0.1:1/_dash-update-component", "net::ERR_ABORTED")  # a plain callback
    problems.record_failed_request("http://127.0.0.1:1/_dash-update-component?jobs=1", "net::ERR_ABORTED")
    problems.record_failed_request("http://127.0.0.1:1/assets/app.css?job=1", "net::ERR_ABORTED")
    assert len(problems.all()) == 4
