"""The job registry: process identity, liveness, reconcile, heartbeat thread, guarded kill.

Every process here is real: children are ``python -c`` scripts that record their own
identity with ``process_identity()`` into a run folder, exactly as a job body does, and
are then killed with SIGKILL. No TensorFlow is needed, so these tests are quick.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from cocoseg.pipeline.jobs.registry import (
    HEARTBEAT_FILE,
    Heartbeat,
    RunError,
    RunFolder,
    create_run,
    delete_run,
    job_process_alive,
    kill_job,
    process_identity,
    reconcile,
    reconcile_runs,
)
from tests.waiting import process_running, wait_for

HANG_GUARD_S = 60  # only a guard against a hang: the heartbeat thread beats every 0.05 s

# A job body in miniature: record this process in the run's status, optionally start a
# grandchild (``sleep 60``) and write its pid, then wait to be killed.
CHILD_SCRIPT = """
import pathlib, subprocess, sys, time
from cocoseg.pipeline.jobs.registry import RunFolder, process_identity
run = RunFolder(pathlib.Path(sys.argv[1]))
if sys.argv[2] == "with-grandchild":
    grandchild = subprocess.Popen(["sleep", "60"])
    (run.folder / "grandchild.pid").write_text(str(grandchild.pid))
run.set_status("running", **process_identity())
time.sleep(120)
"""


@pytest.fixture
def job_child(workspace, processes):
    """A run folder under ``runs/`` and a real child process that records itself as its job."""

    def start(with_grandchild: bool = False, parent: Path | None = None):
        run = create_run(workspace, {"model": "unet"}, "unet", parent=parent)
        child = processes(
            [
                sys.executable,
                "-c",
                CHILD_SCRIPT,
                str(run.folder),
                "with-grandchild" if with_grandchild else "plain",
            ]
        )
        wait_for(
            lambda: run.status().get("pid") == child.pid or child.poll() is not None,
            message="the child to record itself",
        )
        assert child.poll() is None, child.stderr.read().decode()
        if with_grandchild:
            wait_for(lambda: (run.folder / "grandchild.pid").is_file(), message="the grandchild pid")
        return run, child

    return start


# --- process identity ----------------------------------------------------------------------


@pytest.mark.parametrize("lost", [2, 4, 10, 0.5])  # characters lost from the line's end, or a share
def test_a_line_cut_short_is_left_out_and_what_follows_it_is_read(workspace, lost):
    """A job killed mid-write (or a full disk) leaves part of a line, and the next write (the kill's own
    event, a resume's epoch) follows it; the pages read both files on every poll."""
    run = create_run(workspace, {}, "unet")
    for epoch in (1, 2):
        run.append_event({"type": "epoch", "epoch": epoch})
        run.append_history({"epoch": epoch, "loss": 0.5 / epoch, "val_miou": 0.25 * epoch, "seconds": 12.5})
    for path in (run.folder / "events.jsonl", run.folder / "history.csv"):
        whole = path.read_text()
        last = whole.splitlines(keepends=True)[-1]
        cut = int(len(last) * lost) if isinstance(lost, float) else lost  # 2: "...12.5" of "...12.5,\n"
        path.write_text(whole[: len(whole) - cut])
    assert [event["epoch"] for event in run.events()] == [1]
    assert [row["epoch"] for row in run.history()] == [1.0]
    run.append_event({"type": "killed"})
    run.append_history({"epoch": 3, "loss": 0.1, "val_miou": 0.5})
    assert [event.get("epoch", event["type"]) for event in run.events()] == [1, "killed"]
    assert [(row["epoch"], row["val_miou"]) for row in run.history()] == [(1.0, 0.25), (3.0, 0.5)]


def test_history_written_with_csv_line_ends_before_still_reads(workspace):
    run = create_run(workspace, {}, "unet")
    (run.folder / "history.csv").write_text(
        "epoch,loss,val_loss,val_miou,learning_rate,seconds,images_per_second\r\n1,0.5,,0.25,,,\r\n",
        newline="",
    )
    run.append_history({"epoch": 2, "loss": 0.25, "val_miou": 0.5})
    assert [(row["epoch"], row["val_miou"]) for row in run.history()] == [(1.0, 0.25), (2.0, 0.5)]


def test_process_identity_names_this_process_and_round_trips_through_status(tmp_path, monkeypatch):
    monkeypatch.delenv("COCOSEG_JOB_OWNER", raising=False)
    identity = process_identity()
    assert identity == {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_started": psutil.Process().create_time(),
        "owner": "cli",
    }
    monkeypatch.setenv("COCOSEG_JOB_OWNER", "dash-diskcache")
    assert process_identity()["owner"] == "dash-diskcache"
    run = RunFolder(tmp_path)
    run.set_status("running", **identity)
    written = json.loads((tmp_path / "status.json").read_text())  # plain JSON on disk
    assert {key: written[key] for key in identity} == identity
    assert job_process_alive(run.status()) is True


def test_a_finished_process_is_not_alive(processes):
    child = processes(["true"])
    started = psutil.Process(child.pid).create_time()  # readable until the parent reaps it
    child.wait(timeout=10)
    assert (
        job_process_alive({"host": socket.gethostname(), "pid": child.pid, "pid_started": started}) is False
    )


def test_a_recycled_pid_is_not_the_job():
    """Same pid, another start time: the pid was reused by an unrelated process."""
    identity = process_identity()
    assert job_process_alive({**identity, "pid_started": identity["pid_started"] - 3600}) is False
    assert job_process_alive({**identity, "pid_started": identity["pid_started"] + 5}) is False


def test_liveness_cannot_be_told_for_another_host_or_an_incomplete_identity():
    identity = process_identity()
    assert job_process_alive({**identity, "host": "another-host"}) is None
    assert job_process_alive({key: value for key, value in identity.items() if key != "pid_started"}) is None
    assert job_process_alive({**identity, "pid": str(identity["pid"])}) is None
    assert job_process_alive({}) is None


# --- reconcile ------------------------------------------------------------------------------


def test_reconcile_marks_a_killed_job_interrupted_at_once(job_child):
    run, child = job_child()
    assert reconcile(run) is None  # alive: left alone
    assert run.status()["status"] == "running"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert (
        reconcile(run, stale_seconds=3600) == "interrupted"
    )  # no waiting for a stale heartbeat on this host
    status = run.status()
    assert status["status"] == "interrupted"
    assert f"its process (pid {child.pid}) ended without finishing" in status["message"]
    assert status["message"].endswith("nothing was saved yet, start it again")
    assert run.events()[-1]["type"] == "interrupted"
    assert reconcile(run) is None  # not active any more: nothing to do


def test_reconcile_finds_an_unreaped_killed_job(job_child):
    """A SIGKILLed child that its parent has not reaped yet is a zombie: already dead."""
    run, child = job_child()
    os.kill(child.pid, signal.SIGKILL)
    wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, message="the zombie")
    assert reconcile(run) == "interrupted"


def test_reconcile_offers_resume_when_a_checkpoint_exists(job_child):
    run, child = job_child()
    run.last_checkpoint.write_bytes(b"a finished epoch")
    child.kill()
    child.wait(timeout=10)
    assert reconcile(run) == "interrupted"
    assert run.status()["message"].endswith("resume it to continue from the last finished epoch")


def test_reconcile_leaves_a_queued_job_without_a_process_alone(workspace):
    run = create_run(workspace, {}, "unet")
    assert run.status()["status"] == "queued" and "pid" not in run.status()
    assert reconcile(run, stale_seconds=0) is None
    assert reconcile_runs(workspace, stale_seconds=0) == []
    assert run.status()["status"] == "queued"


def test_reconcile_leaves_finished_jobs_alone(workspace, processes):
    child = processes(["true"])
    child.wait(timeout=10)
    run = create_run(workspace, {}, "unet")
    run.set_status("finished", host=socket.gethostname(), pid=child.pid, pid_started=time.time() - 10)
    assert reconcile(run) is None and run.status()["status"] == "finished"


def _write_status(run: RunFolder, status: dict) -> None:
    """status.json exactly as given (``set_status`` would keep old fields and refresh the heartbeat)."""
    (run.folder / "status.json").write_text(json.dumps(status))


def _age(run: RunFolder, seconds: float, heartbeat_file: bool = True) -> None:
    """Make the signs of life of ``run`` ``seconds`` old (status heartbeat, and the heartbeat file)."""
    status = run.status()
    status["heartbeat"] = time.time() - seconds
    _write_status(run, status)
    if heartbeat_file and (run.folder / HEARTBEAT_FILE).is_file():
        os.utime(run.folder / HEARTBEAT_FILE, (status["heartbeat"], status["heartbeat"]))


def test_another_hosts_job_is_judged_by_its_heartbeat(workspace):
    run = create_run(workspace, {}, "unet")
    run.set_status("running", host="gpu-box", pid=4242, pid_started=1_700_000_000.0)
    assert reconcile(run, stale_seconds=30) is None  # fresh heartbeat: a worker elsewhere is on it
    _age(run, 20)
    assert reconcile(run, stale_seconds=30) is None
    run.beat()  # its Heartbeat thread touched the file: alive, though status.json is old
    _age(run, 600, heartbeat_file=False)
    assert reconcile(run, stale_seconds=30) is None
    _age(run, 600)
    assert reconcile(run, stale_seconds=30) == "interrupted"
    assert "no heartbeat from gpu-box for over 30 s" in run.status()["message"]


def test_reconcile_runs_covers_training_runs_and_preparation_jobs(workspace, job_child):
    training, training_child = job_child()
    workspace.jobs_dir.mkdir(parents=True, exist_ok=True)
    preparation, preparation_child = job_child(parent=workspace.jobs_dir)
    live, _ = job_child()
    for child in (training_child, preparation_child):
        child.kill()
        child.wait(timeout=10)
    assert sorted(reconcile_runs(workspace)) == sorted([training.name, preparation.name])
    assert training.status()["status"] == preparation.status()["status"] == "interrupted"
    assert "resume" not in preparation.status()["message"]  # a preparation job is started again, not resumed
    assert live.status()["status"] == "running"
    assert reconcile_runs(workspace) == []


def test_an_active_run_cannot_be_deleted_until_its_process_is_gone(workspace, job_child):
    run, child = job_child()
    with pytest.raises(RunError, match="is running; cancel it before deleting"):
        delete_run(workspace, run.name)
    assert run.folder.is_dir()
    child.kill()
    child.wait(timeout=10)
    delete_run(workspace, run.name)  # reconcile first: interrupted, so it may go
    assert not run.folder.exists()


# --- the heartbeat thread -------------------------------------------------------------------


def test_heartbeat_keeps_a_slow_job_alive_and_stops_with_it(tmp_path):
    run = RunFolder(tmp_path)
    run.set_status("running", host="another-host", pid=1, pid_started=0.0)
    _age(run, 600)
    aged = run.last_alive()
    status_heartbeat = run.status()["heartbeat"]
    with Heartbeat(run, seconds=3600):  # the thread's first beat is an hour away: only entering touches
        assert run.last_alive() > aged
    heartbeat = Heartbeat(run, seconds=0.05)
    with heartbeat:
        seen = [run.last_alive()]
        for _ in range(3):  # a "slow batch": no progress events, yet the thread beats on
            wait_for(lambda: run.last_alive() > seen[-1], timeout=HANG_GUARD_S, message="the next heartbeat")
            seen.append(run.last_alive())
        assert run.status()["heartbeat"] == status_heartbeat  # no status write: the beats are the thread's
        # status.json is 600 s old; the beats keep it alive (60 s: a margin for a loaded machine)
        assert reconcile(run, stale_seconds=60) is None
        assert heartbeat._thread.is_alive()
    assert not heartbeat._thread.is_alive()  # joined: nothing can touch the heartbeat any more
    assert not [thread for thread in threading.enumerate() if thread.name == f"heartbeat-{run.name}"]


def test_heartbeat_survives_a_failing_write(tmp_path, caplog):
    """A beat that cannot be written (here: the folder vanished) is logged; the thread lives on."""
    folder = tmp_path / "run"
    folder.mkdir()
    run = RunFolder(folder)
    heartbeat = Heartbeat(run, seconds=0.05)
    with caplog.at_level("WARNING", logger="cocoseg.pipeline.jobs.registry"):
        with heartbeat:
            (folder / HEARTBEAT_FILE).unlink()
            folder.rmdir()
            wait_for(
                lambda: "heartbeat of run failed" in caplog.text, timeout=HANG_GUARD_S, message="the warning"
            )
            assert heartbeat._thread.is_alive()
    assert not heartbeat._thread.is_alive()


# --- kill_job -------------------------------------------------------------------------------


def test_kill_job_ends_the_recorded_process_and_its_children(job_child):
    run, child = job_child(with_grandchild=True)
    grandchild = int((run.folder / "grandchild.pid").read_text())
    assert psutil.Process(grandchild).ppid() == child.pid
    assert kill_job(run) is True
    child.wait(timeout=10)
    assert not process_running(child.pid) and not process_running(grandchild)
    assert not [
        process
        for process in psutil.Process().children(recursive=True)
        if process.pid in (child.pid, grandchild)
    ]
    status = run.status()
    assert status["status"] == "cancelled" and "its process was ended" in status["message"]
    assert run.events()[-1]["type"] == "killed"
    assert kill_job(run) is False  # nothing active left to kill


def test_kill_job_refuses_a_forged_or_replayed_pid(workspace, processes):
    """A status naming a live process that is not the job's: a made-up pid, pid 1, or a replayed entry."""
    bystander = processes(["sleep", "60"])
    wait_for(lambda: psutil.pid_exists(bystander.pid), message="sleep to start")
    real_start = psutil.Process(bystander.pid).create_time()
    host = socket.gethostname()
    run = create_run(workspace, {}, "unet")
    for forged in (
        {"pid": bystander.pid, "pid_started": real_start - 1000},  # a recycled or made-up pid
        {"pid": 1, "pid_started": 0.0},  # init, with a start time that is not its own
        {"pid": bystander.pid},  # no start time recorded at all
        {"pid": str(bystander.pid), "pid_started": real_start},
    ):  # not even a number
        _write_status(run, {"status": "running", "host": host, "heartbeat": time.time(), **forged})
        assert kill_job(run) is False, forged
        assert bystander.poll() is None and psutil.Process(bystander.pid).is_running()
        assert run.status()["status"] == "running"
    # a finished job's entry replayed onto a live process with its true start time: not active, refused
    _write_status(run, {"status": "finished", "host": host, "pid": bystander.pid, "pid_started": real_start})
    assert kill_job(run) is False
    assert bystander.poll() is None
    assert psutil.Process(1).is_running()
