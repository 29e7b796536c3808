"""UNet (Ronneberger et al., 2015): a convolutional encoder-decoder with skip connections."""

from __future__ import annotations

import keras
from keras import layers

from models.blocks import conv_block, normalised_input


def build_unet(num_classes: int, size: int = 256, base_filters: int = 32, depth: int = 4, name: str = "unet") -> keras.Model:
    """A UNet returning per-pixel class logits (B, size, size, num_classes).

    Args:
        num_classes: classes including background.
        size: square input side; must be divisible by 2**depth.
        base_filters: filters of the first level, doubled at every level down.
        depth: number of down-sampling steps.
    """
    if size % (2**depth):
        raise ValueError(f"size {size} must be divisible by 2**depth = {2**depth}")
    image, values = normalised_input(size)
    skips = []
    for level in range(depth):
        values = conv_block(values, base_filters * 2**level, f"encoder{level}")
        skips.append(values)
        values = layers.MaxPooling2D(2, name=f"encoder{level}_pool")(values)
    values = conv_block(values, base_filters * 2**depth, "bottleneck")
    for level in reversed(range(depth)):
        values = layers.UpSampling2D(2, interpolation="bilinear", name=f"decoder{level}_up")(values)
        values = layers.Concatenate(name=f"decoder{level}_concat")([values, skips[level]])
        values = conv_block(values, base_filters * 2**level, f"decoder{level}")
    logits = layers.Conv2D(num_classes, 1, name="logits")(values)
    return keras.Model(image, logits, name=name)
