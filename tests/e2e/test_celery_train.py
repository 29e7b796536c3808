"""The Train page's start / progress / cancel in Celery mode: the job runs in a real worker through a real
Redis.
"""

from __future__ import annotations

import psutil
import pytest

from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.jobs.registry import RunFolder
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.writer import prepare
from tests.celery_support import start_worker
from tests.conftest import LIMIT
from tests.e2e.test_train_browser import card, fill_form, run_status, start, wait_for_status
from tests.waiting import process_running, wait_for

pytest_plugins = ["tests.e2e.celery_conftest"]
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.extended]


@pytest.fixture(scope="module")
def celery_prepared(celery_home):
    """A 64 px voc21 set in the workspace the worker and the server share."""
    return prepare(
        Workspace(celery_home).ensure(),
        PrepareConfig("demo", labels="voc21", size=64, shards=1, workers=1),
        LIMIT,
    )


def test_training_starts_reports_and_cancels_in_the_worker(
    celery_prepared, celery_server, celery_worker, page
):
    home = celery_server.home
    page.goto(celery_server.url + "/train")
    fill_form(page, epochs=2)
    finished = start(page)
    wait_for_status(page, finished, "finished")
    status = run_status(home, finished)
    assert status["owner"].startswith("celery:"), status["owner"]  # the task id the worker ran it under
    assert psutil.Process(celery_server.process.pid).children(recursive=True) == []

    fill_form(page, epochs=200)
    cancelled = start(page)
    wait_for(
        lambda: RunFolder(home / "runs" / cancelled).state().get("epoch", 0) >= 1,
        240,
        "no epoch finished in the worker",
    )
    job = psutil.Process(
        run_status(home, cancelled)["pid"]
    )  # a new interpreter started by the worker's pool process
    assert job.ppid() in celery_worker.pool_pids()
    assert job.cmdline()[1:4] == ["-m", "cocoseg.pipeline.jobs", "train"], job.cmdline()
    bar = card(page, cancelled).locator(".progress-bar")
    # the page learns of the epoch at its next poll of the registry, a moment after the file says so
    wait_for(lambda: float(bar.get_attribute("aria-valuenow") or 0) > 0, 60, "the progress bar to move")
    card(page, cancelled).get_by_role("button", name="Cancel").click()
    wait_for_status(page, cancelled, "cancelled", timeout=60_000)
    assert "cancelled during epoch" in run_status(home, cancelled)["message"]
    assert celery_worker.process.poll() is None  # the worker itself keeps serving
    assert page.problems.all() == []


def test_a_hung_job_in_a_worker_is_shown_stalled_and_cancel_ends_it(
    celery_prepared, celery_home, redis_server, serve_celery_mode, tmp_path_factory, page
):
    """The same stall rule and cancel as with DiskCache, on a worker and server of their own (test hook:
    SIGSTOP at step 2).
    """
    home = celery_home
    logs = tmp_path_factory.mktemp("celery-stall")
    # a short cancel grace (the stalled job is killed 5 s after Cancel, not 20 s), and a wait for
    # "cancelled" long enough for a machine whose two cores are busy with other work
    hooks = {
        "COCOSEG_STALL_SECONDS": "8",
        "COCOSEG_TEST_STOP_AT_PROGRESS": "2",
        "COCOSEG_CANCEL_GRACE_SECONDS": "5",
    }
    broker_url = redis_server.url(2)  # a database of its own: the session's worker must not take these jobs
    worker = start_worker(home, broker_url, logs / "worker.log", settings=hooks)
    try:
        with serve_celery_mode(home, broker_url, logs / "server.log", **hooks) as server:
            page.goto(server.url + "/train")
            fill_form(page, epochs=3)
            name = start(page)
            wait_for_status(page, name, "stalled")
            pid = run_status(home, name)["pid"]
            assert psutil.Process(pid).ppid() in worker.pool_pids()
            card(page, name).get_by_role("button", name="Cancel").click()
            wait_for_status(page, name, "cancelled", timeout=180_000)
            wait_for(lambda: not process_running(pid), 30, "the stalled job's process to end")
            assert "stalled" in run_status(home, name)["message"] and worker.process.poll() is None
            assert page.problems.all() == []
    finally:
        worker.stop()
