"""Celery mode end to end: real redis-server, real ``cocoseg worker``, real ``cocoseg serve``, real Chromium.

The Evaluate page's background job must run in the worker (not in the web server) with
its progress reaching the page; a job sent while no worker runs waits in Redis and
completes once one starts; and no ``oldJob`` a browser sends, forged or genuine, makes
the server kill a process.
"""

from __future__ import annotations

import re
import subprocess
import time

import psutil
import pytest

from cocoseg.app.ids import Evaluate
from cocoseg.pipeline.core.workspace import Workspace
from tests.celery_support import import_tiny_model, start_worker
from tests.waiting import wait_for

pytest_plugins = ["tests.e2e.celery_conftest"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

JOB_TIMEOUT_MS = 120_000
GUARDED_MODEL_SIZE = (
    224  # a slower model: its job runs several seconds, so that the page polls it while it runs
)
TASK_LINE = re.compile(r"Task (background_callback_\w+)\[([0-9a-f-]+)\] (received|succeeded)")


def _start_evaluation(page, server_url: str, model: str) -> None:
    """Open Evaluate, pick ``model`` among the models without a result, press Evaluate."""
    response = page.goto(server_url + "/evaluate", wait_until="networkidle")
    assert response is not None and response.status == 200
    page.locator(f"#{Evaluate.PENDING_MODEL}").click()
    page.get_by_role("option").filter(has_text=model).first.click()
    page.keyboard.press("Escape")
    page.locator(f"#{Evaluate.RUN}").click()


def _message(page):
    return page.locator(f"#{Evaluate.RUN_MESSAGE}")


def _watch_job_ids(page) -> list[str]:
    """Collect the Celery task ids of Evaluate jobs as the page polls them.

    The page polls with Dash's signed handle ``job=<task id>~<signature>``; the id before
    the ``~`` is the one the worker logs, which ties the page's job to the worker's lines.
    """
    seen: list[str] = []

    def note(request) -> None:
        handle = re.search(r"[?&]job=([^&~]+)~", request.url)
        if handle and Evaluate.RUN_MESSAGE in (request.post_data or "") and handle.group(1) not in seen:
            seen.append(handle.group(1))

    page.on("request", note)
    return seen


def _with_old_jobs(url: str, values: list) -> str:
    """``url`` asking the server to replace (terminate) the jobs ``values``, as Dash's renderer does."""
    return url + ("&" if "?" in url else "?") + "&".join(f"oldJob={value}" for value in values)


def _tasks(worker, since: int) -> dict[str, set[str]]:
    """Task id -> the states ('received', 'succeeded') the worker logged since ``since``."""
    seen: dict[str, set[str]] = {}
    for line in worker.task_lines(since):
        match = TASK_LINE.search(line)
        if match:
            seen.setdefault(match.group(2), set()).add(match.group(3))
    return seen


def test_evaluation_runs_in_the_worker_and_its_progress_reaches_the_page(page, celery_server, celery_worker):
    import_tiny_model(Workspace(celery_server.home), "celery-eval")
    log_start = len(celery_worker.log())
    job_ids = _watch_job_ids(page)
    _start_evaluation(page, celery_server.url, "celery-eval")

    labels = []
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    while "mIoU" not in _message(page).inner_text():
        label = page.locator(f"#{Evaluate.PROGRESS}").inner_text().strip()
        if label and label not in labels:
            labels.append(label)
        assert time.monotonic() < deadline, (
            f"no result after {JOB_TIMEOUT_MS} ms; worker log:\n{celery_worker.log()[-3000:]}"
        )
        time.sleep(0.1)
    assert "celery-eval: mIoU" in _message(page).inner_text()
    # the worker writes progress into Redis, the server relays it: the bar ends on the full split
    page.locator(f"#{Evaluate.PROGRESS}", has_text="80/80 images").wait_for()
    labels.append(page.locator(f"#{Evaluate.PROGRESS}").inner_text().strip())
    assert all(re.fullmatch(r"\d+/80 images", label) for label in labels), labels

    # it ran in the worker: Celery logged this very job, and the server started no job process
    assert len(job_ids) == 1, job_ids
    wait_for(
        lambda: _tasks(celery_worker, log_start).get(job_ids[0]) == {"received", "succeeded"},
        30,
        f"the worker did not log job {job_ids[0]} as received and succeeded:\n"
        f"{celery_worker.log()[log_start:][-3000:]}",
    )
    assert psutil.Process(celery_server.process.pid).children(recursive=True) == []
    assert "background jobs go to Celery workers through redis://127.0.0.1" in celery_server.log()
    result = next((celery_server.home / "models" / "celery-eval" / "evaluations").glob("demo.val.fp32.json"))
    assert '"provider"' in result.read_text()
    assert page.problems.all() == []


@pytest.mark.extended  # a job started with the worker up: test_evaluation_runs_in_the_worker...
def test_a_job_waits_in_redis_until_a_worker_starts(page, redis_server, serve_celery_mode, tmp_path_factory):
    home = tmp_path_factory.mktemp("celery-queued-home")
    import_tiny_model(Workspace(home).ensure(), "queued-eval")
    broker_url = redis_server.url(1)  # a database no worker of this session listens to
    queue = redis_server.client(1)
    logs = tmp_path_factory.mktemp("celery-queued-logs")
    job_ids = _watch_job_ids(page)
    with serve_celery_mode(home, broker_url, logs / "server.log") as server:
        _start_evaluation(page, server.url, "queued-eval")
        wait_for(lambda: queue.llen("celery") == 1, 15, "the job never reached the Redis queue 'celery'")
        assert page.locator(f"#{Evaluate.RUN}").is_disabled()  # the page shows the job as running
        assert _message(page).inner_text() == ""
        # page.wait_for_timeout lets Playwright deliver the request events that fill job_ids
        wait_for(lambda: page.wait_for_timeout(100) or job_ids, 30, "the page to poll the queued task")
        assert (
            len(job_ids) == 1 and job_ids[0] in queue.lindex("celery", 0).decode()
        )  # the page polls the queued task
        assert (
            queue.llen("celery") == 1
        )  # still queued when the worker starts: the server's polls never ran it
        worker = start_worker(home, broker_url, logs / "worker.log")
        try:
            _message(page).filter(has_text="queued-eval: mIoU").wait_for(timeout=JOB_TIMEOUT_MS)
            assert queue.llen("celery") == 0
            assert _tasks(worker, 0) == {job_ids[0]: {"received", "succeeded"}}, worker.log()[-3000:]
        finally:
            exit_code = worker.stop()
    assert exit_code == 0  # a warm shutdown after SIGTERM
    assert page.problems.all() == []


@pytest.mark.extended  # the DiskCache manager's refusal: tests/app/test_jobs.py
def test_no_old_job_from_the_browser_kills_a_process(page, celery_server, celery_worker):
    """Forged pids and task ids are dropped unsigned; a genuine handle is only revoked, never terminated."""
    import_tiny_model(Workspace(celery_server.home), "guarded-eval", size=GUARDED_MODEL_SIZE)
    victim = subprocess.Popen(["sleep", "300"])
    pool_before = celery_worker.pool_pids()
    forged = [
        victim.pid,
        *pool_before,
        celery_worker.process.pid,
        celery_server.process.pid,
        "0b1d5e0c-6c9e-4a43-9d25-1d2f4b3c8e7a",
    ]
    replayed = []

    def add_old_jobs(route):
        request = route.request
        if request.method != "POST" or Evaluate.RUN_MESSAGE not in (request.post_data or ""):
            return route.continue_()
        job = re.search(r"[?&]job=([^&]+)", request.url)
        if job:  # a poll of the running job: hand its own signed handle back as the job to replace
            replayed.append(job.group(1))
            return route.continue_(url=_with_old_jobs(request.url, [job.group(1)]))
        return route.continue_(url=_with_old_jobs(request.url, forged))

    page.route("**/_dash-update-component*", add_old_jobs)
    try:
        log_start = len(celery_worker.log())
        _start_evaluation(page, celery_server.url, "guarded-eval")
        _message(page).filter(has_text="guarded-eval: mIoU").wait_for(timeout=JOB_TIMEOUT_MS)
        assert replayed, "the page never polled the running job"
        assert victim.poll() is None
        assert celery_worker.process.poll() is None and celery_server.process.poll() is None
        assert celery_worker.pool_pids() == pool_before  # a terminated task would have cost its pool process
        # the genuine handle reached the worker as a revoke while the task ran, and the task still finished
        log = celery_worker.log()[log_start:]
        task = replayed[0].partition("~")[0]
        assert _tasks(celery_worker, log_start).get(task) == {"received", "succeeded"}
        revoked = log.find(f"Tasks flagged as revoked: {task}")
        assert 0 <= revoked < log.find(f"[{task}] succeeded"), log[-3000:]
    finally:
        victim.kill()
        victim.wait()
