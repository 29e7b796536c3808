"""Export: Keras checkpoint -> checked ONNX model with card and variants, or nothing at all."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest

from cocoseg.pipeline.core.cache import sha256_of
from cocoseg.pipeline.inference.model_store import VARIANT_FILES, get_entry
from cocoseg.pipeline.training.export import (
    PARITY_AGREEMENT,
    PARITY_TOLERANCE,
    ExportConfig,
    ExportError,
    export_run,
)
from tests.conftest import LIMIT

pytestmark = pytest.mark.slow


def test_card_describes_the_model_and_its_checks(prepared_workspace, prepared_demo, exported_models):
    entry = get_entry(prepared_workspace, exported_models[0])
    card = entry.card
    assert (
        card["kind"] == "exported"
        and card["source"]["run"] == exported_models[0]
        and card["source"]["dataset"] == "demo"
    )
    assert card["input"] == {
        "name": "image",
        "dtype": "uint8",
        "layout": "NHWC",
        "size": 128,
        "resize": "stretch",
    }
    assert (
        card["label_map"] == prepared_demo.manifest["label_map"] and len(card["label_map"]["classes"]) == 21
    )
    assert card["sha256"] == sha256_of(entry.folder / "model.onnx")
    assert card["training"]["model"] == "unet" and card["validation"]["miou"] is not None
    assert (
        card["parity"]["max_abs_difference"] <= PARITY_TOLERANCE
        and card["parity"]["argmax_agreement"] >= PARITY_AGREEMENT
    )
    assert not list(prepared_workspace.models_dir.glob(".partial-*"))
    onnx.checker.check_model(str(entry.folder / "model.onnx"))


def test_interface_has_mask_and_probabilities_with_dynamic_batch(prepared_workspace, exported_models):
    entry = get_entry(prepared_workspace, exported_models[1])
    session = onnxruntime.InferenceSession(
        str(entry.folder / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    assert [item.name for item in session.get_inputs()] == ["image"] and session.get_inputs()[
        0
    ].type == "tensor(uint8)"
    assert [item.name for item in session.get_outputs()] == ["mask", "probabilities"]
    for batch in (1, 3):
        images = np.random.default_rng(batch).integers(0, 256, (batch, 128, 128, 3), dtype=np.uint8)
        mask, probabilities = session.run(None, {"image": images})
        assert mask.dtype == np.uint8 and mask.shape == (batch, 128, 128)
        assert probabilities.shape == (batch, 128, 128, 21)
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
        assert np.array_equal(mask, probabilities.argmax(axis=-1))


def test_keras_and_onnx_agree_on_real_validation_images(prepared_workspace, prepared_demo, exported_models):
    import keras

    from cocoseg.pipeline.core.tf_runtime import tensorflow
    from cocoseg.pipeline.training.export import _sample_images

    tf = tensorflow()
    name = exported_models[1]
    model = keras.models.load_model(
        prepared_workspace.runs_dir / name / "checkpoints" / "best.keras", compile=False
    )
    images = _sample_images(prepared_demo, "val", 8)
    reference = tf.nn.softmax(model(images, training=False)).numpy()
    session = onnxruntime.InferenceSession(
        str(prepared_workspace.models_dir / name / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    mask, probabilities = session.run(None, {"image": images})
    assert np.abs(reference - probabilities).max() <= 1e-4
    assert (reference.argmax(axis=-1) == mask).mean() >= 0.999


def test_variants_record_their_measured_accuracy_delta(prepared_workspace, exported_models):
    entry = get_entry(prepared_workspace, exported_models[0])
    fp32 = json.loads((entry.evaluations_dir / "demo.val.fp32.json").read_text())
    for variant, device in (("int8", "CPU"), ("fp16", "GPU")):
        record = entry.card["variants"][variant]
        assert record["file"] == VARIANT_FILES[variant] and record["sha256"] == sha256_of(
            entry.folder / record["file"]
        )
        measured = json.loads((entry.evaluations_dir / f"demo.val.{variant}.json").read_text())
        assert (
            record["miou"] == measured["miou"]
            and record["fp32_miou"] == fp32["miou"]
            and record["device"] == device
        )
        assert record["miou_delta_points"] == pytest.approx((measured["miou"] - fp32["miou"]) * 100)
        assert record["recommended"] == (record["miou_delta_points"] >= -1.0)
        assert measured["protocol"]["images"] == 80
    quantized = onnx.load(str(entry.folder / "model.int8.onnx"))
    assert any(node.op_type == "QuantizeLinear" for node in quantized.graph.node)
    half = onnx.load(str(entry.folder / "model.fp16.onnx"))
    assert any(tensor.data_type == onnx.TensorProto.FLOAT16 for tensor in half.graph.initializer)


def test_failed_parity_publishes_nothing_and_keeps_the_previous_export(
    prepared_workspace, exported_models, monkeypatch
):
    import cocoseg.pipeline.training.export as export_module

    name = exported_models[0]
    before = (prepared_workspace.models_dir / name / "model.json").read_bytes()
    monkeypatch.setattr(
        export_module, "parity", lambda *args: {"max_abs_difference": 0.5, "argmax_agreement": 0.9}
    )
    with pytest.raises(ExportError, match="parity check failed.*not published"):
        export_run(prepared_workspace, ExportConfig(name, variants=()), LIMIT)
    assert (prepared_workspace.models_dir / name / "model.json").read_bytes() == before
    assert not list(prepared_workspace.models_dir.glob(".partial-*"))


def test_export_refuses_what_it_cannot_export(prepared_workspace, exported_models):
    with pytest.raises(ExportError, match="no run called"):
        export_run(prepared_workspace, ExportConfig("no-such-run"), LIMIT)
    import shutil

    from cocoseg.pipeline.jobs.registry import create_run

    unfinished = create_run(prepared_workspace, {"prepared_folder": "any"}, "unet")
    try:
        with pytest.raises(ExportError, match="no best checkpoint yet"):
            export_run(prepared_workspace, ExportConfig(unfinished.name), LIMIT)
    finally:
        shutil.rmtree(unfinished.folder)  # a queued run cannot be deleted through the registry
    with pytest.raises(ExportError, match="checkpoint must be"):
        ExportConfig(exported_models[0], checkpoint="middle")
    with pytest.raises(ExportError, match="unknown variant"):
        ExportConfig(exported_models[0], variants=("int4",))


def test_quantisation_writes_nothing_outside_its_target(
    prepared_workspace, prepared_demo, exported_models, tmp_path, monkeypatch
):
    from cocoseg.pipeline.training.export import _sample_images, quantize_int8

    scratch, target = tmp_path / "cwd", tmp_path / "out"
    scratch.mkdir()
    target.mkdir()
    monkeypatch.chdir(scratch)
    quantize_int8(
        prepared_workspace.models_dir / exported_models[0] / "model.onnx",
        target / "model.int8.onnx",
        _sample_images(prepared_demo, "train", 2),
    )
    assert list(scratch.iterdir()) == [] and [path.name for path in target.iterdir()] == ["model.int8.onnx"]
