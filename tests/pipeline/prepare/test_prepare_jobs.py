"""Preparation as a registry job on the real demo dataset: queue, run, cancel, refuse twice."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from cocoseg.errors import ConfigError
from cocoseg.pipeline.data.registry import RegistryError
from cocoseg.pipeline.jobs.registry import (
    HEARTBEAT_FILE,
    RunError,
    create_run,
    process_identity,
    reconcile_runs,
)
from cocoseg.pipeline.prepare import (
    AUTO_LABELS,
    PrepareJobView,
    active_duplicate,
    config_from_form,
    job_view,
    manifest_facts,
    training_split,
)
from cocoseg.pipeline.prepare.config import PrepareConfig, config_from_dict, config_to_dict
from cocoseg.pipeline.prepare.entries import create_prepare_job, get_prepare_job, list_prepare_jobs
from cocoseg.pipeline.prepare.jobs import run_prepare_job
from cocoseg.pipeline.prepare.sampling import SamplingConfig
from cocoseg.pipeline.prepare.sets import list_prepared
from tests.pipeline.conftest import LIMIT
from tests.waiting import pool_workers, wait_for

ROOT = Path(__file__).resolve().parents[3]


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _partials(workspace) -> list[str]:
    if not workspace.prepared_dir.is_dir():
        return []
    return [path.name for path in workspace.prepared_dir.iterdir() if path.name.startswith(".partial-")]


def test_config_round_trips_through_the_job_entry(workspace):
    config = PrepareConfig(
        "demo",
        splits=("val",),
        labels="custom",
        classes=("person", "car"),
        size=96,
        resize="letterbox",
        encoding="png",
        quality=80,
        min_labelled_area=12.5,
        shards=2,
        workers=2,
        sampling=SamplingConfig("repeat-factor", 0.25),
    )
    assert config_from_dict(config_to_dict(config)) == config
    job = create_prepare_job(workspace, config, LIMIT)
    stored = job.config()
    assert stored["kind"] == "prepare" and stored["splits"] == ["val"]
    assert stored["sampling"] == {"method": "repeat-factor", "threshold": 0.25}
    assert config_from_dict(stored) == config  # the job body rebuilds exactly what the form asked for
    assert config_from_dict({"dataset": "demo"}) == PrepareConfig("demo")


def test_create_then_run_finishes_with_the_prepared_set(workspace, monkeypatch):
    monkeypatch.setenv("COCOSEG_JOB_OWNER", "dash-diskcache")
    config = PrepareConfig("demo", splits=("val",), labels="voc21", size=64, shards=1, workers=1)
    job = create_prepare_job(workspace, config, LIMIT)
    assert job.folder.parent == workspace.jobs_dir and job.name.startswith("prepare-")
    queued = job.status()
    assert queued["status"] == "queued" and queued["images"] == 80 and "pid" not in queued
    assert queued["target"].startswith("demo-voc21-64-")
    assert [entry.name for entry in list_prepare_jobs(workspace)] == [job.name] and get_prepare_job(
        workspace, job.name
    ) == job
    assert reconcile_runs(workspace, stale_seconds=0) == []  # queued without a process: left alone
    events = []
    prepared = run_prepare_job(workspace, job.name, LIMIT, on_progress=events.append)
    assert prepared is not None and prepared.name == queued["target"]
    assert prepared.manifest["splits"]["val"]["examples"] == 80
    status = job.status()
    assert status["status"] == "finished" and status["prepared"] == prepared.name
    assert status["message"].startswith("prepared in ")
    assert (
        status["host"] == socket.gethostname()
        and status["pid"] == os.getpid()
        and status["owner"] == "dash-diskcache"
    )
    assert status["progress"]["done"] == status["progress"]["total"] == 80
    assert events and events[-1]["done"] == 80 and all(event["type"] == "progress" for event in events)
    assert (job.folder / HEARTBEAT_FILE).is_file()
    assert job.events()[-1] == {**job.events()[-1], "type": "finished", "prepared": prepared.name}
    assert [item.name for item in list_prepared(workspace)] == [prepared.name] and _partials(workspace) == []
    with pytest.raises(
        RunError, match=f"preparation job {job.name} is finished, not queued; it was started already"
    ):
        run_prepare_job(workspace, job.name, LIMIT)
    # the same settings again: a new job that reuses the set instead of writing it twice
    again = create_prepare_job(workspace, config, LIMIT)
    assert run_prepare_job(workspace, again.name, LIMIT).reused
    assert again.status()["message"] == "already prepared with these settings; reused"


@pytest.mark.parametrize(
    "make_config, error, field",
    [
        (
            lambda: PrepareConfig("demo", splits=("train", "test"), labels="voc21", size=64),
            ConfigError,
            "splits",
        ),
        (lambda: PrepareConfig("demo", labels="voc21", size=100), ConfigError, "size"),
        (lambda: PrepareConfig("demo", labels="voc21", size=0), ConfigError, "size"),
        (
            lambda: PrepareConfig("demo", labels="custom", classes=("unicorn",), size=64),
            ConfigError,
            "classes",
        ),
        (lambda: PrepareConfig("no-such-dataset", size=64), RegistryError, None),
    ],
)
def test_invalid_settings_record_nothing(workspace, make_config, error, field):
    with pytest.raises(error) as raised:
        create_prepare_job(workspace, make_config(), LIMIT)
    if field:
        assert raised.value.field == field
    assert list_prepare_jobs(workspace) == []
    assert not workspace.jobs_dir.exists() or not any(workspace.jobs_dir.iterdir())


def test_a_second_run_of_the_same_job_is_refused_while_it_runs(workspace):
    job = create_prepare_job(
        workspace, PrepareConfig("demo", splits=("val",), labels="voc21", size=64, workers=1), LIMIT
    )
    with workspace.lock(f"job-{job.name}"):  # what a running job body holds
        with pytest.raises(RunError, match=f"preparation job {job.name} is running in another process"):
            run_prepare_job(workspace, job.name, LIMIT)
    assert job.status()["status"] == "queued"


def test_a_cancel_requested_before_the_start_prepares_nothing(workspace):
    job = create_prepare_job(workspace, PrepareConfig("demo", labels="voc21", size=64, workers=2), LIMIT)
    job.request_cancel()
    assert run_prepare_job(workspace, job.name, LIMIT) is None
    status = job.status()
    assert (
        status["status"] == "cancelled"
        and status["message"] == "cancelled before it started"
        and "pid" not in status
    )
    assert list_prepared(workspace) == [] and _partials(workspace) == []


def test_registry_cancel_mid_run_publishes_nothing_and_ends_the_workers(workspace):
    job = create_prepare_job(
        workspace, PrepareConfig("demo", labels="voc21", size=64, shards=2, workers=2), LIMIT
    )
    assert pool_workers() == []
    seen = {}

    def cancel_on_first_progress(event):
        if not seen:
            seen.update(event, workers=len(pool_workers()), partials=_partials(workspace))
            job.request_cancel(by="test")

    assert run_prepare_job(workspace, job.name, LIMIT, on_progress=cancel_on_first_progress) is None
    assert (
        seen["workers"] == 2 and len(seen["partials"]) == 1
    )  # it really was running in a pool, into a partial folder
    status = job.status()
    assert status["status"] == "cancelled"
    assert status["message"] == f"cancelled after {seen['done']} of 160 images; nothing was published"
    assert seen["done"] < 160
    assert job.events()[-1]["type"] == "cancelled"
    assert _partials(workspace) == [] and list_prepared(workspace) == []
    assert [path.name for path in workspace.prepared_dir.iterdir()] == []
    assert pool_workers() == []  # the pool was shut down, not left running the rest of the images
    with pytest.raises(RunError, match="is cancelled, not queued"):
        run_prepare_job(workspace, job.name, LIMIT)


# --- what the Prepare page and the CLI read: form values, duplicates, job cards, set facts -----


def test_form_values_become_a_config():
    config = config_from_form("demo", ["train"], "custom", " person, car ,", 64.0, None, "repeat-factor", 0.3)
    assert config == PrepareConfig(
        "demo",
        splits=("train",),
        labels="custom",
        classes=("person", "car"),
        size=64,
        resize="stretch",
        sampling=SamplingConfig("repeat-factor", 0.3),
    )
    assert config_from_form("demo", ["val"], AUTO_LABELS, "ignored", 64, "stretch", "none", None) == (
        PrepareConfig("demo", splits=("val",), size=64)
    )


FORM = {
    "dataset": "demo",
    "splits": ["train"],
    "labels": "voc21",
    "classes": None,
    "size": 64,
    "resize": "stretch",
    "sampling": "none",
    "threshold": 0.1,
}


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"dataset": None}, "dataset", "choose a dataset"),
        ({"size": 64.5}, "size", "enter a whole number"),
        ({"size": True}, "size", "enter a whole number"),
        ({"size": 100}, "size", "must be a multiple of 32"),
        ({"sampling": "repeat-factor", "threshold": None}, "threshold", "enter a number in (0, 1]"),
        ({"sampling": "repeat-factor", "threshold": 1.5}, "threshold", "must be in (0, 1]"),
        ({"sampling": "lvis"}, "sampling", "method must be one of"),
        ({"labels": "custom", "classes": " , "}, "classes", "the custom label map needs"),
    ],
)
def test_a_bad_form_value_names_its_field_and_says_why(changes, field, message):
    with pytest.raises(ConfigError) as raised:
        config_from_form(*{**FORM, **changes}.values())
    assert raised.value.field == field and raised.value.message.startswith(message), raised.value


def test_training_split_is_the_first_training_one_else_the_first():
    assert training_split(["val", "train2017", "train"]) == "train2017"
    assert training_split(("val", "test")) == "val"
    assert training_split(None) is None and training_split([]) is None


def test_an_active_job_with_the_same_settings_is_a_duplicate(workspace):
    config = PrepareConfig("demo", splits=("val",), labels="voc21", size=64)
    assert active_duplicate(workspace, config) is None
    job = create_prepare_job(workspace, config, LIMIT)
    assert active_duplicate(workspace, config) == job.name
    assert active_duplicate(workspace, dataclasses.replace(config, size=96)) is None
    job.set_status("cancelled", message="cancelled before it started")
    assert active_duplicate(workspace, config) is None  # an ended job does not hold the settings


def test_a_job_view_shows_the_settings_progress_and_target(workspace):
    config = PrepareConfig("demo", splits=("train", "val"), labels="voc21", size=64)
    job = create_prepare_job(workspace, config, LIMIT)
    queued = job_view(job)
    target = job.status()["target"]
    assert queued == PrepareJobView(
        name=job.name,
        status="queued",
        cancelling=False,
        settings="demo · train, val · voc21 · 64 px",
        done=0,
        total=160,
        rate=None,
        eta=None,
        target=target,
        message="",
    )
    progress = {"type": "progress", "done": 40, "total": 144, "images_per_second": 20.0, "eta_seconds": 5.2}
    job.set_status("running", **process_identity(), progress=progress)
    job.request_cancel(by="test")
    running = job_view(job)
    assert (running.status, running.cancelling, running.done, running.total) == ("running", True, 40, 144)
    assert (running.rate, running.eta, running.target) == (20.0, 5.2, target)
    stored = dataclasses.asdict(running)
    assert json.loads(json.dumps(stored)) == stored  # the page's Store keeps it as JSON
    job.set_status("finished", prepared="demo-voc21-64-published", message="prepared in 3 s")
    finished = job_view(job)
    assert (finished.status, finished.cancelling, finished.target, finished.message) == (
        "finished",
        False,
        "demo-voc21-64-published",
        "prepared in 3 s",
    )
    bare = create_run(workspace, {"kind": "prepare"}, "prepare", parent=workspace.jobs_dir)
    assert job_view(bare).settings == "? ·  · auto · ? px"  # an entry from another version still has a card


def test_manifest_facts_are_a_sets_table_cells_and_details():
    manifest = {
        "created": "2024-05-01T12:30:00+00:00",
        "seconds": 3.5,
        "config": {
            "size": 64,
            "resize": "letterbox",
            "encoding": "jpeg",
            "quality": 90,
            "shards": 2,
            "sampling": {"method": "repeat-factor", "threshold": 0.25},
        },
        "label_map": {"name": "voc21", "classes": [{"name": "background"}] * 21},
        "splits": {
            "train": {"examples": 60, "skipped": {"unreadable": 3, "too small": 1}},
            "val": {"examples": 80, "skipped": {}},
        },
    }
    cells, details = manifest_facts(manifest)
    assert cells == ["voc21 (21 classes)", "64 px letterbox", "train 60 · val 80", "2024-05-01 12:30:00 UTC"]
    assert details == [
        "jpeg quality 90; 2 shards per split",
        "sampling: repeat-factor (t=0.25)",
        "skipped: train 4",
        "written in 3.5 s",
    ]
    png = {**manifest, "config": {**manifest["config"], "encoding": "png", "sampling": {"method": "none"}}}
    assert manifest_facts(png)[1][:2] == ["png; 2 shards per split", "sampling: none"]
    with pytest.raises(KeyError):
        manifest_facts({"config": {}, "label_map": {}, "splits": {}})  # the table shows "?" cells instead


# --- a preparation job whose process is killed --------------------------------------------

# A preparation job body in its own process; it holds still at its first progress event
# (its pool of two workers started, a partial folder written) so the test kills it there.
PREPARATION_CHILD = """
import pathlib, sys, time
from cocoseg.pipeline.prepare.jobs import run_prepare_job
from cocoseg.pipeline.core.workspace import Workspace

def hold(event):
    time.sleep(600)

if __name__ == "__main__":  # the pool spawns its workers from this script
    run_prepare_job(Workspace(pathlib.Path(sys.argv[1])), sys.argv[2], 1024**3, on_progress=hold)
"""
ORPHAN_EXIT_HANG_GUARD_S = 120  # a hang guard, not a speed claim
KILLED_CONFIG = PrepareConfig("demo", splits=("val",), labels="voc21", size=64, shards=1, workers=2)


@pytest.fixture(scope="module")
def killed_preparation(tmp_path_factory):
    """A preparation job whose process was SIGKILLed mid-run, and the pids of its pool workers.

    Every process it started (the job, and any worker it left behind) is killed at the end.
    """
    from cocoseg.pipeline.core.workspace import Workspace

    home = tmp_path_factory.mktemp("killed-preparation")
    workspace = Workspace(home / "workspace").ensure()
    job = create_prepare_job(workspace, KILLED_CONFIG, LIMIT)
    script = home / "preparation_child.py"
    script.write_text(PREPARATION_CHILD)
    log = open(home / "child.log", "wb")
    child = subprocess.Popen(
        [sys.executable, str(script), str(workspace.root), job.name],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    log.close()
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while "progress" not in job.status():
            assert child.poll() is None, (home / "child.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the preparation child never reported progress"
            time.sleep(0.1)
        workers = [process.pid for process in pool_workers(psutil.Process(child.pid), recursive=False)]
        assert len(workers) == 2
        partials = _partials(workspace)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        yield workspace, job, child.pid, workers, partials
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        for pid in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()


@pytest.mark.slow
def test_a_killed_preparation_job_is_interrupted_and_can_be_run_again(killed_preparation):
    workspace, job, pid, _, partials = killed_preparation
    assert job.status()["status"] == "running" and len(partials) == 1  # a killed process records nothing
    assert reconcile_runs(workspace) == [job.name]
    status = job.status()
    assert status["status"] == "interrupted"
    assert (
        status["message"]
        == f"its process (pid {pid}) ended without finishing: killed, crashed or out of memory"
    )
    assert list_prepared(workspace) == []  # the partial folder never looks finished
    again = create_prepare_job(workspace, KILLED_CONFIG, LIMIT)
    prepared = run_prepare_job(workspace, again.name, LIMIT)
    assert again.status()["status"] == "finished" and prepared.manifest["splits"]["val"]["examples"] == 80
    assert _partials(workspace) == []  # the dead job's partial folder was cleared by the next run


@pytest.mark.slow
def test_a_killed_preparation_job_leaves_no_worker_processes(killed_preparation):
    _, _, _, workers, _ = killed_preparation
    # They poll their parent every second and exit once it is gone; without that they wait for
    # ever, so the timeout only guards against that hang (generous for a loaded machine).
    wait_for(
        lambda: not any(_running(pid) for pid in workers),
        timeout=ORPHAN_EXIT_HANG_GUARD_S,
        message=f"pool workers {workers} to end after the job that started them was killed",
        interval=0.2,
    )
