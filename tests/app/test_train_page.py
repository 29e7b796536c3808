"""Train page callbacks called as functions over real run folders (no browser, no job process)."""

from __future__ import annotations

import json
import shutil
import sys

import dash
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from cocoseg.app import run_actions
from cocoseg.app.components.train_form import augmentation_summary, prepared_options
from cocoseg.app.main import create_app
from cocoseg.pipeline.jobs.registry import RunFolder, create_run, list_runs
from cocoseg.pipeline.training.checks import create
from cocoseg.pipeline.training.config import TrainConfig
from tests.app.test_main import _text
from tests.pipeline.training.test_training_form import _form as form_values


def _train_module():
    return next(
        module
        for name, module in list(sys.modules.items())  # a tool thread may import meanwhile
        if name.endswith("pages.train") and hasattr(module, "layout")
    )


@pytest.fixture
def train_app(workspace, prepared_workspace, prepared_demo):
    """An app over a workspace holding the session's prepared demo set (128 px, voc21)."""
    shutil.copytree(prepared_demo.folder, workspace.prepared_dir / prepared_demo.name)
    app = create_app(workspace)
    return app, _train_module(), prepared_demo.name


def _form(prepared_name, augmentation=None, **changes):
    """The Start callback's states: the form (as the pipeline's form test fills it), Export, then the
    strengths Prepare's "Use for training" stored (none: the defaults)."""
    return {
        **form_values(**{"prepared": prepared_name, **changes}),
        "export": False,
        "strengths": augmentation,
    }


def _start(module, values):
    return module.start_training(1, *values.values())


def _feedback(module, outputs) -> dict:
    fields = module.FIELDS
    count = len(fields.inputs)
    return dict(zip(fields.ids, outputs[count : count + len(fields.ids)], strict=True))


def _triggered(component_id: dict, value=1):
    """Run a pattern-matching callback as Dash would, with ``ctx.triggered_id`` set."""
    key = json.dumps(component_id, separators=(",", ":"), sort_keys=True)
    return context_value.set(AttributeDict(triggered_inputs=[{"prop_id": f"{key}.n_clicks", "value": value}]))


def test_layout_without_prepared_sets_says_how_to_prepare(workspace):
    app = create_app(workspace)
    page = next(page for page in dash.page_registry.values() if page["name"] == "Train")
    with app.server.test_request_context("/"):
        text = _text(page["layout"]())
    assert "No prepared set yet." in text and "cocoseg prepare demo" in text


@pytest.mark.parametrize("torn", ["{", "[]", '{"config": {"size": 128}}', '{"splits": {}, "label_map": 3}'])
def test_a_set_with_a_torn_manifest_is_listed_disabled_and_refused_by_name(train_app, workspace, torn):
    """A manifest edited by hand or cut short: the page still opens on the good set, the torn one is
    shown but cannot be chosen, and naming it anyway gets the reason beside the field."""
    app, module, prepared_name = train_app
    folder = workspace.prepared_dir / "demo-voc21-128-0123456789ab"
    folder.mkdir()
    (folder / "manifest.json").write_text(torn)
    page = next(page for page in dash.page_registry.values() if page["name"] == "Train")
    with app.server.test_request_context("/"):
        layout = page["layout"]()
        options = prepared_options(workspace)
        outputs = _start(module, _form(folder.name))
    assert "No prepared set yet." not in _text(layout)
    by_value = {option["value"]: option for option in options}
    assert by_value[folder.name].get("disabled") and "prepare it again" in by_value[folder.name]["label"]
    assert not by_value[prepared_name].get("disabled")
    assert "manifest.json cannot be used" in _text(_feedback(module, outputs)["prepared"])
    assert list_runs(workspace) == []
    shutil.rmtree(workspace.prepared_dir / prepared_name)  # only the torn set is left
    with app.server.test_request_context("/"):
        assert "No usable prepared set" in _text(page["layout"]())


def test_valid_start_queues_a_run(train_app, workspace):
    _app, module, prepared = train_app
    outputs = _start(module, _form(prepared))
    queued = outputs[-1]
    assert queued["run"] and queued["export"] is False and queued["resume"] is False
    run = RunFolder(workspace.runs_dir / queued["run"])
    assert run.status()["status"] == "queued" and run.config()["model_options"] == {
        "base_filters": 4,
        "depth": 2,
    }


def test_a_run_takes_the_strengths_prepare_stored_and_refuses_forged_ones(train_app, workspace):
    _app, module, prepared = train_app
    queued = _start(module, _form(prepared, augmentation={"rotation_degrees": 25, "flip": False}))[-1]
    strengths = RunFolder(workspace.runs_dir / queued["run"]).config()["augmentation"]
    assert strengths["rotation_degrees"] == 25 and strengths["flip"] is False and strengths["contrast"] == 0.2
    before = len(list_runs(workspace))
    outputs = _start(module, _form(prepared, augmentation={"rotation_degrees": "a lot"}))
    assert outputs[-1] is dash.no_update and len(list_runs(workspace)) == before
    assert "rotation_degrees must be a number" in _text(outputs[-2])
    assert "rotation ±25°" in _text(augmentation_summary({"rotation_degrees": 25}, True))
    assert "the defaults" in _text(augmentation_summary(None, True))
    assert "Augment off" in _text(augmentation_summary({"rotation_degrees": 25}, False))
    assert "refused" in _text(augmentation_summary({"zoom": 3}, True))


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"epochs": 0}, "epochs", "from 1 to 1000"),
        ({"epochs": 5000}, "epochs", "got 5000"),
        ({"epochs": None}, "epochs", "whole number"),
        ({"epochs": 2.5}, "epochs", "whole number"),
        ({"batch_size": 0}, "batch_size", "from 1 to 1024"),
        ({"batch_size": 100000}, "batch_size", "from 1 to 1024"),
        ({"learning_rate": -1}, "learning_rate", "positive"),
        ({"learning_rate": None}, "learning_rate", "positive number"),
        ({"depth": 7}, "model_options", "between 2 and 6"),
        ({"prepared": "no-such-set"}, "prepared", "no-such-set"),
        ({"prepared": "../etc"}, "prepared", ""),
    ],
)
def test_bad_fields_are_refused_beside_the_field_and_create_nothing(
    train_app, workspace, changes, field, text
):
    _app, module, prepared = train_app
    outputs = _start(module, _form(prepared, **changes))
    feedback = _feedback(module, outputs)
    assert text in _text(feedback[field]) and _text(feedback[field])
    flags = dict(zip(module.FIELDS.inputs, outputs, strict=False))
    assert all(flag is (name == field) for name, flag in flags.items())  # only the field at fault is red
    assert all(_text(message) == "" for name, message in feedback.items() if name != field)
    assert outputs[-1] is dash.no_update and list_runs(workspace) == []


def test_a_depth_the_prepared_size_cannot_halve_is_shown_at_once_and_refused(train_app, workspace):
    _app, module, prepared = train_app
    _info, _options, request, *_ = module.describe_model("unet", 8, 6, prepared, "mobilenet_v2", "imagenet")
    assert request == {
        "model": "unet",
        "options": {"base_filters": 8, "depth": 6},
        "size": 128,
        "classes": 21,
    }  # 2**6 divides 128
    odd = (
        workspace.prepared_dir / "demo-voc21-96-copy"
    )  # a set prepared at 96 px: same files, its manifest says 96
    shutil.copytree(workspace.prepared_dir / prepared, odd)
    manifest = json.loads((odd / "manifest.json").read_text())
    manifest["config"]["size"] = 96
    (odd / "manifest.json").write_text(json.dumps(manifest))
    info, _options, request, *_ = module.describe_model("unet", 8, 6, odd.name, "mobilenet_v2", "imagenet")
    assert (
        "96 px is not a multiple of 64" in _text(info)
        and "nearest: 64 or 128" in _text(info)
        and request is None
    )
    outputs = _start(module, _form(odd.name, depth=6))
    assert (
        "not a multiple of 64" in _text(_feedback(module, outputs)["prepared"])
        and outputs[-1] is dash.no_update
    )
    outputs = _start(module, _form(odd.name, depth=5))  # 32 divides 96
    assert outputs[-1]["run"]


def test_start_from_a_run_fills_its_architecture_and_records_the_parent(train_app, workspace):
    _app, module, prepared = train_app
    parent = create(
        workspace,
        TrainConfig(prepared, model="unet", model_options={"base_filters": 4, "depth": 2}, epochs=3),
    )
    assert module.follow_parent(parent.name)[-1] is False  # no checkpoint yet: not a parent
    parent.best_checkpoint.write_bytes(b"checkpoint")  # placeholder: nothing loads it before the job
    assert module.follow_parent(parent.name) == ("unet", 4, 2, dash.no_update, True)
    assert module.follow_parent(None) == (*[dash.no_update] * 4, False)
    outputs = _start(module, _form(prepared, init_from=parent.name, freeze_encoder_epochs=1))
    child = RunFolder(workspace.runs_dir / outputs[-1]["run"])
    assert child.config()["parent"]["run"] == parent.name and child.config()["freeze_encoder_epochs"] == 1
    outputs = _start(module, _form(prepared, init_from=parent.name, depth=3))
    assert "keeps its parent's architecture" in _text(_feedback(module, outputs)["model"])
    outputs = _start(module, _form(prepared, init_from="deleted-run"))
    assert "deleted?" in _text(_feedback(module, outputs)["init_from"]) and outputs[-1] is dash.no_update


def test_live_panel_and_table_render_every_status_from_the_registry(train_app, workspace):
    _app, module, prepared = train_app
    names = {}
    for status in ("queued", "running", "finished", "failed", "cancelled", "interrupted"):
        run = create(
            workspace,
            TrainConfig(prepared, model="unet", model_options={"base_filters": 4, "depth": 2}, epochs=3),
        )
        fields = {"message": f"why it is {status}"}
        if status == "running":
            fields["progress"] = {
                "type": "batch",
                "epoch": 2,
                "epochs": 3,
                "batch": 3,
                "batches": 9,
                "loss": 1.5,
                "images_per_second": 12.0,
                "eta_seconds": 75,
            }
        run.set_status(status, **fields)
        names[status] = run.name
    live, table, signature = module.refresh(1, None, None, None)
    text = _text(table)
    for status, name in names.items():
        assert name in text and status in text
    live_text = _text(live)
    assert names["running"] in live_text and "ETA 1 min 15 s" in live_text
    assert "epoch 2/3 · batch 3/9" in str(live)  # the progress bar's label
    assert (
        module.refresh(2, None, None, signature) == (dash.no_update,) * 3
    )  # nothing changed: nothing redrawn


def test_cancel_of_a_queued_run_stops_it_and_an_unknown_run_is_refused(train_app, workspace):
    _app, module, prepared = train_app
    run = create(
        workspace,
        TrainConfig(prepared, model="unet", model_options={"base_filters": 4, "depth": 2}, epochs=3),
    )
    with_context = _triggered({"type": module.Train.CANCEL, "run": run.name})
    try:
        message, _refresh = run_actions.cancel_run([1])
    finally:
        context_value.reset(with_context)
    assert (
        "Cancelled" in _text(message)
        and "before it started" in _text(message)
        and run.status()["status"] == "cancelled"
        and run.cancel_requested()
    )
    with_context = _triggered({"type": module.Train.CANCEL, "run": "../../etc"})
    try:
        message, _refresh = run_actions.cancel_run([1])
    finally:
        context_value.reset(with_context)
    assert "run" in _text(message).lower()


def test_actions_route_to_their_jobs_and_delete_asks_first(train_app, workspace):
    _app, module, prepared = train_app
    run = create_run(workspace, {"model": "unet", "epochs": 3}, "unet")
    run.set_status("interrupted")

    def click(action: str, handler, name: str = run.name, clicks=(1,)):
        token = _triggered({"type": module.Train.ACTION, "action": action, "run": name})
        try:
            return handler(list(clicks))
        finally:
            context_value.reset(token)

    request, message = click("resume", run_actions.resume_run)
    assert request["run"] == run.name and request["resume"] is True and "Resuming" in _text(message)
    for action, handler in (("export", run_actions.export_run), ("evaluate", run_actions.evaluate_run)):
        request, message = click(action, handler)
        assert request["run"] == run.name and run.name in _text(message)
    assert click("export", run_actions.export_run, clicks=(0,)) == (
        dash.no_update,
        dash.no_update,
    )  # a re-render, not a click
    request, message = click("evaluate", run_actions.evaluate_run, name="../../etc")
    assert request is dash.no_update and "run" in _text(message).lower()
    displayed, question, pending, _message = click("delete", run_actions.ask_delete)
    assert displayed is True and run.name in question and pending["run"] == run.name and run.folder.is_dir()
    message, _refresh = run_actions.delete_confirmed(1, pending)
    assert "Deleted" in _text(message) and not run.folder.exists()
    message, _refresh = run_actions.delete_confirmed(1, pending)
    assert "no run called" in _text(message)


def test_a_forged_delete_without_the_confirmation_is_refused(train_app, workspace):
    """The delete callback's request, as a forged or replayed one would send it: the run stays."""
    _app, module, _prepared = train_app
    run = create_run(workspace, {"model": "unet", "epochs": 3}, "unet")
    run.set_status("interrupted")
    other = create_run(workspace, {"model": "unet", "epochs": 3}, "unet")
    other.set_status("interrupted")
    token = _triggered({"type": module.Train.ACTION, "action": "delete", "run": other.name})
    try:
        _shown, _question, pending_other, _message = run_actions.ask_delete([1])
    finally:
        context_value.reset(token)
    forged = (
        run.name,  # the name alone (what the page sent before it asked the server)
        {"run": run.name},  # no token
        {"run": run.name, "token": ""},
        {"run": run.name, "token": "guessed-token-1234"},
        {"run": run.name, "token": pending_other["token"]},  # another run's token
        {"run": [run.name], "token": {"$ne": None}},
        ["run", run.name],
    )
    for request in forged:
        message, refresh = run_actions.delete_confirmed(1, request)
        assert "Not deleted" in _text(message) and refresh is dash.no_update, request
        assert run.folder.is_dir()
    # a token too old asks again
    stale = {"run": other.name, "token": pending_other["token"]}
    (other.folder / "delete-request.json").write_text(json.dumps({"token": stale["token"], "time": 0}))
    message, _refresh = run_actions.delete_confirmed(1, stale)
    assert "Not deleted" in _text(message) and other.folder.is_dir()


def test_a_confirmation_token_serves_once(workspace):
    from cocoseg.pipeline.jobs import RunError, delete_confirmed_run, request_delete

    first = create_run(workspace, {"model": "unet", "epochs": 3}, "unet")
    first.set_status("finished")
    pending = request_delete(workspace, first.name)
    assert delete_confirmed_run(workspace, pending) == first.name and not first.folder.exists()
    with pytest.raises(RunError):
        delete_confirmed_run(workspace, pending)


def test_a_running_run_cannot_be_deleted(train_app, workspace):
    _app, module, prepared = train_app
    run = create_run(workspace, {"model": "unet", "epochs": 3}, "unet")
    from cocoseg.pipeline.jobs.registry import process_identity

    run.set_status("running", **process_identity())  # this very process: alive
    from cocoseg.pipeline.jobs import request_delete

    message, _refresh = run_actions.delete_confirmed(1, request_delete(workspace, run.name))
    assert "cancel it before deleting" in _text(message) and run.folder.is_dir()


def test_a_status_change_within_the_same_second_is_redrawn(train_app, workspace):
    """A cancel that lands in the same second as the last progress event must still reach the page."""
    _app, module, prepared = train_app
    run = create(
        workspace,
        TrainConfig(prepared, model="unet", model_options={"base_filters": 4, "depth": 2}, epochs=3),
    )
    run.set_status("running", progress={"type": "epoch", "epoch": 1, "epochs": 3})
    _live, _table, signature = module.refresh(1, None, None, None)
    run.set_status("cancelled", message="cancelled during epoch 2")
    live, _table, _signature = module.refresh(2, None, None, signature)
    assert live is not dash.no_update and "cancelled" in _text(live)


def test_a_pretrained_encoder_is_chosen_on_the_form_and_imagenet_offline_is_refused_beside_it(
    train_app, workspace, offline
):
    _app, module, prepared = train_app
    info, _options, request, *disabled = module.describe_model(
        "deeplabv3_plus", None, None, prepared, "efficientnetv2_b0", "imagenet"
    )
    assert disabled == [True, True, False, False]  # no depth to set; the encoder fields are live
    assert "downloaded once (24 MB)" in _text(info)
    assert request["options"] == {
        "encoder": "efficientnetv2_b0",
        "aspp_filters": 128,
    }  # no download to size it
    *_, unet_encoder, unet_weights = module.describe_model("unet", 8, 3, prepared, "mobilenet_v2", "imagenet")
    assert unet_encoder is unet_weights is True
    chosen = {"model": "deeplabv3_plus", "encoder": "efficientnetv2_b0"}
    outputs = _start(module, _form(prepared, **chosen))
    message = _text(_feedback(module, outputs)["encoder_weights"])
    assert "cocoseg weights import FILE --encoder efficientnetv2_b0" in message
    assert outputs[-1] is dash.no_update and list_runs(workspace) == []
    outputs = _start(module, _form(prepared, **chosen, encoder_weights="random"))
    run = RunFolder(workspace.runs_dir / outputs[-1]["run"])
    assert run.config()["model_options"] == {"encoder": "efficientnetv2_b0"}


def test_a_forged_delete_request_over_http_is_refused(train_app, workspace):
    """The delete callback reached the way a forged request would: a POST naming the run."""
    app, _module, _prepared = train_app
    run = create_run(workspace, {"model": "unet", "epochs": 3}, "unet")
    run.set_status("interrupted")
    client = app.server.test_client()
    dependency = next(
        item
        for item in client.get("/_dash-dependencies").get_json()
        if any(entry["id"] == "train-delete-confirm" for entry in item["inputs"])
    )
    outputs = []
    for part in dependency["output"].strip(".").split("..."):
        component, _, prop = part.partition(".")
        outputs.append({"id": component, "property": prop})
    for pending in (run.name, {"run": run.name}, {"run": run.name, "token": "forged"}):
        response = client.post(
            "/_dash-update-component",
            json={
                "output": dependency["output"],
                "outputs": outputs,
                "inputs": [{"id": "train-delete-confirm", "property": "submit_n_clicks", "value": 1}],
                "state": [{"id": "train-delete-pending", "property": "data", "value": pending}],
                "changedPropIds": ["train-delete-confirm.submit_n_clicks"],
            },
        )
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        assert "Not deleted" in response.get_data(as_text=True) and run.folder.is_dir()
