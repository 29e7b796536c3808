"""The Train page's start / progress / cancel in Celery mode: the job runs in a real worker through a real Redis."""

from __future__ import annotations

import psutil
import pytest

from pipeline.prepare import PrepareConfig, prepare
from pipeline.runs import RunFolder
from pipeline.workspace import Workspace
from tests.conftest import LIMIT
from tests.e2e.test_train_browser import card, fill_form, run_status, start, wait_for_status
from tests.waiting import wait_for

pytest_plugins = ["tests.e2e.celery_conftest"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def celery_prepared(celery_home):
    """A 64 px voc21 set in the workspace the worker and the server share."""
    return prepare(Workspace(celery_home).ensure(), PrepareConfig("demo", labels="voc21", size=64, shards=1, workers=1), LIMIT)


def test_training_starts_reports_and_cancels_in_the_worker(celery_prepared, celery_server, celery_worker, page):
    home = celery_server.home
    page.goto(celery_server.url + "/train")
    fill_form(page, epochs=2)
    finished = start(page)
    wait_for_status(page, finished, "finished")
    status = run_status(home, finished)
    assert status["owner"].startswith("celery:"), status["owner"]  # the task id the worker ran it under
    assert status["pid"] in celery_worker.pool_pids()  # trained in the worker's pool process, not the server
    assert psutil.Process(celery_server.process.pid).children(recursive=True) == []

    fill_form(page, epochs=200)
    cancelled = start(page)
    wait_for(lambda: RunFolder(home / "runs" / cancelled).state().get("epoch", 0) >= 1, 240, "no epoch finished in the worker")
    bar = card(page, cancelled).locator(".progress-bar")
    assert float(bar.get_attribute("aria-valuenow") or 0) > 0
    card(page, cancelled).get_by_role("button", name="Cancel").click()
    wait_for_status(page, cancelled, "cancelled", timeout=60_000)
    assert "cancelled during epoch" in run_status(home, cancelled)["message"]
    assert celery_worker.process.poll() is None  # the worker itself keeps serving
    assert page.problems.all() == []
