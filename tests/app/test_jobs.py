"""The guarded DiskCache job manager: it ends only processes it started, never registry jobs.

Dash calls ``terminate_job`` with a pid that came from the browser (``oldJob`` /
``cancelJob`` query arguments), so these tests hand it pids of real processes: one this
test started itself (a ``sleep``), processes the manager forked through its own
``call_job_fn``, and one of those that records itself as a training run in the registry.
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

from app.jobs import _STARTED_PREFIX, background_manager, job_owner
from pipeline.runs import OWNER_VARIABLE, RunFolder, create_run, process_identity
from tests.waiting import process_running, wait_for


def _sleeping_job(result_key, progress_key, args, context):
    """A background-callback body as Dash's manager calls it: sleep for ``args`` seconds."""
    time.sleep(args)


def _registry_job(result_key, progress_key, args, context):
    """A job body that records itself in a run folder (as train/prepare jobs do), then works."""
    run = RunFolder(Path(args))
    run.set_status("running", **process_identity())
    time.sleep(60)




@pytest.fixture
def manager(workspace):
    """A real guarded DiskcacheManager in the test's workspace; its job processes are killed and reaped at the end."""
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
    wait_for(lambda: multiprocess.active_children() is not None and not any(process_running(pid) for pid in started), message="job processes to end")
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
    with caplog.at_level("WARNING", logger="app.jobs"):
        manager.terminate_job(bystander.pid)
        manager.terminate_job(str(bystander.pid))  # as it arrives from the browser's query string
    assert bystander.poll() is None and process_running(bystander.pid)
    assert f"refused to terminate pid {bystander.pid}: not a job this server started" in caplog.text


def test_a_forged_start_record_does_not_make_a_process_killable(manager, bystander):
    """A record for the pid with another start time (a recycled pid, or a stale entry) is not enough."""
    manager.handle.set(f"{_STARTED_PREFIX}{bystander.pid}", psutil.Process(bystander.pid).create_time() - 3600)
    manager.terminate_job(bystander.pid)
    assert bystander.poll() is None and process_running(bystander.pid)


@pytest.mark.parametrize("garbage", ["abc", None, -1, 0, "", "1e3", "inf", "nan", "../1", [1], {"pid": 1}, 2**40, "1; rm -rf /"])
def test_garbage_job_ids_do_nothing(manager, bystander, garbage):
    manager.terminate_job(garbage)  # never raises, never kills
    assert bystander.poll() is None and process_running(1) and process_running(os.getpid())


def test_a_process_started_through_the_manager_can_be_terminated(manager):
    pid = manager.call_job_fn("result-key", _sleeping_job, 60, {})
    assert process_running(pid) and psutil.Process(pid).ppid() == os.getpid()
    assert manager.handle.get(f"{_STARTED_PREFIX}{pid}") == pytest.approx(psutil.Process(pid).create_time())
    manager.terminate_job(str(pid))
    wait_for(lambda: not process_running(pid), message="the job to end")


def test_a_registry_job_is_cancelled_through_the_registry_not_killed(workspace, manager):
    run = create_run(workspace, {"model": "unet"}, "unet")
    pid = manager.call_job_fn("result-key", _registry_job, str(run.folder), {})
    wait_for(lambda: run.status().get("pid") == pid, message="the job to record itself")
    assert run.status()["status"] == "running"
    manager.terminate_job(pid)  # Dash asks (the callback fired again, or its cancel input)
    time.sleep(0.3)
    assert process_running(pid) and run.status()["status"] == "running"
    # once the registry no longer calls it active, the manager may end its own process again
    run.set_status("cancelled", message="cancelled")
    manager.terminate_job(pid)
    wait_for(lambda: not process_running(pid), message="the job to end")


def test_a_preparation_job_is_protected_too(workspace, manager):
    workspace.jobs_dir.mkdir(parents=True, exist_ok=True)
    job = create_run(workspace, {"kind": "prepare"}, "prepare", parent=workspace.jobs_dir)
    pid = manager.call_job_fn("result-key", _registry_job, str(job.folder), {})
    wait_for(lambda: job.status().get("pid") == pid, message="the job to record itself")
    manager.terminate_job(pid)
    time.sleep(0.3)
    assert process_running(pid)


def test_job_owner_names_the_job_and_restores_the_environment(monkeypatch):
    monkeypatch.delenv(OWNER_VARIABLE, raising=False)
    with job_owner("dash-diskcache"):
        assert os.environ[OWNER_VARIABLE] == "dash-diskcache"
        assert process_identity()["owner"] == "dash-diskcache"
    assert OWNER_VARIABLE not in os.environ
    monkeypatch.setenv(OWNER_VARIABLE, "cli")
    with pytest.raises(RuntimeError, match="boom"):
        with job_owner("dash-diskcache"):
            assert os.environ[OWNER_VARIABLE] == "dash-diskcache"
            raise RuntimeError("boom")
    assert os.environ[OWNER_VARIABLE] == "cli"
