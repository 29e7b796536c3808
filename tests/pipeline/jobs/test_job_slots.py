"""Job slots (``cocoseg.pipeline.jobs.slots``): N jobs of a group at a time, the rest wait queued, in order.

Real job processes of the test-only ``hold`` kind (a detached job that takes a training slot),
started exactly as the app starts them (``runner.start``); the slots are real file locks.
"""

from __future__ import annotations

import os
import signal

import psutil

from cocoseg.cli import main
from cocoseg.pipeline.core import settings as settings_module
from cocoseg.pipeline.jobs import cancel, observe, queue
from cocoseg.pipeline.jobs.registry import reconcile
from cocoseg.pipeline.jobs.runner import start
from tests import waiting

START_TIMEOUT_S = 120  # each job is a fresh interpreter: a loaded machine takes a while to start three


def wait_for(condition, message: str):
    return waiting.wait_for(condition, timeout=START_TIMEOUT_S, message=message)


LONG = {"steps": 600, "step_seconds": 0.1}  # a minute: cancelled by the test long before


def _state(entry) -> str:
    return observe(entry).state


def _hold(workspace, request=None):
    entry = queue(workspace, "hold", request or LONG)
    return entry, start(workspace, "hold", entry.name, "test")


def _running(entry) -> bool:
    return _state(entry) == "running"


def _in_line(entry, place: int) -> bool:
    status = entry.status()
    return status.get("status") == "queued" and status.get("queue_place") == place


def _end(*processes) -> None:
    for process in processes:
        process.wait(timeout=60)


def test_a_second_training_waits_queued_with_its_place_and_starts_when_the_first_ends(test_jobs, capsys):
    workspace = test_jobs
    first, first_process = _hold(workspace)
    wait_for(lambda: _running(first), message="the first job to run")
    second, second_process = _hold(workspace)
    wait_for(lambda: _in_line(second, 1), message="the second job to wait first in line")
    third, third_process = _hold(workspace)
    wait_for(lambda: _in_line(third, 2), message="the third job to wait second in line")
    assert _state(first) == "running" and _state(second) == "queued"
    message = second.status()["message"]
    assert "1st in line" in message and "COCOSEG_MAX_TRAINING_JOBS" in message
    assert "2nd in line" in third.status()["message"]

    # what the Train page's live card and `cocoseg jobs list` show of the line
    from cocoseg.app.components.run_cards import live_card
    from tests.app.test_main import _text

    assert "1st in line" in _text(live_card(second)) and "2nd in line" in _text(live_card(third))
    assert main(["jobs", "list"]) == 0
    listing = capsys.readouterr().out
    assert second.name in listing and "1st in line" in listing and "2nd in line" in listing

    cancel(first, "test")
    wait_for(lambda: _running(second), message="the second job to take the freed slot")
    wait_for(lambda: _in_line(third, 1), message="the third job to move up the line")
    assert _state(third) == "queued"
    cancel(second, "test")
    wait_for(lambda: _running(third), message="the third job to start")
    cancel(third, "test")
    _end(first_process, second_process, third_process)
    started = [entry.status()["started"] for entry in (first, second, third)]
    assert started == sorted(started), "first come, first served"
    assert all(entry.status()["status"] == "cancelled" for entry in (first, second, third))


def test_a_cancel_while_waiting_ends_the_wait_at_once_and_nothing_runs(test_jobs):
    workspace = test_jobs
    first, first_process = _hold(workspace)
    wait_for(lambda: _running(first), message="the first job to run")
    waiting, waiting_process = _hold(workspace)
    wait_for(lambda: _in_line(waiting, 1), message="the second job to wait")
    assert "waiting" in cancel(waiting, "test")
    waiting_process.wait(timeout=30)
    assert waiting.status()["status"] == "cancelled" and "waited for a slot" in waiting.status()["message"]
    assert "started" not in waiting.status()
    assert _state(first) == "running"
    cancel(first, "test")
    _end(first_process)


def test_a_killed_waiter_leaves_the_line_and_its_entry_says_interrupted(test_jobs):
    workspace = test_jobs
    first, first_process = _hold(workspace)
    wait_for(lambda: _running(first), message="the first job to run")
    doomed, doomed_process = _hold(workspace)
    wait_for(lambda: _in_line(doomed, 1), message="a job to wait")
    later, later_process = _hold(workspace)
    wait_for(lambda: _in_line(later, 2), message="another job to wait behind it")
    os.kill(doomed_process.pid, signal.SIGKILL)
    doomed_process.wait(timeout=30)
    wait_for(lambda: _in_line(later, 1), message="the job behind to move up once the waiter died")
    assert reconcile(doomed) == "interrupted"
    cancel(first, "test")
    wait_for(lambda: _running(later), message="the job behind to start")
    cancel(later, "test")
    _end(first_process, later_process)


def test_two_slots_run_two_jobs_at_once(test_jobs, monkeypatch):
    monkeypatch.setenv("COCOSEG_MAX_TRAINING_JOBS", "2")
    settings_module.get_settings.cache_clear()
    workspace = test_jobs
    jobs = [_hold(workspace) for _ in range(3)]
    # the three processes start together: which two take the slots is the order they reach them

    def two_running():
        running = [entry for entry, _process in jobs if _running(entry)]
        return running if len(running) == 2 else None

    running = wait_for(two_running, message="two jobs to run together")
    waiting = next(entry for entry, _process in jobs if entry not in running)
    wait_for(lambda: _in_line(waiting, 1), message="the third job to wait")
    assert "2 training jobs at a time" in waiting.status()["message"]
    for entry, _process in jobs:
        cancel(entry, "test")
    _end(*(process for _entry, process in jobs))
    children = {child.pid for child in psutil.Process().children(recursive=True)}
    assert not any(process.pid in children for _entry, process in jobs)


def test_kinds_that_need_no_slot_run_beside_a_training(test_jobs):
    workspace = test_jobs
    first, first_process = _hold(workspace)
    wait_for(lambda: _running(first), message="the training-slot job to run")
    other = queue(workspace, "linger", {"steps": 2, "step_seconds": 0.05})
    process = start(workspace, "linger", other.name, "test")
    process.wait(timeout=60)
    assert other.status()["status"] == "finished"
    cancel(first, "test")
    _end(first_process)


def test_a_second_process_for_a_waiting_job_is_refused_and_the_waiter_keeps_its_place(test_jobs):
    workspace = test_jobs
    first, first_process = _hold(workspace)
    wait_for(lambda: _running(first), message="the first job to run")
    waiting, waiting_process = _hold(workspace)
    wait_for(lambda: _in_line(waiting, 1), message="the second job to wait")
    pid = waiting.status()["pid"]
    duplicate = start(workspace, "hold", waiting.name, "test")  # a double click, a second tab
    assert duplicate.wait(timeout=120) != 0
    assert "waiting for a training slot in another process" in (waiting.folder / "job.log").read_text()
    assert _in_line(waiting, 1) and waiting.status()["pid"] == pid
    cancel(first, "test")
    wait_for(lambda: _running(waiting), message="the waiter to start")
    cancel(waiting, "test")
    _end(first_process, waiting_process)
