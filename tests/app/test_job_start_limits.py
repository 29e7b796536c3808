"""The per-client rate limit on job starts (``cocoseg.app.limits``): token buckets, the 429 a client over
its rate gets from a real background-callback request, and the Start button's message."""

from __future__ import annotations

import json
import sys

import pytest

from cocoseg.app import access
from cocoseg.app.ids import Evaluate
from cocoseg.app.limits import LIMITER_KEY, SHARED_JOB_STARTS_PER_MINUTE, JobStartLimiter, message
from cocoseg.app.main import create_app
from cocoseg.pipeline.core import settings as settings_module
from tests.app.test_main import _text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_one_start_per_interval_per_client():
    clock = Clock()
    limiter = JobStartLimiter(per_minute=6, burst=3, clock=clock)  # one token every 10 s
    assert [limiter.take("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("10.0.0.1") == pytest.approx(10.0)
    assert limiter.wait_seconds("10.0.0.1") == pytest.approx(10.0)
    assert limiter.take("10.0.0.2") == 0.0  # another client has its own bucket
    clock.now += 4
    assert limiter.take("10.0.0.1") == pytest.approx(6.0)  # a refused start takes nothing
    clock.now += 6
    assert limiter.wait_seconds("10.0.0.1") == 0.0 and limiter.take("10.0.0.1") == 0.0
    assert limiter.take("10.0.0.1") > 0
    clock.now += 3600
    taken = [limiter.take("10.0.0.1") for _ in range(4)]
    assert taken[:3] == [0.0, 0.0, 0.0] and taken[3] > 0  # an idle hour gives no more than the burst
    assert message(9.2) == "too many job starts; wait 10 s"
    assert message(0.1) == "too many job starts; wait 1 s"


def test_no_rate_means_no_limit():
    limiter = JobStartLimiter(per_minute=0, burst=1)
    assert all(limiter.take("a") == 0.0 for _ in range(100))


@pytest.mark.parametrize(
    ("host", "configured", "expected"),
    [
        ("127.0.0.1", None, 0.0),  # one local user: form changes start summaries and previews freely
        ("0.0.0.0", None, SHARED_JOB_STARTS_PER_MINUTE),  # others can reach it: the shared default
        ("127.0.0.1", "5", 5.0),  # a configured rate holds everywhere
        ("0.0.0.0", "0", 0.0),
    ],
)
def test_the_default_limit_applies_where_the_server_is_shared(
    monkeypatch, workspace, host, configured, expected
):
    if configured is not None:
        monkeypatch.setenv("COCOSEG_JOB_STARTS_PER_MINUTE", configured)
    settings_module.get_settings.cache_clear()
    settings = settings_module.get_settings()
    app = create_app(workspace, access.access_policy(host, 8050, settings, new_token=lambda: "t" * 32))
    try:
        assert app.server.config[LIMITER_KEY].rate * 60 == pytest.approx(expected)
    finally:
        app._background_manager.handle.close()


@pytest.fixture
def limited_app(monkeypatch, workspace):
    monkeypatch.setenv("COCOSEG_JOB_STARTS_PER_MINUTE", "1")
    monkeypatch.setenv("COCOSEG_JOB_START_BURST", "2")
    settings_module.get_settings.cache_clear()
    app = create_app(workspace)
    yield app
    app._background_manager.handle.close()


def _evaluate_request(app) -> dict:
    """The request the Evaluate button sends (a background callback), with no model chosen: the job returns
    at once."""
    key = next(key for key in app.callback_map if Evaluate.RUN_MESSAGE in key and "@" not in key)
    return {
        "output": key,
        "outputs": [
            {"id": Evaluate.RUN_MESSAGE, "property": "children"},
            {"id": Evaluate.REFRESH, "property": "data"},
        ],
        "inputs": [{"id": Evaluate.RUN, "property": "n_clicks", "value": 1}],
        "state": [
            {"id": Evaluate.PENDING_MODEL, "property": "value", "value": None},
            {"id": Evaluate.SPLIT, "property": "value", "value": None},
            {"id": Evaluate.REFRESH, "property": "data", "value": 0},
        ],
        "changedPropIds": [f"{Evaluate.RUN}.n_clicks"],
    }


def test_a_client_over_its_rate_gets_429_and_no_job_starts(limited_app):
    client = limited_app.server.test_client()
    assert client.get("/_dash-dependencies").status_code == 200  # Dash registers its callbacks on first use
    body = json.dumps(_evaluate_request(limited_app))

    def post(address: str):
        return client.post(
            "/_dash-update-component",
            data=body,
            content_type="application/json",
            environ_base={"REMOTE_ADDR": address},
        )

    first, second, third = (post("10.0.0.7") for _ in range(3))
    assert first.status_code == 200 and second.status_code == 200
    assert "job" in first.get_json() and "cacheKey" in first.get_json()  # a job was started
    assert third.status_code == 429
    assert "too many job starts; wait" in third.get_data(as_text=True)
    assert int(third.headers["Retry-After"]) >= 1
    assert post("10.0.0.8").status_code == 200  # another client is not held back


CALLBACK_HOMES = {"annotate": "cocoseg.app.correction_round"}  # a page whose Start lives beside it


def _page(name: str):
    if name in CALLBACK_HOMES:
        return sys.modules[CALLBACK_HOMES[name]]
    return next(
        module
        for module_name, module in list(sys.modules.items())  # a tool thread may import meanwhile
        if module_name.endswith(f"pages.{name}") and hasattr(module, "layout")
    )


START_BUTTONS = {  # page: (its Start callback, the callback's arguments after the click count)
    "prepare": ("start_preparation", lambda module: [None] * len(module.FORM)),
    "train": ("start_training", lambda module: [None] * (len(module.FORM_VALUES) + 1)),
    "home": ("start_quick_start", lambda module: []),
    "annotate": ("start_round", lambda module: [None, None, None]),
    "review": ("start_ranking", lambda module: [None, None, None]),
}


@pytest.mark.parametrize("page", sorted(START_BUTTONS))
def test_every_start_button_says_how_long_to_wait_and_queues_nothing(limited_app, workspace, page):
    module = _page(page)
    handler, arguments = START_BUTTONS[page]
    limiter = limited_app.server.config["COCOSEG_JOB_START_LIMITER"]
    assert limiter.take("10.0.0.9") == 0.0 and limiter.take("10.0.0.9") == 0.0
    with limited_app.server.test_request_context(environ_base={"REMOTE_ADDR": "10.0.0.9"}):
        outputs = getattr(module, handler)(1, *arguments(module))
    *_fields, shown, queued = outputs
    assert "too many job starts; wait" in _text(shown) and not isinstance(queued, dict)
    assert not workspace.jobs_dir.is_dir() or not any(workspace.jobs_dir.iterdir())
    assert not workspace.runs_dir.is_dir() or not any(workspace.runs_dir.iterdir())
