"""Prepare page callbacks called as functions, on a private workspace with the real demo dataset."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import dash
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from cocoseg.app import augmentation_preview
from cocoseg.app.ids import Prepare
from cocoseg.app.main import create_app
from cocoseg.pipeline.jobs.registry import process_identity
from cocoseg.pipeline.prepare import config_from_form
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.entries import create_prepare_job, get_prepare_job, list_prepare_jobs
from cocoseg.pipeline.prepare.jobs import run_prepare_job
from cocoseg.pipeline.prepare.sets import list_prepared
from tests.app.test_main import _text, _walk
from tests.app.test_pages import _layout, _module
from tests.conftest import LIMIT

FORM = {
    "dataset": "demo",
    "splits": ["train", "val"],
    "labels": "voc21",
    "classes": None,
    "size": 64,
    "resize": "stretch",
    "sampling": "none",
    "threshold": 0.1,
}


@pytest.fixture
def page_app(workspace):
    return create_app(workspace)


@pytest.fixture
def prepare_page(page_app):
    return _module("prepare")


def _start(prepare_page, **changes) -> dict:
    """Press Start with the form's values (FORM with ``changes``); the outputs by name."""
    values = {**FORM, **changes}
    outputs = prepare_page.start_preparation(1, *values.values())
    inputs = prepare_page.FIELDS.inputs
    return {
        "invalid": dict(zip(inputs, outputs[: len(inputs)])),
        "feedback": dict(zip(prepare_page.FIELDS.ids, outputs[len(inputs) : -2])),
        "message": _text(outputs[-2]),
        "queued": outputs[-1],
    }


def test_page_module_keeps_tensorflow_out_of_the_web_process(tmp_path):
    script = (
        "import sys; from cocoseg.app.main import create_app; "
        "from cocoseg.pipeline.core.workspace import Workspace; "
        f"create_app(Workspace({str(tmp_path)!r})); "
        "assert any(name.endswith('pages.prepare') for name in sys.modules), 'prepare page not loaded'; "
        "print('tensorflow' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COCOSEG_HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


def test_layout_offers_the_demo_and_every_preset(page_app):
    layout = _layout(page_app, "Prepare")
    components = {getattr(component, "id", None): component for component in _walk(layout)}
    assert components[Prepare.DATASET].value == "demo" and components[Prepare.SPLITS].value == [
        "train",
        "val",
    ]
    assert {option["value"] for option in components[Prepare.LABELS].options} >= {
        "coco80",
        "voc21",
        "supercategory",
        "all",
        "custom",
    }
    assert (
        components[Prepare.SIZE].value == 256 and Prepare.START in components and Prepare.POLL in components
    )
    assert "Use for training: the Train page's next runs apply these strengths" in _text(layout)


def test_label_maps_are_offered_without_parsing_the_annotations(page_app, prepare_page, monkeypatch):
    """A visit offers the presets from the categories alone: parsing a COCO-scale train file in the
    server costs seconds and gigabytes (every parse of a split goes through ``registry.load_coco``)."""
    from cocoseg.pipeline.data import registry

    def refuse(*_arguments, **_keywords):
        raise AssertionError("the Prepare page parsed a whole annotation file")

    monkeypatch.setattr(registry, "load_coco", refuse)
    registry._cached_coco.cache_clear()  # a split parsed by an earlier test would hide a parse
    options, value = prepare_page.offer_label_maps("demo", None)
    assert {"voc21", "coco80", "supercategory", "custom"} <= {option["value"] for option in options}
    assert value == "auto"
    assert prepare_page.offer_label_maps("no-such-set", "voc21") == (dash.no_update, "voc21")


@pytest.mark.parametrize(
    "changes, field, expected",
    [
        ({"size": 100}, "size", "multiple of 32"),
        ({"size": 0}, "size", "multiple of 32"),
        ({"size": None}, "size", "whole number"),
        ({"splits": ["train", "test"]}, "splits", "has no split 'test'"),
        ({"splits": []}, "splits", "one or more"),
        ({"sampling": "repeat-factor", "threshold": 1.5}, "threshold", "(0, 1]"),
        ({"sampling": "repeat-factor", "threshold": 0}, "threshold", "(0, 1]"),
        ({"sampling": "repeat-factor", "threshold": None}, "threshold", "enter a number"),
        ({"labels": "custom", "classes": "person, unicorn"}, "classes", "unicorn"),
        ({"dataset": "no-such-set"}, "dataset", "no-such-set"),
    ],
)
def test_bad_settings_are_reported_beside_their_field_and_start_nothing(
    page_app, prepare_page, workspace, changes, field, expected
):
    with page_app.server.test_request_context("/"):
        result = _start(prepare_page, **changes)
    assert expected in result["feedback"][field]
    assert [name for name, text in result["feedback"].items() if text] == [field]
    assert result["invalid"] == {name: name == field for name in prepare_page.FIELDS.inputs}
    assert result["queued"] is dash.no_update and "Not started" in result["message"]
    assert list_prepare_jobs(workspace) == []


def test_a_valid_start_queues_one_job_and_a_second_click_is_refused(page_app, prepare_page, workspace):
    with page_app.server.test_request_context("/"):
        first = _start(prepare_page)
        again = _start(prepare_page)
    name = first["queued"]["job"]
    assert (
        first["queued"] == {"job": name}
        and not any(first["feedback"].values())
        and not any(first["invalid"].values())
    )
    status = get_prepare_job(workspace, name).status()
    assert (
        status["status"] == "queued"
        and status["images"] == 160
        and status["target"].startswith("demo-voc21-64-")
    )
    assert f"Queued {name}: 160 images" in first["message"]
    assert (
        again["queued"] is dash.no_update
        and f"{name} is already preparing these settings" in again["message"]
    )
    assert [job.name for job in list_prepare_jobs(workspace)] == [name]


def test_threshold_counts_only_with_repeat_factor_sampling(page_app, prepare_page):
    config = config_from_form("demo", ["train"], "voc21", None, 64, "stretch", "none", 7)
    assert config.sampling.method == "none" and config.labels == "voc21"
    config = config_from_form("demo", ["train"], "auto", "ignored", 64, "letterbox", "repeat-factor", 0.3)
    assert (
        config.sampling.threshold == 0.3
        and config.labels is None
        and config.classes == ()
        and config.resize == "letterbox"
    )
    with page_app.server.test_request_context("/"):
        assert prepare_page.offer_splits("demo", ["val", "gone"]) == (["train", "val"], ["val"])
        assert prepare_page.offer_splits("no-such-set", ["val"]) == ([], [])
    assert prepare_page.enable_fields("none", "custom") == (True, False)
    assert prepare_page.enable_fields("repeat-factor", "voc21") == (False, True)


def _trigger(component_id):
    """A callback context in which ``component_id`` triggered the call (as after a click or a change)."""
    prop_id = (
        json.dumps(component_id, separators=(",", ":"), sort_keys=True)
        if isinstance(component_id, dict)
        else component_id
    )
    return context_value.set(AttributeDict(triggered_inputs=[{"prop_id": f"{prop_id}.n_clicks", "value": 1}]))


def _press_cancel(prepare_page, name: str):
    """Call the Cancel callback as Dash would after a click on that job's button."""
    token = _trigger({"type": Prepare.CANCEL, "job": name})
    try:
        return prepare_page.cancel_job([1])
    finally:
        context_value.reset(token)


def _dead_process() -> dict:
    """The identity of a process that has ended (a killed job)."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return {
        "host": socket.gethostname(),
        "pid": ended.pid,
        "pid_started": time.time() - 5,
        "owner": "dash-diskcache",
    }


def _cards(live) -> dict:
    return {
        component.id["job"]: component
        for component in _walk(live)
        if isinstance(getattr(component, "id", None), dict) and component.id.get("type") == Prepare.CARD
    }


def _progress(card):
    return next(
        component
        for component in _walk(card)
        if "job-progress" in (getattr(component, "className", "") or "")
    )


@pytest.mark.slow
def test_live_panel_shows_every_state_from_the_registry_and_cancel_stops_a_queued_job(
    page_app, prepare_page, workspace
):
    small = PrepareConfig("demo", splits=("val",), labels="voc21", size=32, workers=1)
    finished = create_prepare_job(workspace, small, LIMIT)
    prepared = run_prepare_job(workspace, finished.name, LIMIT)
    failed = create_prepare_job(workspace, small, LIMIT)
    failed.set_status(
        "failed", message="writing the prepared set failed (No space left on device); nothing was published"
    )
    cancelled, queued, running, interrupted = (create_prepare_job(workspace, small, LIMIT) for _ in range(4))
    running.set_status(
        "running",
        **process_identity(),
        progress={"type": "progress", "done": 40, "total": 80, "images_per_second": 20.0, "eta_seconds": 2.0},
    )
    interrupted.set_status("running", **_dead_process())

    with page_app.server.test_request_context("/"):
        message = _press_cancel(prepare_page, cancelled.name)
        assert f"Cancelled {cancelled.name} before it started" in _text(message)
        assert cancelled.status()["status"] == "cancelled" and cancelled.cancel_requested()
        assert "nothing to cancel" in _text(_press_cancel(prepare_page, finished.name))
        live, sets, signature = prepare_page.refresh(1, None)
        again = prepare_page.refresh(2, json.loads(json.dumps(signature)))  # as the Store keeps it

    assert again == (dash.no_update, dash.no_update, dash.no_update)  # nothing changed: nothing redrawn
    cards = _cards(live)
    assert set(cards) == {
        finished.name,
        failed.name,
        cancelled.name,
        queued.name,
        running.name,
        interrupted.name,
    }
    assert interrupted.status()["status"] == "interrupted"  # polling reconciled the job whose process is gone
    expected = {
        finished.name: ("finished", "80/80 images", 100),
        failed.name: ("failed", "0/80 images", 0),
        cancelled.name: ("cancelled", "0/80 images", 0),
        queued.name: ("queued", "waiting to start", 0),
        running.name: ("running", "40/80 images", 50),
    }
    for name, (state, label, value) in expected.items():
        card = cards[name]
        assert state in _text(card) and _progress(card).value == value
        assert _progress(card).label == label, (name, _progress(card).label)
    assert "20.0 images/s" in _text(cards[running.name]) and "ETA 2 s" in _text(cards[running.name])
    assert "No space left on device" in _text(cards[failed.name]) and "ended without finishing" in _text(
        cards[interrupted.name]
    )
    buttons = {
        component.id["job"]
        for component in _walk(live)
        if isinstance(getattr(component, "id", None), dict) and component.id.get("type") == Prepare.CANCEL
    }
    assert buttons == {queued.name, running.name}  # only active jobs can be cancelled
    assert prepared.name in _text(sets) and "voc21 (21 classes)" in _text(sets) and "val 80" in _text(sets)
    assert [item.name for item in list_prepared(workspace)] == [prepared.name]


def test_distribution_has_before_and_after_bars_for_demo_voc21(page_app, prepare_page):
    with page_app.server.test_request_context("/"):
        figure, note = prepare_page.show_distribution(
            "demo", ["train", "val"], "voc21", None, 64, "stretch", "none", 0.1
        )
        balanced, balanced_note = prepare_page.show_distribution(
            "demo", ["train", "val"], "voc21", None, 64, "stretch", "repeat-factor", 0.5
        )
        failed, problem = prepare_page.show_distribution(
            "demo", ["train"], "voc21", None, 100, "stretch", "none", 0.1
        )
    before, after = figure.data
    assert before.name == "before sampling" and after.name.startswith("after")
    assert "person" in before.x and list(before.y) == list(after.y)  # no sampling: the same epoch
    assert figure.layout.title.text == "train: images per class in one epoch"
    assert "train: 64 images, 16 below the labelled-area filter." in _text(
        note
    ) and "val: 80 images." in _text(note)
    rare_before, rare_after = balanced.data
    assert "train: 64 images, 16 below the labelled-area filter; repeat-factor sampling reads" in _text(
        balanced_note
    )
    assert rare_after.name == "after repeat-factor sampling (t=0.5)" and sum(rare_after.y) > sum(
        rare_before.y
    )
    assert failed.data == () and "multiple of 32" in _text(problem)


def _ask(prepare_page, trigger: str, previous, **changes):
    values = {
        "clicks": 1,
        "image": 0,
        "labels": "voc21",
        "size": 64,
        "resize": "stretch",
        "flip": True,
        "scale": [0.75, 1.5],
        "rotation": 10,
        "brightness": 0.15,
        "contrast": 0.2,
        "saturation": 0.2,
        "dataset": "demo",
        "splits": ["train", "val"],
        "classes": None,
        **changes,
    }
    token = _trigger(trigger)
    try:
        return augmentation_preview.ask_preview(*values.values(), previous)
    finally:
        context_value.reset(token)


def test_preview_is_asked_only_after_the_first_press_and_keeps_its_seed_on_changes(prepare_page):
    assert _ask(prepare_page, Prepare.SIZE, None, size=128) == (
        dash.no_update,
        dash.no_update,
    )  # no TensorFlow job on page load
    request, label = _ask(prepare_page, Prepare.REROLL, None)
    assert isinstance(request["seed"], int) and request["size"] == 64 and "Re-roll" in _text(label)
    changed, _ = _ask(prepare_page, Prepare.ROTATION, request, rotation=30)
    assert changed["seed"] == request["seed"] and changed["rotation"] == 30
    rerolled, _ = _ask(prepare_page, Prepare.REROLL, changed, rotation=30)
    assert rerolled["seed"] != request["seed"]  # a fresh draw (equal by a 1-in-2^31 chance)
    assert len(json.dumps(rerolled)) < 500  # the Store keeps small JSON


def test_preview_refuses_bad_settings_without_starting_tensorflow(page_app, prepare_page):
    request, _ = _ask(prepare_page, Prepare.REROLL, None, size=100)
    with page_app.server.test_request_context("/"):
        pictures, note = augmentation_preview.show_preview(request)
    assert pictures == [] and "No preview" in _text(note) and "multiple of 32" in _text(note)
    request, _ = _ask(prepare_page, Prepare.REROLL, None, scale=[2.0, 4.5])
    with page_app.server.test_request_context("/"):
        pictures, note = augmentation_preview.show_preview(request)
    assert pictures == [] and "scale_min: need 0.1 <= min <= max <= 4" in _text(note)


@pytest.mark.slow
@pytest.mark.extended  # the preview from the page, re-rolled: tests/e2e/test_prepare_browser.py
def test_preview_shows_eight_small_augmentations_that_change_with_the_seed(page_app, prepare_page):
    first, _ = _ask(prepare_page, Prepare.REROLL, None)
    second = {**first, "seed": first["seed"] + 1}
    with page_app.server.test_request_context("/"):
        pictures, note = augmentation_preview.show_preview(first)
        again, _ = augmentation_preview.show_preview(first)
        other, _ = augmentation_preview.show_preview(second)
    sources = [picture.src for picture in pictures]
    assert len(sources) == 8 and all(source.startswith("data:image/jpeg;base64,") for source in sources)
    assert sum(len(source) for source in sources) < 200_000  # the response stays small
    assert [picture.src for picture in again] == sources  # the same seed draws the same augmentations
    assert [picture.src for picture in other] != sources
    assert f"seed {first['seed']}" in _text(note) and "train/" in _text(note)
