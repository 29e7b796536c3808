"""A Celery worker killed mid-task (SIGKILL) loses nothing: the task is redelivered to the next worker,
and the job it was running is marked ``interrupted`` in the registry, not left ``running`` (issue 19).

Real redis-server, real ``cocoseg serve`` in Celery mode, real ``cocoseg worker`` processes; the
job is an evaluation of a tiny imported model, started by the Evaluate page's own background
callback request (no browser: the request is the one Dash's renderer sends). Worker A runs it
slowly (``COCOSEG_JOB_THROTTLE_SECONDS``) and is killed with its whole process tree (main
process, pool process and the job process) while the job runs: a crash or the OOM killer. With
``task_acks_late`` and ``task_reject_on_worker_lost`` the task was never acknowledged, so Redis
hands it to worker B once its visibility timeout has passed (``COCOSEG_BROKER_VISIBILITY_SECONDS``,
short here); with Celery's early acknowledgement it would be gone for good.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request

import psutil
import pytest

from benchmarks.server_process import clean_environment
from cocoseg.app.ids import Evaluate
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.jobs import observe
from cocoseg.pipeline.jobs.registry import RunFolder
from tests.celery_support import PROJECT_ROOT, import_tiny_model, start_worker
from tests.waiting import wait_for

pytest_plugins = ["tests.e2e.celery_conftest"]
pytestmark = [pytest.mark.slow, pytest.mark.extended]

VISIBILITY_S = "8"
RECEIVED = re.compile(r"Task (background_callback_\w+)\[([0-9a-f-]+)\] received")


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url + "/_dash-update-component",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _evaluate_request(server_url: str, model: str) -> dict:
    """The request the Evaluate button sends, built from the server's own callback list."""
    with urllib.request.urlopen(server_url + "/_dash-dependencies", timeout=60) as response:
        dependencies = json.loads(response.read())
    output = next(
        item["output"]
        for item in dependencies
        if Evaluate.RUN_MESSAGE in item["output"] and "@" not in item["output"]
    )
    return {
        "output": output,
        "outputs": [
            {"id": Evaluate.RUN_MESSAGE, "property": "children"},
            {"id": Evaluate.REFRESH, "property": "data"},
        ],
        "inputs": [{"id": Evaluate.RUN, "property": "n_clicks", "value": 1}],
        "state": [
            {"id": Evaluate.PENDING_MODEL, "property": "value", "value": model},
            {"id": Evaluate.SPLIT, "property": "value", "value": "demo/val"},
            {"id": Evaluate.REFRESH, "property": "data", "value": 0},
        ],
        "changedPropIds": [f"{Evaluate.RUN}.n_clicks"],
    }


def _evaluations(workspace: Workspace) -> list[RunFolder]:
    folder = workspace.jobs_dir
    return [RunFolder(path) for path in sorted(folder.glob("evaluate-*"))] if folder.is_dir() else []


def _kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and every descendant at once (no chance to clean up); their pids."""
    root = psutil.Process(pid)
    victims = [root, *root.children(recursive=True)]
    for victim in victims:
        victim.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=30)
    return [victim.pid for victim in victims]


def test_a_killed_workers_task_is_redelivered_and_its_job_not_left_running(
    redis_server, serve_celery_mode, tmp_path_factory
):
    home = tmp_path_factory.mktemp("worker-lost-home")
    logs = tmp_path_factory.mktemp("worker-lost-logs")
    workspace = Workspace(home).ensure()
    import_tiny_model(workspace, "acks-late")
    broker_url = redis_server.url(3)  # a database of its own: no other worker takes the task
    slow = {"COCOSEG_JOB_THROTTLE_SECONDS": "2", "COCOSEG_BROKER_VISIBILITY_SECONDS": VISIBILITY_S}
    with serve_celery_mode(home, broker_url, logs / "server.log") as server:
        first = start_worker(home, broker_url, logs / "worker-a.log", settings=slow)
        try:
            handle = _post(server.url, _evaluate_request(server.url, "acks-late"))
            task_id = handle["job"].split("~", 1)[0]
            wait_for(
                lambda: any(
                    observe(entry).state == "running" and (observe(entry).progress or {}).get("done")
                    for entry in _evaluations(workspace)
                ),
                timeout=180,
                message="the evaluation to run in worker A",
            )
            assert any(match.group(2) == task_id for match in RECEIVED.finditer(first.log()))
            (running,) = _evaluations(workspace)
            killed = _kill_tree(first.process.pid)
            assert running.status()["pid"] in killed  # the job process died with the worker
        finally:
            first.stop()
        assert running.status()["status"] == "running"  # nobody could record anything: as after a crash

        second = start_worker(
            home,
            broker_url,
            logs / "worker-b.log",
            settings={"COCOSEG_BROKER_VISIBILITY_SECONDS": VISIBILITY_S},
        )
        try:
            wait_for(
                lambda: any(match.group(2) == task_id for match in RECEIVED.finditer(second.log())),
                timeout=180,
                message=f"worker B to receive the killed worker's task {task_id}",
            )
            wait_for(
                lambda: f"[{task_id}] succeeded" in second.log(),
                timeout=300,
                message="the redelivered task to end",
            )
        finally:
            second.stop()
    # the redelivered callback evaluated again (a new entry, finished); the killed job is not left running
    listing = subprocess.run(
        [sys.executable, "-m", "cocoseg", "jobs", "list", "--all"],
        cwd=PROJECT_ROOT,
        env=clean_environment(COCOSEG_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    states = {entry.name: entry.status()["status"] for entry in _evaluations(workspace)}
    assert states[running.name] == "interrupted", states
    assert "finished" in [state for name, state in states.items() if name != running.name], states
    assert running.name in listing.stdout and "interrupted" in listing.stdout
