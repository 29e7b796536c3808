"""Fine-tuning: start a model from another one's weights, and freeze its encoder for a while.

Every architecture here names its layers deterministically, so the same architecture and
options give the same names in the parent and the child, and weights are matched by name.
"""

from __future__ import annotations

from collections.abc import Collection

import keras

from cocoseg.errors import ConfigError


def copy_weights(source: keras.Model, target: keras.Model, skip: Collection[str] = ()) -> list[str]:
    """Give every weighted layer of ``target`` the weights of ``source``'s layer of the same name.

    Layers named in ``skip`` (a new classifier) keep their fresh weights.

    Returns:
        The names of the copied layers.

    Raises:
        ConfigError: field ``init_from``, naming the first layer the parent lacks or has in
            another shape.
    """
    by_name = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in target.layers:
        if not layer.weights or layer.name in skip:
            continue
        origin = by_name.get(layer.name)
        if origin is None:
            raise ConfigError("init_from", f"the parent model has no layer {layer.name!r}")
        shapes = [tuple(weight.shape) for weight in layer.weights]
        origin_shapes = [tuple(weight.shape) for weight in origin.weights]
        if shapes != origin_shapes:
            raise ConfigError(
                "init_from",
                f"layer {layer.name!r} has weights {origin_shapes} in the parent but {shapes} here",
            )
        layer.set_weights(origin.get_weights())
        copied.append(layer.name)
    return copied


def encoder_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The contracting path: ``encoder<level>_*`` layers (UNet family, TransUNet) or the nested
    ``encoder`` model (pretrained encoders)."""
    return [layer for layer in model.layers if layer.name.startswith("encoder")]


def set_encoder_trainable(model: keras.Model, trainable: bool) -> int:
    """Freeze or release the encoder; returns how many layers that touched.

    A frozen BatchNormalization layer also stops updating its statistics (Keras runs it in
    inference mode), which is what fine-tuning wants.
    """
    layers = encoder_layers(model)
    for layer in layers:
        layer.trainable = trainable
    return len(layers)
