"""Adding a dataset from the app: where paths may come from, and the jobs behind the form and Explore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dash import no_update

from cocoseg.app.context import browse_roots, is_loopback, registration_roots
from cocoseg.pipeline.core import settings as settings_module
from cocoseg.pipeline.data import RegistryError, get_dataset, split_stats
from cocoseg.pipeline.jobs import bodies
from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON

LIMIT = 1024**3


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.3.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("myhost.example", False),
    ],
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_roots_apply_only_when_served_on_the_network(workspace, monkeypatch, tmp_path):
    from cocoseg.app.main import create_app

    monkeypatch.setenv("COCOSEG_DATA_ROOTS", f"{tmp_path}/a:{tmp_path}/b")
    settings_module.get_settings.cache_clear()
    local = create_app(workspace)
    with local.server.app_context():
        assert registration_roots() is None  # this machine only: any path
        assert browse_roots() == ((tmp_path / "a").resolve(), (tmp_path / "b").resolve())
    network = create_app(workspace, host="0.0.0.0")
    with network.server.app_context():
        assert registration_roots() == ((tmp_path / "a").resolve(), (tmp_path / "b").resolve())
    monkeypatch.delenv("COCOSEG_DATA_ROOTS")
    settings_module.get_settings.cache_clear()
    with network.server.app_context():
        assert registration_roots() == () and browse_roots() == ()  # nothing may be registered
    with local.server.app_context():
        assert browse_roots() == (Path.home().resolve(),)


def _events():
    seen = []
    return seen, seen.append


def test_validate_job_registers_then_reports_with_counts(workspace):
    seen, progress = _events()
    request = {
        "dataset": "mine",
        "split": "val",
        "register": {"annotations": str(DEMO_VAL_JSON), "images": str(DEMO_VAL_IMAGES), "check": True},
    }
    result = bodies.validate(workspace, request, LIMIT, progress)
    assert result["report"]["totals"]["annotations"] == 815 and result["report"]["errors"] == 0
    assert "val" in get_dataset(workspace, "mine").splits
    stages = [event["stage"] for event in seen]
    assert stages[0] == "structure" and "images" in stages and stages[-1] == "annotations"
    assert seen[-1]["annotations"] == seen[-1]["annotations_total"] == 815
    assert max(event.get("images", 0) for event in seen) == 80


def test_validate_job_refuses_a_broken_file_and_registers_nothing(workspace, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [}')
    request = {
        "dataset": "mine",
        "split": "val",
        "register": {"annotations": str(broken), "images": str(DEMO_VAL_IMAGES)},
    }
    with pytest.raises(RegistryError, match="truncated"):
        bodies.validate(workspace, request, LIMIT, lambda event: None)
    with pytest.raises(RegistryError):
        get_dataset(workspace, "mine")


def test_stats_job_fills_the_cache_the_page_reads(workspace, tmp_path):
    data = json.loads(DEMO_VAL_JSON.read_text())
    for index, category in enumerate(data["categories"], start=1):
        category["name"] = f"class_{index}"
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(data))
    bodies.validate(
        workspace,
        {
            "dataset": "mine",
            "split": "val",
            "register": {"annotations": str(mine), "images": str(DEMO_VAL_IMAGES)},
        },
        LIMIT,
        lambda event: None,
    )
    seen, progress = _events()
    result = bodies.stats(workspace, {"dataset": "mine", "split": "val", "labels": None}, LIMIT, progress)
    assert result["labels"] == "all" and not result["cached"]
    assert seen[0]["stage"] == "reading"
    cached = split_stats(workspace, "mine", "val", LIMIT, "all", compute=False)
    assert cached["totals"]["annotations"] == 815


def test_stats_job_stops_at_a_cancel(workspace):
    def cancelled(event):
        if event.get("stage") == "annotations":
            raise bodies.JobCancelled("cancelled")

    with pytest.raises(bodies.JobCancelled):
        bodies.stats(workspace, {"dataset": "demo", "split": "train", "labels": "voc21"}, LIMIT, cancelled)
    assert split_stats(workspace, "demo", "train", LIMIT, "voc21", compute=False) is None


def _browse(app, trigger: str | dict, root, current=None, clicks=(1,)):
    """The folder browser's callback as the renderer calls it, ``trigger`` being the input that fired."""
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    from cocoseg.app import add_dataset

    prop = json.dumps(trigger, separators=(",", ":")) if isinstance(trigger, dict) else trigger
    triggered = [{"prop_id": f"{prop}.n_clicks", "value": 1}]
    token = context_value.set(AttributeDict(triggered_inputs=triggered))
    try:
        with app.server.test_request_context("/"):
            return add_dataset.browse(root, list(clicks), 1, current)
    finally:
        context_value.reset(token)


def test_the_folder_browser_never_leaves_its_roots_whatever_the_browser_sends(
    workspace, monkeypatch, tmp_path
):
    from cocoseg.app.ids import AddDataset
    from cocoseg.app.main import create_app

    root = tmp_path / "data"
    (root / "coco" / "images").mkdir(parents=True)
    (root / "coco" / "train.json").write_text("{}")
    (root / "coco" / "notes.txt").write_text("")
    monkeypatch.setenv("COCOSEG_DATA_ROOTS", str(root))
    settings_module.get_settings.cache_clear()
    app = create_app(workspace)
    entry = {"type": AddDataset.BROWSE_ENTRY, "path": str(root / "coco")}
    shown, rows, _ = _browse(app, entry, str(root))
    assert shown == str((root / "coco").resolve()) and "images" in str(rows) and "train.json" in str(rows)
    json_file = {"type": AddDataset.BROWSE_ENTRY, "path": str(root / "coco" / "train.json")}
    assert _browse(app, json_file, str(root))[2] == str((root / "coco" / "train.json").resolve())
    other_file = {"type": AddDataset.BROWSE_ENTRY, "path": str(root / "coco" / "notes.txt")}
    assert all(value is no_update for value in _browse(app, other_file, str(root)))
    # forged: a root that is not one, an entry outside, "up" from the root, a traversal
    for trigger, root_value, current in [
        (AddDataset.BROWSE_ROOT, "/etc", None),
        ({"type": AddDataset.BROWSE_ENTRY, "path": "/etc"}, str(root), None),
        ({"type": AddDataset.BROWSE_ENTRY, "path": str(root / ".." / "..")}, "/", None),
        (AddDataset.BROWSE_UP, str(root), str(root)),
    ]:
        shown, rows, annotation_value = _browse(app, trigger, root_value, current)
        assert shown == str(root.resolve()), (trigger, root_value)
        assert annotation_value is no_update
