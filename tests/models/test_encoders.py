"""Pretrained encoders: features at the strides the catalog names, ONNX parity, and weights-file checks.

Every weights file here is written by the test from a randomly initialised encoder, in the two
formats a user carries in: Keras Applications' layer-named ``.h5`` and Keras 3's ``.weights.h5``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from cocoseg.pipeline.core.tf_runtime import tensorflow

tf = tensorflow()

import keras  # noqa: E402
from keras.src.legacy.saving import legacy_h5_format  # noqa: E402

from cocoseg.models.encoder_catalog import ENCODERS  # noqa: E402
from cocoseg.models.encoders import WeightsFileError, check_weights_file, feature_extractor  # noqa: E402
from cocoseg.models.registry import build_model  # noqa: E402


def application(encoder: str, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    info = ENCODERS[encoder]
    return getattr(keras.applications, info.application)(
        input_shape=(96, 96, 3), include_top=False, weights=None
    )


def write_legacy(model: keras.Model, path: Path) -> Path:
    """The layout of Keras Applications' downloads: one group per layer, ``weight_names`` attributes."""
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    return path


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_features_are_at_the_strides_the_catalog_names(encoder):
    features = feature_extractor(encoder, 64)
    sides = [tuple(output.shape[1:3]) for output in features.outputs]
    assert sides == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    assert features.name == "encoder"


def test_deeplab_on_efficientnet_exports_to_onnx_with_parity():
    import onnxruntime
    import tf2onnx

    model = build_model("deeplabv3_plus", 4, 64, encoder="efficientnetv2_b0", aspp_filters=16)
    signature = (tf.TensorSpec((None, 64, 64, 3), tf.uint8, name="image"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    expected = model(images, training=False).numpy()
    actual = session.run(None, {"image": images})[0]
    assert np.abs(actual - expected).max() < 1e-3


@pytest.mark.parametrize("file_format", ["legacy", "keras3"])
def test_a_carried_in_file_is_checked_and_its_weights_are_the_ones_built(tmp_path, file_format):
    source = application("mobilenet_v2", seed=7)
    if file_format == "legacy":
        path = write_legacy(source, tmp_path / "mobilenet.h5")
    else:
        path = tmp_path / "mobilenet.weights.h5"
        source.save_weights(path)
    assert check_weights_file(path, "mobilenet_v2") == len(source.weights)
    model = build_model("pretrained_unet", 3, 64, encoder_weights=str(path))
    built = model.get_layer("encoder").get_layer("Conv1").get_weights()[0]
    assert np.array_equal(built, source.get_layer("Conv1").get_weights()[0])
    fresh = build_model("pretrained_unet", 3, 64).get_layer("encoder").get_layer("Conv1").get_weights()[0]
    assert not np.array_equal(fresh, built)


def test_another_encoders_file_is_refused_naming_the_layer(tmp_path):
    path = write_legacy(application("efficientnetv2_b0"), tmp_path / "efficientnet.h5")
    with pytest.raises(WeightsFileError, match=r"not a MobileNetV2 weights file: it has no 'Conv1/kernel'"):
        check_weights_file(path, "mobilenet_v2")


def test_same_names_other_shapes_are_refused_naming_the_first_layer(tmp_path):
    narrow = keras.applications.MobileNetV2((96, 96, 3), alpha=0.5, include_top=False, weights=None)
    path = write_legacy(narrow, tmp_path / "mobilenet_half.h5")
    with pytest.raises(WeightsFileError, match=r"layer 'Conv1' has shape \(3, 3, 3, 16\) in the file"):
        check_weights_file(path, "mobilenet_v2")


def test_a_truncated_or_foreign_file_is_refused_naming_the_file(tmp_path):
    whole = write_legacy(application("mobilenet_v2"), tmp_path / "whole.h5").read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(WeightsFileError, match="truncated.h5 is not a readable Keras weights file"):
        check_weights_file(truncated, "mobilenet_v2")
    text = tmp_path / "notes.h5"
    text.write_text("not weights")
    with pytest.raises(WeightsFileError, match="notes.h5 is not a readable"):
        check_weights_file(text, "mobilenet_v2")
