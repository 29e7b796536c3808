"""Fine-tuning's weight copy and encoder freezing, on every architecture."""

from __future__ import annotations

import numpy as np
import pytest

from cocoseg.pipeline.core.tf_runtime import tensorflow

tf = tensorflow()

import keras  # noqa: E402

from cocoseg.errors import ConfigError  # noqa: E402
from cocoseg.models.losses import LOSS_FUNCTIONS  # noqa: E402
from cocoseg.models.registry import ARCHITECTURES, build_model  # noqa: E402
from cocoseg.models.transfer import copy_weights, encoder_layers, set_encoder_trainable  # noqa: E402
from tests.models.test_architectures import SMALL  # noqa: E402


def _weights(layer) -> list[np.ndarray]:
    return [np.asarray(weight) for weight in layer.get_weights()]


def _same(first, second) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(_weights(first), _weights(second)))


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_copied_layers_equal_the_parent_and_a_new_classifier_does_not(name):
    keras.utils.set_random_seed(1)
    parent = build_model(name, num_classes=4, size=64, **SMALL[name])
    keras.utils.set_random_seed(2)
    child = build_model(name, num_classes=4, size=64, **SMALL[name])
    # different seeds, so a copy is the only way the weights can agree
    assert not _same(parent.get_layer("logits"), child.get_layer("logits"))
    copied = copy_weights(parent, child, skip=("logits",))
    weighted = [layer.name for layer in child.layers if layer.weights]
    assert copied == [layer for layer in weighted if layer != "logits"]
    assert all(_same(parent.get_layer(layer), child.get_layer(layer)) for layer in copied)
    assert not _same(parent.get_layer("logits"), child.get_layer("logits"))
    assert encoder_layers(child), "every architecture has an encoder to freeze"


def test_another_class_count_only_fits_without_the_classifier():
    parent = build_model("unet", num_classes=21, size=64, **SMALL["unet"])
    child = build_model("unet", num_classes=3, size=64, **SMALL["unet"])
    with pytest.raises(ConfigError) as raised:
        copy_weights(parent, child)
    assert raised.value.field == "init_from" and "layer 'logits'" in raised.value.message
    assert "logits" not in copy_weights(parent, child, skip=("logits",))


def test_another_architecture_is_refused_naming_the_first_layer():
    parent = build_model("unet", num_classes=3, size=64, base_filters=8, depth=3)
    wider = build_model("unet", num_classes=3, size=64, base_filters=16, depth=3)
    with pytest.raises(ConfigError, match="layer 'encoder0_conv1' has weights"):
        copy_weights(parent, wider)
    gated = build_model("attention_unet", num_classes=3, size=64, base_filters=8, depth=3)
    with pytest.raises(ConfigError, match="the parent model has no layer 'decoder2_gate_theta'"):
        copy_weights(parent, gated)


@pytest.mark.parametrize("name", ["unet", "pretrained_unet"])
def test_a_frozen_encoder_keeps_its_weights_while_the_rest_trains(name):
    model = build_model(name, num_classes=3, size=64, **SMALL[name])
    optimizer = keras.optimizers.Adam(0.01)
    optimizer.build(model.trainable_variables)  # as the trainer does: every variable known before freezing
    everything = len(model.trainable_variables)
    assert set_encoder_trainable(model, False) > 0
    assert 0 < len(model.trainable_variables) < everything
    before = {layer.name: _weights(layer) for layer in model.layers if layer.weights}
    images = tf.constant(np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8))
    masks = tf.constant(np.random.default_rng(1).integers(0, 3, (2, 64, 64), dtype=np.uint8))
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = LOSS_FUNCTIONS["cross_entropy"](masks, model(images, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    frozen = {layer.name for layer in encoder_layers(model)}
    for layer in model.layers:
        if layer.name in before:
            unchanged = all(np.array_equal(a, b) for a, b in zip(before[layer.name], _weights(layer)))
            assert unchanged == (layer.name in frozen), layer.name
    set_encoder_trainable(model, True)
    assert len(model.trainable_variables) == everything
