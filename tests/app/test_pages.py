"""Page layouts and callbacks called directly, on an empty workspace and on one with models."""

from __future__ import annotations

import base64
import json
import shutil
import sys

import dash
import dash_bootstrap_components as dbc
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from cocoseg.app.ids import Home, Segment
from cocoseg.app.main import create_app
from tests.app.test_main import _text, _walk
from tests.conftest import DEMO_VAL_IMAGES


def _layout(app, name: str):
    page = next(page for page in dash.page_registry.values() if page["name"] == name)
    with app.server.test_request_context("/"):
        return page["layout"]()


def _module(suffix: str):
    return next(
        module
        for name, module in list(sys.modules.items())  # a tool thread may import meanwhile
        if name.endswith(f"pages.{suffix}") and hasattr(module, "layout")
    )


def test_pages_without_models_say_how_to_get_one(workspace):
    app = create_app(workspace)
    for name in ("Segment", "Evaluate"):
        text = _text(_layout(app, name))
        assert "No models" in text and "cocoseg export RUN" in text
    home = _text(_layout(app, "Home"))
    assert "No models yet." in home and "Segment" in home and "Evaluate" in home  # quick links
    assert "Quick start" in home and "80 training images" in home


def test_quick_start_says_where_the_encoder_starts_and_queues_its_job(workspace, offline):
    from cocoseg.pipeline.jobs.runner import entry_of, kind_of

    create_app(workspace)
    message, queued = _module("home").start_quick_start(1)
    assert "Random encoder weights" in _text(message) and "cocoseg weights import" in _text(message)
    entry = entry_of(workspace, kind_of("quickstart"), queued["job"])
    assert entry.status()["status"] == "queued" and entry.config()["prepare"]["dataset"] == "demo"


def test_home_s_device_check_runs_a_doctor_job_recorded_in_the_registry(workspace):
    from cocoseg.pipeline.inference import checked_report
    from cocoseg.pipeline.jobs import RunFolder, observe
    from cocoseg.pipeline.jobs.runner import RESULT_FILE

    create_app(workspace)
    rows = _module("home").check_training_devices(1)
    text = _text(rows)
    assert "TensorFlow sees" in text and "Check again" in text, text
    jobs = [RunFolder(folder) for folder in workspace.jobs_dir.glob("doctor-*")]
    assert len(jobs) == 1 and observe(jobs[0]).state == "finished"  # not a child outside the job layer
    report = checked_report(workspace)
    assert report == json.loads((jobs[0].folder / RESULT_FILE).read_text())
    assert f"Training: {report['training']['device']}" in text


def test_home_shows_every_run_status_in_its_colour(workspace):
    """Home once used the dataset badge's colour map, so every run status there was grey."""
    from cocoseg.pipeline.jobs.registry import create_run, process_identity

    expected = {
        "finished": "success",
        "failed": "danger",
        "cancelled": "warning",
        "interrupted": "warning",
        "queued": "secondary",
    }
    for status in expected:
        create_run(workspace, {"model": "unet", "epochs": 1}, "unet").set_status(
            status, message=f"it {status}"
        )
    create_run(workspace, {"model": "unet", "epochs": 1}, "unet").set_status("running", **process_identity())
    expected["running"] = "primary"  # this test process is the live job
    layout = _layout(create_app(workspace), "Home")
    badges = [
        component
        for component in _walk(layout)
        if isinstance(component, dbc.Badge) and component.children in expected
    ]
    assert sorted(badge.children for badge in badges) == sorted(expected)
    assert all(badge.color == expected[badge.children] for badge in badges), [
        (badge.children, badge.color) for badge in badges
    ]


@pytest.fixture
def model_app(prepared_workspace, exported_models, workspace):
    for name in exported_models:
        shutil.copytree(prepared_workspace.models_dir / name, workspace.models_dir / name)
    return create_app(workspace)


@pytest.mark.slow
def test_home_lists_models_with_their_miou(model_app, exported_models):
    layout = _layout(model_app, "Home")
    models = next(component for component in _walk(layout) if getattr(component, "id", None) == Home.MODELS)
    text = _text(models)
    assert all(name in text for name in exported_models) and "on demo/val" in text
    assert "Quick start" not in _text(layout)  # only an empty workspace is offered one


@pytest.mark.slow
def test_segment_callbacks_decode_store_predict_and_download(model_app, exported_models, workspace):
    segment = _module("segment")
    image = sorted(DEMO_VAL_IMAGES.glob("*.jpg"))[0]
    contents = "data:image/jpeg;base64," + base64.b64encode(image.read_bytes()).decode()
    with model_app.server.test_request_context("/"):
        uploads, options, current, messages, cleared = segment.receive_uploads(
            [contents, "data:image/png;base64,AAAA"], [image.name, "bad.png"], []
        )
        assert len(uploads) == 1 and current == uploads[0]["key"] and cleared is None
        assert len(messages) == 1 and "bad.png" in _text(messages[0])
        assert options[0]["label"].startswith(f"{image.name} · 640×")
        shown = segment.segment(current, exported_models[0], "int8")
        original, base, layer, legend, shares, timing, result, *disabled = shown
        assert (
            original == f"/uploads/{current}.jpg"
            and layer.startswith("data:image/png")
            and disabled == [False, False, False]
        )
        served = model_app.server.test_client().get(original)
        assert (
            served.status_code == 200
            and served.data[:3] == b"\xff\xd8\xff"
            and served.headers["Cache-Control"] == "private, max-age=3600"
        )
        for missing in (
            "/uploads/" + "x" * 22 + ".jpg",
            "/uploads/short.jpg",
            "/uploads/..%2F..%2Fetc%2Fpasswd.jpg",
        ):
            assert model_app.server.test_client().get(missing).status_code == 404
        assert "on CPU (int8)" in timing and result == {
            "key": current,
            "model": exported_models[0],
            "variant": "int8",
        }
        expired = segment.segment("x" * 22, exported_models[0], "fp32")
        assert "expired" in _text(expired[3])

        def press(button, shown_result):
            token = context_value.set(
                AttributeDict(triggered_inputs=[{"prop_id": f"{button}.n_clicks", "value": 1}])
            )
            try:
                return segment.download(1, None, None, shown_result, 0.5)
            finally:
                context_value.reset(token)

        mask, message = press(Segment.DOWNLOAD_MASK, result)
        assert mask["filename"] == f"{image.stem}.mask.png" and mask["base64"] and message is dash.no_update
        coco, message = press(Segment.DOWNLOAD_COCO, result)
        assert '"annotations"' in coco["content"] and message is dash.no_update
        gone, message = press(Segment.DOWNLOAD_MASK, {**result, "key": "x" * 22})
        assert gone is dash.no_update and "expired" in _text(message)
        shutil.rmtree(workspace.models_dir / exported_models[0])  # deleted from another tab or the CLI
        gone, message = press(Segment.DOWNLOAD_OVERLAY, result)
        assert gone is dash.no_update and "Cannot download this result" in _text(message)
        assert exported_models[0] in _text(message)


@pytest.mark.slow
def test_evaluate_callbacks_show_the_leaderboard_and_refuse_bad_ensembles(
    model_app, exported_models, workspace
):
    evaluate_page = _module("evaluate")
    with model_app.server.test_request_context("/"):
        data, selected, figure, pending, choices = evaluate_page.show_split("demo/val", 0)
        assert (
            {row["model"] for row in data} == set(exported_models)
            and choices == ["demo/val"]
            and pending == []
        )
        assert len(figure.data[0].x) == len(data)  # a column per leaderboard row
        whole_split = next(
            row for row in data if "first" not in row["note"]
        )  # other tests may leave partial evaluations
        confusion, protocol = evaluate_page.show_confusion({"row_id": whole_split["id"]}, data, "demo/val")
        assert protocol.startswith("Protocol: demo/val, 80 images") and confusion.data
        message, refresh = evaluate_page.create_from_rows(1, "", "mean", [0, 1], data, 0)
        assert "Give the ensemble a name" in _text(message)
        message, refresh = evaluate_page.create_from_rows(1, "solo", "mean", [0], data, 0)
        assert "at least two members" in _text(message) and refresh is dash.no_update
        assert not list(workspace.jobs_dir.glob("ensemble-*"))  # refused before any job started
        rows = [[row["model"] for row in data].index(name) for name in exported_models]  # one row per model
        message, refresh = evaluate_page.create_from_rows(1, "pair", "vote", rows, data, 0)
    assert "ensemble pair created (vote of" in _text(message) and refresh == 1
    assert (workspace.ensembles_dir / "pair" / "model.onnx").is_file()
    (job,) = workspace.jobs_dir.glob("ensemble-*")  # fused in a job process, not in the server
    assert json.loads((job / "status.json").read_text())["status"] == "finished"
