"""Jobs in fresh interpreters (``cocoseg.pipeline.jobs.runner``) and what control makes of them
(``cocoseg.pipeline.jobs.control``).

Real job processes throughout: the test-only ``sleep`` (attached) and ``linger``
(detached) kinds run the real runner, heartbeat and registry code with a body that
only counts. A hang is made with ``COCOSEG_TEST_STOP_AT_PROGRESS``: the job process
SIGSTOPs itself, so its heartbeat thread stops too, as in a real native hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from cocoseg.pipeline.core import settings as settings_module
from cocoseg.pipeline.jobs import cancel, observe, queue, run_and_watch, supervise
from cocoseg.pipeline.jobs.execution import _Progress
from cocoseg.pipeline.jobs.registry import Heartbeat, RunFolder, create_run, process_identity
from cocoseg.pipeline.jobs.runner import KINDS, RESULT_FILE, command, start, watch
from tests.conftest import PROJECT_ROOT
from tests.waiting import process_running, wait_for


def _settings(monkeypatch, **variables) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, str(value))
    settings_module.get_settings.cache_clear()


def _watch_in_thread(workspace, entry, kind="sleep", on_progress=None):
    """Start the job process and watch it from a thread, as a background callback does; returns (process,
    thread, outcome box).
    """
    process = start(workspace, kind, entry.name, "test")
    box: dict = {}
    thread = threading.Thread(
        target=lambda: box.setdefault("outcome", watch(workspace, KINDS[kind], entry, process, on_progress))
    )
    thread.start()
    return process, thread, box


def test_a_job_finishes_in_its_own_process_and_its_result_and_progress_come_back(test_jobs):
    workspace = test_jobs
    entry = queue(workspace, "sleep", {"steps": 6, "step_seconds": 0.2})
    seen = []
    outcome = run_and_watch(workspace, "sleep", entry.name, "test-owner", seen.append)
    assert outcome.ok and outcome.result == {"steps": 6} and outcome.exit_code == 0
    status = entry.status()
    assert status["status"] == "finished" and status["pid"] != os.getpid() and status["owner"] == "test-owner"
    assert (entry.folder / RESULT_FILE).is_file()
    assert seen and seen[-1] == {"type": "progress", "done": 6, "total": 6}
    assert all(event["done"] <= later["done"] for event, later in zip(seen, seen[1:]))


def _stalled_job(workspace, monkeypatch, steps: int, stop_at: int):
    """A watched ``linger`` job that stops itself (SIGSTOP) at step ``stop_at``, once it is seen stalled (3 s
    threshold).
    """
    _settings(monkeypatch, COCOSEG_STALL_SECONDS=3, COCOSEG_TEST_STOP_AT_PROGRESS=stop_at)
    entry = queue(workspace, "linger", {"steps": steps, "step_seconds": 0.1})
    process, thread, box = _watch_in_thread(workspace, entry, "linger")
    wait_for(lambda: observe(entry).state == "stalled", 60, "the stopped job to be seen as stalled")
    return entry, process, thread, box


def test_a_hang_is_shown_stalled_and_cancel_ends_that_process(test_jobs, monkeypatch):
    """The job stops itself (SIGSTOP) at its 3rd step: heartbeat thread and all, as a hang in native code
    would.
    """
    entry, process, thread, box = _stalled_job(test_jobs, monkeypatch, steps=100, stop_at=3)
    stalled = observe(entry)
    assert stalled.heartbeat_age > 3 and stalled.active and f"pid {process.pid}" in stalled.shown_message
    assert psutil.Process(process.pid).status() == psutil.STATUS_STOPPED
    assert "stalled" in cancel(entry, "test")
    thread.join(timeout=60)  # the watcher supervises: the kill follows the grace period
    assert not thread.is_alive() and not process_running(process.pid)
    assert box["outcome"].status == "cancelled" and "stalled" in box["outcome"].message
    assert observe(entry).state == "cancelled"


def test_a_resumed_heartbeat_is_running_again(test_jobs, monkeypatch):
    """Stalled is read from the heartbeat each time, never written: a job that continues is running again."""
    entry, process, thread, box = _stalled_job(test_jobs, monkeypatch, steps=30, stop_at=2)
    os.kill(process.pid, signal.SIGCONT)
    wait_for(
        lambda: observe(entry).state in ("running", "finished"), 60, "the continued job to be running again"
    )
    thread.join(timeout=60)
    assert box["outcome"].ok


def test_a_job_that_ignores_its_cancel_is_killed_after_the_grace_period(test_jobs, monkeypatch):
    """A job stuck inside one long step (here: a step of 600 s) cannot look at its cancel request."""
    _settings(monkeypatch, COCOSEG_CANCEL_GRACE_SECONDS=2)
    workspace = test_jobs
    entry = queue(workspace, "linger", {"steps": 1, "step_seconds": 600})
    process, thread, box = _watch_in_thread(workspace, entry, "linger")
    wait_for(lambda: observe(entry).state == "running", 60, "the job to start")
    assert "Cancelling" in cancel(entry, "test")
    thread.join(timeout=60)
    assert not process_running(process.pid) and box["outcome"].status == "cancelled"
    assert "did not stop by itself" in box["outcome"].message


def test_a_job_process_killed_mid_run_is_interrupted(test_jobs):
    workspace = test_jobs
    entry = queue(workspace, "linger", {"steps": 600, "step_seconds": 0.1})
    process, thread, box = _watch_in_thread(workspace, entry, "linger")
    wait_for(lambda: entry.status().get("status") == "running", 60, "the job to start")
    os.kill(process.pid, signal.SIGKILL)
    thread.join(timeout=60)
    assert box["outcome"].status == "interrupted" and f"pid {process.pid}" in box["outcome"].message


def test_a_job_process_that_dies_before_taking_its_entry_fails_it_with_the_reason(test_jobs, monkeypatch):
    workspace = test_jobs
    entry = queue(workspace, "sleep", {"steps": 1})
    settings_module.get_settings()  # this (watching) process keeps the settings it has read...
    monkeypatch.setenv("COCOSEG_STALL_SECONDS", "soon")  # ...the job process reads this one and exits at once
    outcome = run_and_watch(workspace, "sleep", entry.name, "test")
    assert outcome.status == "failed" and "before it started" in outcome.message
    assert "COCOSEG_STALL_SECONDS must be a number" in outcome.message
    assert entry.status()["status"] == "failed"


def test_a_second_start_of_a_running_job_is_refused_and_changes_nothing(test_jobs):
    workspace = test_jobs
    entry = queue(workspace, "linger", {"steps": 600, "step_seconds": 0.1})
    first, thread, box = _watch_in_thread(workspace, entry, "linger")
    wait_for(lambda: entry.status().get("status") == "running", 60, "the first job to start")
    second = run_and_watch(workspace, "linger", entry.name, "test")
    assert second.status == "refused" and "running" in second.message
    assert entry.status()["status"] == "running" and entry.status()["pid"] == first.pid
    cancel(entry, "test")
    thread.join(timeout=60)
    assert box["outcome"].status == "cancelled"


def test_unknown_kinds_and_test_kinds_without_the_switch_are_refused(workspace, monkeypatch):
    from cocoseg.pipeline.jobs import JobRefused
    from cocoseg.pipeline.jobs.runner import kind_of

    with pytest.raises(JobRefused, match="unknown job kind 'bake'"):
        kind_of("bake")
    monkeypatch.delenv("COCOSEG_TEST_JOBS", raising=False)
    with pytest.raises(JobRefused, match="unknown job kind 'sleep'"):
        kind_of("sleep")


def test_the_throttle_pauses_after_each_progress_step(monkeypatch):
    _settings(monkeypatch, COCOSEG_JOB_THROTTLE_SECONDS=0.2)
    progress = _Progress()
    started = time.monotonic()
    for step in range(3):
        progress({"done": step})
    assert time.monotonic() - started >= 0.6 and progress.steps == 3


# --- observe, stalled, supervise without a job process -------------------------------------------


def _running_here(workspace, heartbeat_age: float) -> RunFolder:
    """An entry that names this very process as its job, with a heartbeat ``heartbeat_age`` seconds old."""
    entry = create_run(workspace, {"kind": "sleep"}, "sleep", parent=workspace.jobs_dir)
    entry.set_status("running", **process_identity())
    stamp = time.time() - heartbeat_age
    entry.set_status("running")
    record = entry.status()
    record["heartbeat"] = stamp
    from cocoseg.pipeline.core.workspace import atomic_write_json

    atomic_write_json(entry.folder / "status.json", record)
    (entry.folder / "heartbeat").write_text(str(stamp))
    os.utime(entry.folder / "heartbeat", (stamp, stamp))
    return entry


def test_stalled_is_derived_from_a_live_process_and_an_old_heartbeat(workspace):
    workspace.jobs_dir.mkdir(parents=True, exist_ok=True)
    assert observe(_running_here(workspace, 5), stall_seconds=60).state == "running"
    old = _running_here(workspace, 120)
    status = observe(old, stall_seconds=60)
    assert status.state == "stalled" and status.heartbeat_age == pytest.approx(120, abs=5) and status.active
    assert "no heartbeat for 12" in status.shown_message
    assert old.status()["status"] == "running"  # derived, never written


def test_a_dead_process_is_interrupted_not_stalled(workspace, processes):
    workspace.jobs_dir.mkdir(parents=True, exist_ok=True)
    entry = create_run(workspace, {"kind": "sleep"}, "sleep", parent=workspace.jobs_dir)
    child = processes(["sleep", "60"])
    entry.set_status(
        "running",
        **{**process_identity(), "pid": child.pid, "pid_started": psutil.Process(child.pid).create_time()},
    )
    child.kill()
    child.wait()
    assert observe(entry, stall_seconds=0.001).state == "running"  # the file says so until supervised
    assert supervise(entry) == "interrupted" and observe(entry).state == "interrupted"


def test_cancel_of_a_queued_job_no_process_took_is_immediate(workspace):
    workspace.jobs_dir.mkdir(parents=True, exist_ok=True)
    entry = create_run(workspace, {"kind": "sleep"}, "sleep", parent=workspace.jobs_dir)
    assert "before it started" in cancel(entry, "test") and observe(entry).state == "cancelled"
    assert "nothing to cancel" in cancel(entry, "test")


def test_the_heartbeat_stops_when_the_job_makes_no_progress(tmp_path):
    """A deadlock that leaves the heartbeat thread free must not look alive for ever."""
    entry = RunFolder(tmp_path)
    entry.set_status("running")

    def last_beat() -> float:
        return (tmp_path / "heartbeat").stat().st_mtime

    with Heartbeat(entry, seconds=0.05, progress_timeout=0.5):
        # 60 s: hang guards only (the thread beats every 0.05 s while there is progress)
        wait_for(lambda: time.time() - last_beat() > 1.5, 60, "the heartbeat to stop")
        stopped = last_beat()

        def progressing_again() -> bool:
            entry.heartbeat(progress={"done": 1})  # a job reporting steps (status.json only, not the file)
            return last_beat() > stopped

        wait_for(progressing_again, 60, "the heartbeat to resume")  # a file beat newer than the pause


def test_the_cli_lists_a_stalled_job_and_its_cancel_ends_it(test_jobs, monkeypatch, capsys):
    from cocoseg import cli

    entry, process, thread, box = _stalled_job(test_jobs, monkeypatch, steps=100, stop_at=2)
    capsys.readouterr()
    assert cli.main(["jobs", "list"]) == 0
    listed = capsys.readouterr().out
    assert entry.name in listed and "stalled" in listed and f"pid {process.pid}" in listed
    assert (
        cli.main(["jobs", "cancel", entry.name, "--wait", "60"]) == 0
    )  # waits out the grace period, then kills
    said = capsys.readouterr().out
    assert "it is stalled" in said and f"{entry.name}: cancelled" in said
    thread.join(timeout=60)
    assert not process_running(process.pid)
    assert cli.main(["jobs", "list"]) == 0 and "no active jobs" in capsys.readouterr().out


JOB_ENTRY_POINT = """
import sys
from cocoseg.pipeline.jobs.__main__ import main
code = main(sys.argv[1:])
heavy = sorted(name for name in ("cocoseg.cli", "onnx", "onnxruntime", "tensorflow") if name in sys.modules)
print("exit", code, "heavy", ",".join(heavy) or "none")
"""


def _job_entry_point(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", JOB_ENTRY_POINT, *arguments],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_job_entry_point_runs_a_job_without_the_command_line_s_imports(test_jobs):
    entry = queue(test_jobs, "sleep", {"steps": 2, "step_seconds": 0.05})
    ran = _job_entry_point("sleep", entry.name)
    assert ran.stdout.splitlines()[-2:] == [f"sleep {entry.name}: finished", "exit 0 heavy none"], ran.stderr
    assert observe(entry).state == "finished"
    # what the runner starts is that module, never the whole command line
    assert start.__module__ == "cocoseg.pipeline.jobs.runner"
    assert command("sleep", entry.name)[1:] == ["-m", "cocoseg.pipeline.jobs", "sleep", entry.name]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("sleep", "no-such-job"), "no job called 'no-such-job'"),
        (("sleep", "../escape"), "not allowed"),
        (("nonsense", "x"), "unknown"),
    ],
)
def test_the_job_entry_point_refuses_what_it_cannot_run_with_one_line(test_jobs, arguments, message):
    ran = _job_entry_point(*arguments)
    assert ran.stdout.splitlines()[-1].startswith("exit 3"), (ran.stdout, ran.stderr)
    assert ran.stderr.startswith("cocoseg: error: ") and message in ran.stderr
    assert "Traceback" not in ran.stderr
