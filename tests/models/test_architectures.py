"""Architectures: build at several sizes, headless bases, options, FLOPs, ONNX parity."""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime
import pytest

from cocoseg.pipeline.core.tf_runtime import tensorflow

tf = tensorflow()

import keras  # noqa: E402

from cocoseg.models import pretrained_unet  # noqa: E402
from cocoseg.models.registry import ARCHITECTURES, build_base, build_model  # noqa: E402
from cocoseg.models.summary import summarise  # noqa: E402

SMALL = {
    "unet": {"base_filters": 8, "depth": 3},
    "attention_unet": {"base_filters": 8, "depth": 3},
    "residual_unet": {"base_filters": 8, "depth": 3},
    "transunet": {"base_filters": 8, "depth": 3, "layers_count": 1, "heads": 2, "dim": 16},
    "pretrained_unet": {},
    "deeplabv3_plus": {"aspp_filters": 16},
}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
@pytest.mark.parametrize("size", [128, 256, 512])
def test_builds_at_common_sizes_with_uint8_input(name, size):
    model = build_model(name, num_classes=5, size=size, **SMALL[name])
    assert model.input.dtype == "uint8" and tuple(model.input.shape) == (None, size, size, 3)
    assert tuple(model.output.shape) == (None, size, size, 5)
    assert model.get_layer("normalise") is not None and model.get_layer("logits") is not None


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_base_is_headless_and_layer_names_are_deterministic(name):
    base = build_base(name, 64, **SMALL[name])
    assert len(base.output.shape) == 4 and "logits" not in [layer.name for layer in base.layers]
    names = [layer.name for layer in build_model(name, 3, 64, **SMALL[name]).layers]
    assert names == [layer.name for layer in build_model(name, 3, 64, **SMALL[name]).layers]


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_onnx_export_matches_keras(name):
    import tf2onnx

    model = build_model(name, num_classes=4, size=64, **SMALL[name])
    signature = (tf.TensorSpec((None, 64, 64, 3), tf.uint8, name="image"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    expected = model(images, training=False).numpy()
    actual = session.run(None, {session.get_inputs()[0].name: images})[0]
    assert np.abs(actual - expected).max() < 1e-3
    assert (actual.argmax(-1) == expected.argmax(-1)).mean() > 0.999


def test_summary_reports_parameters_and_flops():
    summary = summarise(build_model("unet", 3, 64, base_filters=8, depth=2))
    # first conv: 64*64 outputs * 3*3*3 inputs * 8 filters * 2 (multiply + add)
    assert summary.parameters > 0 and summary.flops_per_image > 2 * 64 * 64 * 27 * 8
    bigger = summarise(build_model("unet", 3, 128, base_filters=8, depth=2))
    assert bigger.flops_per_image == pytest.approx(
        4 * summary.flops_per_image, rel=0.01
    )  # FLOPs scale with pixels


def test_unknown_architecture_and_option_name_the_field():
    with pytest.raises(ValueError, match="model: unknown architecture 'vnet'"):
        build_model("vnet", 3, 64)
    with pytest.raises(ValueError, match="model_options: unet does not take dropout"):
        build_model("unet", 3, 64, dropout=0.5)
    with pytest.raises(ValueError, match="size: 100 must be divisible by 16"):
        build_model("unet", 3, 100)


def test_imagenet_weights_offline_fail_clearly_or_fall_back_when_asked(monkeypatch, caplog):
    def offline(*_args, **_kwargs):
        raise OSError("Name or service not known")  # what the downloader raises without a network

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.applications.mobilenet_v2.file_utils.get_file", offline, raising=False)
    expected = "could not be loaded .*cocoseg weights import FILE --encoder mobilenet_v2"
    with (
        warnings.catch_warnings(record=True) as caught,
        pytest.raises(pretrained_unet.EncoderWeightsUnavailable, match=expected),
    ):
        warnings.simplefilter("always")
        build_model("pretrained_unet", 3, 64, encoder_weights="imagenet")
    # 64 px is outside the sizes Keras has MobileNet weights for; its warning about that is not news here.
    assert not [warning for warning in caught if "input_shape" in str(warning.message)]
    model = build_model("pretrained_unet", 3, 64, encoder_weights="imagenet", fallback_to_random=True)
    assert tuple(model.output.shape) == (None, 64, 64, 3)
    assert "starting from random encoder weights" in caplog.text
