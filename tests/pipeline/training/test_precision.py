"""Precision that fits the device: the choice and its refusals, old configs, the form and the CLI, the
record a run keeps, and a bfloat16 run that learns as well as float32 and exports a float32 ONNX model."""

from __future__ import annotations

import json

import pytest

from cocoseg import cli
from cocoseg.app.components.run_cards import _device_cell
from cocoseg.app.components.train_form import PRECISION_LABELS
from cocoseg.errors import ConfigError
from cocoseg.pipeline.core.devices import CpuInfo, cpu_info
from cocoseg.pipeline.jobs.registry import list_runs
from cocoseg.pipeline.training import PRECISIONS, TrainConfig, choose_precision, config_from_form, loop
from cocoseg.pipeline.training.precision import compute_capability
from tests.pipeline.conftest import LIMIT
from tests.pipeline.shapes import prepared_shapes

XEON = "Intel(R) Xeon(R) Platinum 8581C"


@pytest.mark.parametrize(
    ("requested", "gpus", "bfloat16", "policy", "reason"),
    [
        ("auto", [(8, 0)], False, "mixed_float16", "auto: 1 GPU with tensor cores (compute capability 8.0)"),
        ("auto", ["7.5", "9.0"], True, "mixed_float16", "auto: 2 GPUs with tensor cores"),
        ("auto", [(6, 1)], True, "float32", "auto: 1 GPU without tensor cores (compute capability 6.1"),
        ("auto", [None], True, "float32", "compute capability unknown"),
        ("auto", [], True, "mixed_bfloat16", f"auto: no GPU; {XEON} has bfloat16 arithmetic"),
        ("auto", [], False, "float32", f"auto: no GPU, and {XEON} has no bfloat16 arithmetic"),
        ("float32", [(9, 0)], True, "float32", "requested (1 GPU)"),
        ("mixed_float16", [(6, 1)], False, "mixed_float16", "requested (1 GPU)"),
        ("mixed_bfloat16", [], True, "mixed_bfloat16", f"requested ({XEON})"),
        ("mixed_bfloat16", [(8, 0)], False, "mixed_bfloat16", "requested (1 GPU)"),
    ],
)
def test_the_choice_and_its_reason(requested, gpus, bfloat16, policy, reason):
    chosen = choose_precision(requested, gpus, bfloat16, XEON)
    assert chosen.policy == policy and reason in chosen.reason, chosen


@pytest.mark.parametrize(
    ("requested", "bfloat16", "message"),
    [
        (
            "mixed_float16",
            True,
            f"mixed_float16 needs a GPU, and none is visible (training would run on {XEON})",
        ),
        ("mixed_float16", False, "mixed_float16 needs a GPU"),
        (
            "mixed_bfloat16",
            False,
            f"mixed_bfloat16 needs a GPU or a CPU with AVX-512 BF16 or AMX; {XEON} has",
        ),
        ("bfloat16", True, "must be one of auto, float32, mixed_float16, mixed_bfloat16"),
    ],
)
def test_refusals_name_the_device(requested, bfloat16, message):
    with pytest.raises(ConfigError) as raised:
        choose_precision(requested, [], bfloat16, XEON)
    assert raised.value.field == "precision" and raised.value.message.startswith(message)
    assert "\n" not in str(raised.value)


def test_compute_capabilities_in_every_spelling():
    assert compute_capability((8, 6)) == compute_capability("8.6") == (8, 6)
    assert compute_capability("9") == (9, 0) and compute_capability(None) is None
    assert compute_capability("") is None and compute_capability("x.y") is None


def test_old_run_configs_still_load():
    assert TrainConfig.from_dict({"prepared": "p", "mixed_precision": True}).precision == "mixed_float16"
    assert TrainConfig.from_dict({"prepared": "p", "mixed_precision": False}).precision == "float32"
    assert TrainConfig.from_dict({"prepared": "p"}).precision == "float32"
    recorded = {"prepared": "p", "precision": "mixed_bfloat16", "precision_reason": "auto: ..."}
    assert TrainConfig.from_dict(recorded).precision == "mixed_bfloat16"
    with pytest.raises(ConfigError, match="precision: must be one of auto, float32"):
        TrainConfig("p", precision="float16")


def test_the_form_offers_every_precision_and_defaults_to_auto():
    assert [value for value, _label in PRECISION_LABELS] == list(PRECISIONS)
    form = {
        "prepared": "p",
        "model": "unet",
        "base_filters": 8,
        "depth": 2,
        "epochs": 1,
        "batch_size": 2,
        "learning_rate": 0.001,
        "seed": 0,
        "optimizer": "adam",
        "schedule": "constant",
        "loss": "cross_entropy",
        "sampling": None,
        "threshold": None,
        "augment": False,
    }
    assert config_from_form(**form).precision == "auto"
    assert config_from_form(**form, precision="mixed_bfloat16").precision == "mixed_bfloat16"


def test_the_runs_table_shows_the_precision_used_and_why():
    cell = _device_cell("CPU", {"precision": "mixed_bfloat16", "precision_reason": "auto: no GPU; …"})
    assert cell[0] == "CPU" and cell[2].children == "mixed_bfloat16" and cell[2].title == "auto: no GPU; …"
    assert _device_cell("", {"mixed_precision": True})[2].children == "mixed_float16"  # an old run
    assert _device_cell("", {})[2].children == "float32"


@pytest.fixture
def trained_configs(monkeypatch, tmp_path) -> list:
    """``cocoseg train`` up to the run: each config it would train is recorded, and none is trained."""
    asked = []

    def refuse(_workspace, config, *_callbacks):
        asked.append(config)
        raise ConfigError("prepared", "not trained in this test")

    monkeypatch.setenv("COCOSEG_HOME", str(tmp_path / "workspace"))
    monkeypatch.setattr("cocoseg.cli.train.run", refuse)
    return asked


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [((), "auto"), (("--precision", "float32"), "float32"), (("--mixed-precision",), "mixed_float16")],
)
def test_the_command_line_precision(arguments, expected, trained_configs):
    assert cli.main(["train", "some-set", *arguments]) != 0
    assert [config.precision for config in trained_configs] == [expected]


@pytest.fixture(scope="module")
def shapes_workspace(tmp_path_factory):
    """A workspace with the generated shapes dataset (96 train / 24 val, 64 px) prepared."""
    return prepared_shapes(tmp_path_factory.mktemp("shapes"), (96, 24), (1, 2), shards=2)


def _config(prepared, **changes) -> TrainConfig:
    """The shapes learnability settings (tests/pipeline/training/test_train.py, float32 there)."""
    settings = {
        "model": "unet",
        "model_options": {"base_filters": 16, "depth": 3},
        "epochs": 6,
        "batch_size": 8,
        "learning_rate": 3e-3,
        "augment": False,
        **changes,
    }
    return TrainConfig(prepared, **settings)


def test_refused_on_a_cpu_only_machine_before_any_run_folder(shapes_workspace, monkeypatch):
    workspace, prepared = shapes_workspace
    monkeypatch.setattr(loop, "gpu_capabilities", lambda: [])
    monkeypatch.setattr(loop, "cpu_info", lambda: CpuInfo("AMD EPYC 7B13", 2, frozenset({"avx2"})))
    before = {summary.name for summary in list_runs(workspace)}
    with pytest.raises(ConfigError, match=r"precision: mixed_float16 needs a GPU.*AMD EPYC 7B13"):
        loop.run(workspace, _config(prepared, precision="mixed_float16"))
    with pytest.raises(ConfigError, match=r"precision: mixed_bfloat16 needs .*AMD EPYC 7B13 has neither"):
        loop.run(workspace, _config(prepared, precision="mixed_bfloat16"))
    assert {summary.name for summary in list_runs(workspace)} == before


def test_auto_is_resolved_and_recorded_by_the_job(shapes_workspace, monkeypatch):
    workspace, prepared = shapes_workspace
    monkeypatch.setattr(loop, "gpu_capabilities", lambda: [])
    monkeypatch.setattr(loop, "cpu_info", lambda: CpuInfo("AMD EPYC 7B13", 2, frozenset({"avx2"})))
    config = _config(prepared, precision="auto", epochs=1, model_options={"base_filters": 4, "depth": 2})
    outcome = loop.run(workspace, config)
    assert outcome.status == "finished"
    recorded = json.loads((outcome.folder.folder / "config.json").read_text())
    assert recorded["precision"] == "float32" and recorded["precision_requested"] == "auto"
    assert recorded["precision_reason"] == "auto: no GPU, and AMD EPYC 7B13 has no bfloat16 arithmetic"
    assert any(event["type"] == "precision" for event in outcome.folder.events())


@pytest.mark.slow  # bfloat16 training and an export; the precision choice itself: the tests above
@pytest.mark.extended
def test_bfloat16_learns_shapes_as_well_as_float32_and_exports_float32(shapes_workspace):
    """The float32 learnability test's settings in mixed_bfloat16 reach the same mIoU (>= 0.85); the
    exported ONNX model is float32 and passes the Keras/ORT parity check."""
    if not cpu_info().bfloat16:
        pytest.skip(f"this CPU has no bfloat16 arithmetic (AVX-512 BF16 or AMX): {cpu_info().describe()}")
    import onnx

    from cocoseg.pipeline.training.export import ExportConfig, export_run

    workspace, prepared = shapes_workspace
    outcome = loop.run(workspace, _config(prepared, precision="mixed_bfloat16"))
    assert outcome.status == "finished" and outcome.best_miou >= 0.85, outcome
    recorded = outcome.folder.config()
    assert recorded["precision"] == "mixed_bfloat16" and recorded["precision_reason"].startswith("requested")

    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # the run put the policy back
    trained = keras.models.load_model(outcome.folder.best_checkpoint, compile=False)
    policies = {layer.name: layer.dtype_policy.name for layer in trained.layers}
    assert "mixed_bfloat16" in policies.values() and policies["logits"] == "float32"
    entry = export_run(
        workspace, ExportConfig(outcome.folder.name, variants=(), parity_images=8, evaluation_limit=8), LIMIT
    )
    card = entry.card
    assert card["training"]["precision"] == "mixed_bfloat16"
    assert card["parity"]["max_abs_difference"] <= card["parity"]["tolerance"]
    graph = onnx.load(str(entry.folder / card["file"])).graph
    low = {onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    assert not [initializer.name for initializer in graph.initializer if initializer.data_type in low]
    casts = [
        node.name
        for node in graph.node
        if node.op_type == "Cast" and any(attribute.i in low for attribute in node.attribute)
    ]
    assert not casts


def test_the_command_line_augmentation_strengths(trained_configs, capsys):
    strengths = ["--augmentation", "rotation_degrees=20", "--augmentation", "flip=false"]
    assert cli.main(["train", "some-set", *strengths]) != 0
    assert [config.augmentation for config in trained_configs] == [{"rotation_degrees": 20, "flip": False}]
    capsys.readouterr()
    assert cli.main(["train", "some-set", "--augmentation", "rotation_degrees"]) == cli.EXIT_INPUT
    assert "augmentation: write them as NAME=VALUE" in capsys.readouterr().err
    assert cli.main(["train", "some-set", "--augmentation", "rotation_degrees=90"]) == cli.EXIT_INPUT
    assert "must be 0-45" in capsys.readouterr().err and len(trained_configs) == 1  # refused before any run
