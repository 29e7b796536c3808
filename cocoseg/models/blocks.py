"""Building blocks shared by the architectures (Keras 3, deterministic layer names).

Everything here converts to ONNX through tf2onnx: static shapes, bilinear
``UpSampling2D`` with a fixed factor, no dynamic resizing.
"""

from __future__ import annotations

import keras
from keras import layers

from cocoseg.errors import ConfigError

# Keras' default 0.99 needs thousands of steps before the inference statistics catch up;
# segmentation runs on small sets take a few hundred, so the moving averages move faster.
BATCH_NORM_MOMENTUM = 0.9


def conv_block(values, filters: int, name: str):
    """Two 3x3 convolutions with batch normalisation and ReLU (the UNet unit)."""
    for index in (1, 2):
        values = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{index}")(values)
        values = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn{index}")(values)
        values = layers.Activation("relu", name=f"{name}_relu{index}")(values)
    return values


def residual_block(values, filters: int, name: str):
    """Two 3x3 convolutions whose output is added to a (projected) shortcut (He et al. 2016)."""
    shortcut = values
    if values.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(values)
        shortcut = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_project_bn")(
            shortcut
        )
    values = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(values)
    values = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn1")(values)
    values = layers.Activation("relu", name=f"{name}_relu1")(values)
    values = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(values)
    values = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn2")(values)
    values = layers.Add(name=f"{name}_add")([values, shortcut])
    return layers.Activation("relu", name=f"{name}_relu2")(values)


def attention_gate(skip, gating, filters: int, name: str):
    """Additive attention gate (Oktay et al. 2018): weight skip features by relevance.

    ``gating`` comes from the coarser decoder level, already up-sampled to the skip's
    resolution; the gate learns a per-pixel coefficient in (0, 1) for the skip.
    """
    theta = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_theta")(skip)
    phi = layers.Conv2D(filters, 1, name=f"{name}_phi")(gating)
    joined = layers.Activation("relu", name=f"{name}_relu")(layers.Add(name=f"{name}_add")([theta, phi]))
    coefficients = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_psi")(joined)
    return layers.Multiply(name=f"{name}_apply")([skip, coefficients])


def encoder(values, base_filters: int, depth: int, block=conv_block):
    """The UNet contracting path: ``depth`` levels of block + 2x max-pool.

    Returns:
        (the pooled output of the last level, the skip tensors from fine to coarse).
    """
    skips = []
    for level in range(depth):
        values = block(values, base_filters * 2**level, f"encoder{level}")
        skips.append(values)
        values = layers.MaxPooling2D(2, name=f"encoder{level}_pool")(values)
    return values, skips


def decoder(values, skips: list, base_filters: int, block=conv_block, gated: bool = False):
    """The UNet expanding path: static bilinear 2x up-sampling, concatenation with the
    skip of the same level (through an attention gate when ``gated``), then a block."""
    for level in reversed(range(len(skips))):
        filters = base_filters * 2**level
        values = layers.UpSampling2D(2, interpolation="bilinear", name=f"decoder{level}_up")(values)
        skip = (
            attention_gate(skips[level], values, max(filters // 2, 8), f"decoder{level}_gate")
            if gated
            else skips[level]
        )
        values = layers.Concatenate(name=f"decoder{level}_concat")([values, skip])
        values = block(values, filters, f"decoder{level}")
    return values


def normalised_input(size: int, name: str = "image"):
    """A uint8 RGB input and its [-1, 1] float version: the model owns its normalisation,
    so training, export and inference cannot drift apart."""
    image = keras.Input((size, size, 3), dtype="uint8", name=name)
    values = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalise")(image)
    return image, values


def check_size(size: int, factor: int) -> None:
    if size % factor:
        raise ConfigError("size", f"{size} must be divisible by {factor} for this architecture")


def with_head(base: keras.Model, num_classes: int, name: str) -> keras.Model:
    """Add the 1x1 logits head to a headless ``*_base`` model."""
    if num_classes < 2:
        raise ConfigError("num_classes", f"need background and at least one class, got {num_classes}")
    # float32 whatever the global policy: under mixed_float16 / mixed_bfloat16 the logits, the
    # softmax and the loss stay float32 (a mixed layer's output would be float16 / bfloat16)
    logits = layers.Conv2D(num_classes, 1, name="logits", dtype="float32")(base.output)
    return keras.Model(base.input, logits, name=name)
