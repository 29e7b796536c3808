"""Attention UNet (Oktay et al., 2018): UNet whose skip connections pass through additive
attention gates driven by the coarser decoder level, so irrelevant skip features are
suppressed before concatenation."""

from __future__ import annotations

import keras
from keras import layers

from models.blocks import attention_gate, check_size, conv_block, normalised_input, with_head


def attention_unet_base(size: int = 256, base_filters: int = 32, depth: int = 4, name: str = "attention_unet_base") -> keras.Model:
    """Headless attention UNet: image (uint8) -> decoder features at full resolution."""
    check_size(size, 2**depth)
    image, values = normalised_input(size)
    skips = []
    for level in range(depth):
        values = conv_block(values, base_filters * 2**level, f"encoder{level}")
        skips.append(values)
        values = layers.MaxPooling2D(2, name=f"encoder{level}_pool")(values)
    values = conv_block(values, base_filters * 2**depth, "bottleneck")
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        values = layers.UpSampling2D(2, interpolation="bilinear", name=f"decoder{level}_up")(values)
        gated = attention_gate(skips[level], values, max(filters // 2, 8), f"decoder{level}_gate")
        values = layers.Concatenate(name=f"decoder{level}_concat")([values, gated])
        values = conv_block(values, filters, f"decoder{level}")
    return keras.Model(image, values, name=name)


def build_attention_unet(num_classes: int, size: int = 256, base_filters: int = 32, depth: int = 4) -> keras.Model:
    """Attention UNet returning per-pixel class logits."""
    return with_head(attention_unet_base(size, base_filters, depth), num_classes, "attention_unet")
