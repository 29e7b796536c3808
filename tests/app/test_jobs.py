"""The guarded DiskCache job manager: it ends only processes it started, and only those.

Dash calls ``terminate_job`` with a pid that came from the browser (``oldJob`` /
``cancelJob`` query arguments), so these tests hand it pids of real processes: one this
test started itself (a ``sleep``), and processes the manager forked through its own
``call_job_fn``, among them watchers of real job processes (``cocoseg.pipeline.jobs.runner``).
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import multiprocess
import psutil
import pytest
from dash import no_update

from cocoseg.app.jobs import _STARTED_PREFIX, background_manager, job_owner_name
from cocoseg.pipeline.jobs import cancel, observe, queue
from tests.waiting import process_running, wait_for


def _sleeping_job(result_key, progress_key, args, context):
    """A background-callback body as Dash's manager calls it: sleep for ``args`` seconds."""
    time.sleep(args)


@pytest.fixture
def manager(workspace):
    """A real guarded DiskcacheManager in the test's workspace; its job processes are killed and reaped at the
    end.
    """
    built = background_manager(workspace)
    started: list[int] = []
    original = built.call_job_fn

    def call_job_fn(key, job_fn, args, context):
        pid = original(key, job_fn, args, context)
        started.append(pid)
        return pid

    built.call_job_fn = call_job_fn  # the real method runs; the fixture only remembers what to clean up
    yield built
    for pid in started:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
    # active_children() reaps what the manager's own terminate (psutil wait) has not reaped already
    wait_for(
        lambda: (
            multiprocess.active_children() is not None and not any(process_running(pid) for pid in started)
        ),
        message="job processes to end",
    )
    built.handle.close()


@pytest.fixture
def bystander():
    """A live process that the manager did not start (a ``sleep`` started by this test)."""
    process = subprocess.Popen(["sleep", "60"])
    wait_for(lambda: psutil.pid_exists(process.pid), message="sleep to start")
    yield process
    process.kill()
    process.wait(timeout=10)


def test_the_default_manager_keeps_its_cache_private_in_the_workspace(workspace, manager):
    from dash import DiskcacheManager

    assert isinstance(manager, DiskcacheManager) and type(manager).__name__ == "GuardedDiskcacheManager"
    folder = workspace.cache_dir / "jobs"
    assert Path(manager.handle.directory) == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_process_it_did_not_start_is_never_terminated(manager, bystander, caplog):
    with caplog.at_level("WARNING", logger="cocoseg.app.jobs"):
        manager.terminate_job(bystander.pid)
        manager.terminate_job(str(bystander.pid))  # as it arrives from the browser's query string
    assert bystander.poll() is None and process_running(bystander.pid)
    assert f"refused to terminate pid {bystander.pid}: not a job this server started" in caplog.text


def test_a_forged_start_record_does_not_make_a_process_killable(manager, bystander):
    """A record for the pid with another start time (a recycled pid, or a stale entry) is not enough."""
    manager.handle.set(
        f"{_STARTED_PREFIX}{bystander.pid}", psutil.Process(bystander.pid).create_time() - 3600
    )
    manager.terminate_job(bystander.pid)
    assert bystander.poll() is None and process_running(bystander.pid)


@pytest.mark.parametrize(
    "garbage", ["abc", None, -1, 0, "", "1e3", "inf", "nan", "../1", [1], {"pid": 1}, 2**40, "1; rm -rf /"]
)
def test_garbage_job_ids_do_nothing(manager, bystander, garbage):
    manager.terminate_job(garbage)  # never raises, never kills
    assert bystander.poll() is None and process_running(1) and process_running(os.getpid())


def test_a_process_started_through_the_manager_can_be_terminated(manager):
    pid = manager.call_job_fn("result-key", _sleeping_job, 60, {})
    assert process_running(pid) and psutil.Process(pid).ppid() == os.getpid()
    assert manager.handle.get(f"{_STARTED_PREFIX}{pid}") == pytest.approx(psutil.Process(pid).create_time())
    manager.terminate_job(str(pid))  # returns once the process has gone
    assert not process_running(pid)


def _watching_job(result_key, progress_key, args, context):
    """A background-callback body as the pages have it: start a job process and watch it
    (``cocoseg.app.jobs.run_job_process``).
    """
    from cocoseg.app.context import remember_workspace
    from cocoseg.app.jobs import run_job_process
    from cocoseg.pipeline.core.workspace import Workspace

    home, kind, name = args
    remember_workspace(Workspace(Path(home)))
    run_job_process(kind, name)


def _watched(workspace, manager, kind: str):
    """A queued test job (``sleep`` is attached, ``linger`` detached), its watcher started through the
    manager, and its job pid.
    """
    entry = queue(workspace, kind, {"steps": 600, "step_seconds": 0.1})
    watcher = manager.call_job_fn("result-key", _watching_job, (str(workspace.root), kind, entry.name), {})
    wait_for(lambda: entry.status().get("status") == "running", 60, "the job process to take its entry")
    return entry, watcher, entry.status()["pid"]


def test_a_job_runs_in_a_new_interpreter_not_in_the_watcher(workspace, manager, test_jobs):
    entry, watcher, job_pid = _watched(workspace, manager, "linger")
    job = psutil.Process(job_pid)
    assert job_pid != watcher and job.ppid() == watcher and job.ppid() != os.getpid()
    assert job.cmdline()[1:4] == ["-m", "cocoseg.pipeline.jobs", "linger"], job.cmdline()
    assert entry.status()["owner"] == "dash-diskcache"
    entry.request_cancel("test")
    wait_for(lambda: entry.status()["status"] == "cancelled", 60, "the job to honour its cancel")


def test_terminating_a_watcher_ends_its_attached_job(workspace, manager, test_jobs):
    entry, watcher, job_pid = _watched(workspace, manager, "sleep")
    manager.terminate_job(str(watcher))  # Dash asks: the preview was asked for again
    assert not process_running(watcher)
    wait_for(lambda: not process_running(job_pid), 30, "the attached job to end with its watcher")
    assert entry.status()["status"] == "cancelled"


def test_terminating_a_watcher_leaves_a_detached_job_to_the_registry(workspace, manager, test_jobs):
    entry, watcher, job_pid = _watched(workspace, manager, "linger")
    manager.terminate_job(str(watcher))  # returns once the watcher has gone
    assert not process_running(watcher)
    assert process_running(job_pid) and observe(entry).state == "running"
    cancel(entry, "test")
    wait_for(lambda: not process_running(job_pid), 60, "the detached job to stop on its cancel request")
    assert entry.status()["status"] == "cancelled"


def test_the_owner_is_dash_diskcache_outside_a_celery_task():
    assert job_owner_name() == "dash-diskcache"


@pytest.mark.parametrize("forged", ["../runs", "/etc", "no-such-job", "", None, 42])
def test_a_stored_job_name_that_is_no_job_finds_nothing_and_cancels_nothing(workspace, monkeypatch, forged):
    from cocoseg.app import context
    from cocoseg.app.jobs import cancel_stored_job, run_queued_with_lines, stored_job

    monkeypatch.setattr(context, "_process_workspace", workspace)
    queued = queue(workspace, "sleep", {"seconds": 30})
    assert stored_job({"job": forged}) is None
    assert cancel_stored_job(1, {"job": forged}) is no_update
    assert run_queued_with_lines("sleep", {"job": forged}, print, str) is no_update
    assert observe(queued).state == "queued"  # the real job was not touched


def test_a_stored_job_is_found_and_cancelled_by_its_name(workspace, monkeypatch):
    from cocoseg.app import context
    from cocoseg.app.jobs import cancel_stored_job, stored_job

    monkeypatch.setattr(context, "_process_workspace", workspace)
    queued = queue(workspace, "sleep", {"seconds": 30})
    assert stored_job({"job": queued.name}).folder == queued.folder
    assert cancel_stored_job(None, {"job": queued.name}) is no_update  # no click, no cancel
    answer = cancel_stored_job(1, {"job": queued.name})
    assert "cancel" in str(answer).lower()
    assert observe(queued).state == "cancelled"


def test_a_stored_queued_job_runs_once_and_its_outcome_joins_the_record(test_jobs, monkeypatch):
    from cocoseg.app import context
    from cocoseg.app.jobs import run_stored_job

    monkeypatch.setattr(context, "_process_workspace", test_jobs)
    queued = queue(test_jobs, "sleep", {"steps": 1, "step_seconds": 0.0})
    record = {"job": queued.name, "choice": "demo/val"}
    assert run_stored_job("linger", record) is None  # a Store naming a job of another kind runs nothing
    assert run_stored_job("sleep", record) == {**record, "status": "finished", "message": ""}
    assert run_stored_job("sleep", record) is None  # not queued any more: nothing runs twice
    assert run_stored_job("sleep", {"job": "../elsewhere"}) is None and run_stored_job("sleep", None) is None
