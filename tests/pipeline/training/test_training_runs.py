"""The run board a page polls: every run, which are live, and a signature that changes with what is shown."""

from __future__ import annotations

import json
import time

from cocoseg.pipeline.jobs.registry import create_run, process_identity
from cocoseg.pipeline.training import registry_signature, run_board


def _run(workspace, status: str = "queued", **fields):
    run = create_run(workspace, {"model": "unet", "epochs": 3}, "unet")
    if status != "queued" or fields:
        run.set_status(status, **fields)
    return run


def _age_heartbeat(run, seconds: float) -> None:
    """As if the job had said nothing for ``seconds`` (these runs have no heartbeat file)."""
    status = run.status()
    status["heartbeat"] = time.time() - seconds
    (run.folder / "status.json").write_text(json.dumps(status))


def test_the_signature_is_json_and_stays_put_while_nothing_changes(workspace):
    run = _run(workspace, "running", progress={"type": "epoch", "epoch": 1, "epochs": 3})
    signature = registry_signature([run], set())
    assert json.loads(json.dumps(signature)) == signature
    assert registry_signature([run], set()) == signature


def test_a_status_write_within_the_same_second_changes_the_signature(workspace):
    run = _run(workspace, "running", progress={"type": "epoch", "epoch": 1, "epochs": 3})
    before = registry_signature([run], set())
    run.set_status("cancelled", message="cancelled during epoch 2")
    after = registry_signature([run], set())
    assert after != before and after[0][1] == "cancelled"


def test_an_export_a_cancel_request_and_a_published_model_change_the_signature(workspace):
    run = _run(workspace, "finished")
    before = registry_signature([run], set())
    assert registry_signature([run], {run.name}) != before  # its model was published
    run.set_status("finished", export="running")
    assert registry_signature([run], set())[0][3] == "running"
    active = _run(workspace)
    quiet = registry_signature([active], set())
    active.request_cancel("test")
    assert registry_signature([active], set())[0][4] is True and quiet[0][4] is False


def test_a_stalled_run_counts_its_silent_seconds(workspace):
    run = _run(workspace, "running", **process_identity())  # this very process: alive
    _age_heartbeat(run, 600)
    name, state, *_rest, stalled_for = registry_signature([run], set())[0]
    assert name == run.name and state == "stalled" and 599 <= stalled_for <= 700


def test_the_board_lists_every_run_ends_dead_jobs_and_picks_the_live_ones(workspace):
    assert run_board(workspace).folders == () and run_board(workspace).live() == []
    queued = _run(workspace)
    dead = _run(workspace, "running", **{**process_identity(), "pid_started": 1.0})  # a recycled pid
    old = _run(workspace, "finished")
    _age_heartbeat(old, 3600)  # ended long ago: no live card
    board = run_board(workspace)
    assert {folder.name for folder in board.folders} == {queued.name, dead.name, old.name}
    assert dead.status()["status"] == "interrupted"  # supervised before it was read
    assert board.exported == frozenset()
    assert board.signature == registry_signature(list(board.folders), set())
    live = [folder.name for folder in board.live()]
    assert live[0] == queued.name and dead.name in live and old.name not in live
