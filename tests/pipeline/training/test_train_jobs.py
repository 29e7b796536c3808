"""Training as a registry job: queue, one writer, registry cancel, failures, a killed process.

The model is tiny (UNet, 4 base filters, depth 2) on a generated shapes set of 32 train
and 8 val images at 64 px, so an epoch is four batches of eight and takes about a second.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from cocoseg.errors import ConfigError
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.jobs.registry import HEARTBEAT_FILE, RunError, get_run, reconcile_runs
from cocoseg.pipeline.prepare import find_prepared
from cocoseg.pipeline.training.checks import create
from cocoseg.pipeline.training.config import TrainConfig
from cocoseg.pipeline.training.loop import device_name, resume, train_queued
from tests.pipeline.shapes import prepared_shapes
from tests.waiting import wait_for

TINY_UNET = {"base_filters": 4, "depth": 2}


@pytest.fixture(scope="module")
def tiny_shapes(tmp_path_factory):
    """A workspace with a small generated shapes set prepared (32 train / 8 val, 64 px)."""
    workspace, name = prepared_shapes(tmp_path_factory.mktemp("train-jobs"), (32, 8), (11, 12), shards=1)
    assert find_prepared(workspace, name).manifest["splits"]["train"]["examples"] == 32
    return workspace, name


def _config(prepared: str, **changes) -> TrainConfig:
    base = TrainConfig(
        prepared,
        model="unet",
        model_options=TINY_UNET,
        epochs=2,
        batch_size=8,
        learning_rate=3e-3,
        schedule="constant",
        augment=False,
        seed=3,
    )
    return dataclasses.replace(base, **changes)


def _heartbeat_threads(name: str) -> list[threading.Thread]:
    return [
        thread for thread in threading.enumerate() if thread.name == f"heartbeat-{name}" and thread.is_alive()
    ]


def _child_pids() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_create_queues_then_one_writer_trains_it_and_a_second_start_is_refused(tiny_shapes, monkeypatch):
    """``create`` queues; ``train_queued`` (in a thread) records its process and trains; a second
    start while it holds the run (a double click, a second tab) and one after it finished are refused."""
    workspace, prepared = tiny_shapes
    monkeypatch.setenv("COCOSEG_JOB_OWNER", "dash-diskcache")
    run = create(workspace, _config(prepared, epochs=1))
    status = run.status()
    assert status["status"] == "queued" and "pid" not in status  # nothing runs it yet
    assert run.config()["prepared_folder"] == prepared and run.config()["model_options"] == TINY_UNET
    before = _child_pids()
    training, release = threading.Event(), threading.Event()
    outcome: list = []

    def hold_after_first_batch(event):
        if event["type"] == "batch" and not training.is_set():
            training.set()
            assert release.wait(120), "the test never released the first run"

    thread = threading.Thread(
        target=lambda: outcome.append(train_queued(workspace, run.name, on_progress=hold_after_first_batch))
    )
    thread.start()
    try:
        assert training.wait(120), "the first run never reported a batch"
        status = run.status()
        assert (
            status["status"] == "running"
            and status["host"] == socket.gethostname()
            and status["pid"] == os.getpid()
        )
        assert status["pid_started"] == psutil.Process().create_time() and status["owner"] == "dash-diskcache"
        assert status["device"] == device_name() and status["epochs"] == 1  # "CPU" here, "1 GPU" on one
        assert _heartbeat_threads(run.name)
        with pytest.raises(RunError, match=f"run {run.name} is being trained by another process"):
            train_queued(workspace, run.name)
    finally:
        release.set()
        thread.join(120)
    assert (
        outcome
        and outcome[0].status == "finished"
        and outcome[0].epochs_done == 1
        and outcome[0].best_miou is not None
    )
    status = run.status()
    assert status["status"] == "finished" and status["message"].startswith("best val mIoU ")
    assert status["pid"] == os.getpid() and status["owner"] == "dash-diskcache"
    assert (run.folder / HEARTBEAT_FILE).is_file() and not _heartbeat_threads(run.name)
    assert [row["epoch"] for row in run.history()] == [1] and run.last_checkpoint.is_file()
    assert [event["batch"] for event in run.events() if event["type"] == "batch"] == [
        1
    ]  # one trainer's events only
    assert _child_pids() <= before
    with pytest.raises(RunError, match=f"run {run.name} is finished, not queued; it was started already"):
        train_queued(workspace, run.name)
    assert [row["epoch"] for row in run.history()] == [1]  # the refused start wrote nothing


@pytest.mark.slow  # 10-40 s of training: `make test` runs it, `make test-fast` does not
def test_registry_cancel_mid_run_stops_within_one_batch_and_keeps_the_last_epoch(tiny_shapes, monkeypatch):
    import keras

    import cocoseg.pipeline.training.loop as train_module

    workspace, prepared = tiny_shapes
    monkeypatch.setattr(
        train_module, "EVENT_EVERY_BATCHES", 1
    )  # an event per batch, so every batch run is visible
    run = create(workspace, _config(prepared, epochs=2))
    checkpoint_after_epoch_one = {}

    def cancel_in_epoch_two(event):
        if event["type"] == "epoch" and event["epoch"] == 1:
            checkpoint_after_epoch_one["digest"] = _digest(run.last_checkpoint)
        if event["type"] == "batch" and event["epoch"] == 2 and event["batch"] == 1:
            run.request_cancel(by="test")  # what the page's Cancel button does, from any process

    before = _child_pids()
    outcome = train_queued(workspace, run.name, on_progress=cancel_in_epoch_two)
    assert outcome.status == "cancelled" and outcome.epochs_done == 1
    status = run.status()
    assert status["status"] == "cancelled"
    assert status["message"] == "cancelled during epoch 2; the last checkpoint is from epoch 1"
    events = run.events()
    assert [event["batch"] for event in events if event["type"] == "batch" and event["epoch"] == 2] == [1]
    assert [event["batch"] for event in events if event["type"] == "batch" and event["epoch"] == 1] == [
        1,
        2,
        3,
        4,
    ]
    assert (
        events[-1]["type"] == "cancel_requested" and events[-1]["by"] == "test"
    )  # no batch after the request
    assert run.state()["epoch"] == 1 and [row["epoch"] for row in run.history()] == [1]
    assert _digest(run.last_checkpoint) == checkpoint_after_epoch_one["digest"]
    assert keras.models.load_model(run.last_checkpoint).output.shape[-1] == 4
    assert not _heartbeat_threads(run.name) and _child_pids() <= before
    # resuming clears the request (or it would stop again at once) and finishes the run
    resumed = resume(workspace, run.name)
    assert resumed.status == "finished" and not run.cancel_requested()
    assert [row["epoch"] for row in run.history()] == [1, 2]


def test_a_cancel_requested_before_the_start_trains_nothing(tiny_shapes):
    workspace, prepared = tiny_shapes
    run = create(workspace, _config(prepared))
    run.request_cancel()
    outcome = train_queued(workspace, run.name)
    assert outcome.status == "cancelled" and outcome.epochs_done == 0
    status = run.status()
    assert status["status"] == "cancelled" and status["message"] == "cancelled before it started"
    assert "pid" not in status  # no process ever took it
    assert not run.last_checkpoint.exists() and run.history() == []
    assert not [event for event in run.events() if event["type"] in ("batch", "epoch")]
    with pytest.raises(RunError, match="no finished epoch to resume from"):
        resume(workspace, run.name)


def test_an_error_inside_the_job_is_recorded_as_failed(tiny_shapes):
    workspace, prepared = tiny_shapes
    run = create(workspace, _config(prepared))

    def broken_progress(event):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train_queued(workspace, run.name, on_progress=broken_progress)
    status = run.status()
    assert status["status"] == "failed" and status["message"] == "RuntimeError: boom"
    assert run.events()[-1] == {**run.events()[-1], "type": "failed", "message": "RuntimeError: boom"}
    assert not _heartbeat_threads(run.name)
    with pytest.raises(RunError, match="is failed, not queued"):  # the lock was released, the status tells
        train_queued(workspace, run.name)


@pytest.mark.slow  # 10-40 s of training: `make test` runs it, `make test-fast` does not
def test_a_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(tiny_shapes, monkeypatch):
    """ENOSPC is injected into ``keras.Model.save`` at the second epoch's ``last.keras`` write.

    A really full disk needs a small filesystem mounted for the workspace (root and a
    mount namespace), which this machine's test run cannot do. The injection sits below
    ``_save_checkpoint``: it writes a partial temporary file and raises the same OSError
    the kernel would, so the temp-and-rename logic, the failure message and the
    recovery are all the real code.
    """
    import keras

    workspace, prepared = tiny_shapes
    run = create(workspace, _config(prepared, epochs=2))
    original_save = keras.Model.save
    saves: list[str] = []
    checkpoint_after_epoch_one = {}

    def save_until_the_disk_fills(model, filepath, *args, **kwargs):
        path = Path(filepath)
        saves.append(path.name)
        if path.name == ".last.tmp.keras" and saves.count(path.name) == 2:
            checkpoint_after_epoch_one["digest"] = _digest(run.last_checkpoint)
            path.write_bytes(b"PK\x03\x04 half a zip")  # the write got this far
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return original_save(model, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save_until_the_disk_fills)
    with pytest.raises(OSError) as raised:
        train_queued(workspace, run.name)
    assert raised.value.errno == errno.ENOSPC
    assert saves == [".last.tmp.keras", ".best.tmp.keras", ".last.tmp.keras"]
    status = run.status()
    assert status["status"] == "failed"
    assert status["message"] == (
        "the disk is full (No space left on device); the checkpoint of epoch 1 is kept. "
        "Free some space, then resume"
    )
    assert sorted(path.name for path in run.checkpoints.iterdir()) == [
        "best.keras",
        "last.keras",
    ]  # no stray temp file
    assert _digest(run.last_checkpoint) == checkpoint_after_epoch_one["digest"]
    assert keras.models.load_model(run.last_checkpoint).output.shape[-1] == 4
    assert run.state()["epoch"] == 1 and not _heartbeat_threads(run.name)
    monkeypatch.undo()  # space freed
    resumed = resume(workspace, run.name)
    assert resumed.status == "finished" and [row["epoch"] for row in run.history()] == [1, 2]


def test_a_run_that_cannot_start_is_recorded_as_failed_not_left_queued(tiny_shapes):
    """The prepared set is deleted (by hand, or on another tab) between queueing a run and its job
    starting.
    """
    workspace, prepared = tiny_shapes
    copy = workspace.prepared_dir / "shapes-copy-deleted-later"
    shutil.copytree(workspace.prepared_dir / prepared, copy)
    run = create(workspace, _config(copy.name))
    shutil.rmtree(copy)
    with pytest.raises(ConfigError, match="prepared: no prepared set called 'shapes-copy-deleted-later'"):
        train_queued(workspace, run.name)
    assert run.status()["status"] == "failed"
    assert "no prepared set called 'shapes-copy-deleted-later'" in run.status()["message"]


# A training job body in its own process; it holds still in epoch 2 (after epoch 1's
# checkpoint) so the test can kill it mid-run at a known place.
TRAINING_CHILD = """
import pathlib, sys, time
from cocoseg.pipeline.training.loop import train_queued
from cocoseg.pipeline.core.workspace import Workspace

def hold_in_epoch_two(event):
    if event["type"] == "batch" and event["epoch"] == 2:
        time.sleep(600)

train_queued(Workspace(pathlib.Path(sys.argv[1])), sys.argv[2], on_progress=hold_in_epoch_two)
"""


@pytest.fixture
def training_child(tmp_path, processes):
    """Start ``TRAINING_CHILD`` for a run (killed and reaped at the end if still running)."""

    def start(workspace: Workspace, name: str) -> subprocess.Popen:
        return processes(
            [sys.executable, "-c", TRAINING_CHILD, str(workspace.root), name], log=tmp_path / "child.log"
        )

    return start


@pytest.mark.slow
def test_a_killed_training_process_is_interrupted_then_resumed(tiny_shapes, training_child, tmp_path):
    workspace, prepared = tiny_shapes
    run = create(workspace, _config(prepared, epochs=2))
    child = training_child(workspace, run.name)
    deadline = time.monotonic() + 240
    while not any(event["type"] == "batch" and event["epoch"] == 2 for event in run.events()):
        assert child.poll() is None, (tmp_path / "child.log").read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, "the child never reached epoch 2"
        time.sleep(0.2)
    status = run.status()
    assert status["status"] == "running" and status["pid"] == child.pid
    assert status["pid_started"] == psutil.Process(child.pid).create_time() and status["owner"] == "cli"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert run.status()["status"] == "running"  # a killed process records nothing: reconcile must
    assert reconcile_runs(workspace) == [run.name]
    status = run.status()
    assert status["status"] == "interrupted"
    assert f"its process (pid {child.pid}) ended without finishing" in status["message"]
    assert "resume it to continue from the last finished epoch" in status["message"]
    assert run.state()["epoch"] == 1
    resumed = resume(workspace, run.name)
    assert resumed.status == "finished" and resumed.epochs_done == 2
    assert [row["epoch"] for row in get_run(workspace, run.name).history()] == [1, 2]
    assert run.status()["pid"] == os.getpid() and child.pid not in _child_pids()


# The bare job body, held in its start-up for ever: after it took the run and recorded its
# process ("queued", "starting"), the settings check that comes next never returns. So the
# test kills it in that window every time, on a fast machine or a slow one.
STARTING_CHILD = """
import pathlib, sys, threading
from cocoseg.pipeline.training import loop as train
from cocoseg.pipeline.core.workspace import Workspace

train.check = lambda *arguments, **options: threading.Event().wait()
train.train_queued(Workspace(pathlib.Path(sys.argv[1])), sys.argv[2])
"""


@pytest.fixture
def killed_while_starting(tiny_shapes, tmp_path, processes):
    """A queued run whose job process took the run (holds its lock, recorded its pid) and was SIGKILLed
    before "running".
    """
    workspace, prepared = tiny_shapes
    run = create(workspace, _config(prepared, epochs=1))
    child = processes(
        [sys.executable, "-c", STARTING_CHILD, str(workspace.root), run.name], log=tmp_path / "child.log"
    )
    wait_for(
        lambda: run.status().get("pid") == child.pid or child.poll() is not None,
        120,
        "the child to take the run",
    )
    assert child.poll() is None, (tmp_path / "child.log").read_text(errors="replace")[-3000:]
    assert run.status()["status"] == "queued" and run.status()["message"] == "starting"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    return workspace, run, child.pid


@pytest.mark.slow
def test_a_job_killed_while_starting_is_not_left_queued(killed_while_starting):
    workspace, run, pid = killed_while_starting
    assert reconcile_runs(workspace) == [run.name]
    assert run.status()["status"] == "interrupted" and f"pid {pid}" in run.status()["message"]
