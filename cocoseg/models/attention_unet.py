"""Attention UNet (Oktay et al., 2018): UNet whose skip connections pass through additive
attention gates driven by the coarser decoder level, so irrelevant skip features are
suppressed before concatenation."""

from __future__ import annotations

import keras

from cocoseg.models.blocks import check_size, conv_block, decoder, encoder, normalised_input, with_head


def attention_unet_base(
    size: int = 256, base_filters: int = 32, depth: int = 4, name: str = "attention_unet_base"
) -> keras.Model:
    """Headless attention UNet: image (uint8) -> decoder features at full resolution."""
    check_size(size, 2**depth)
    image, values = normalised_input(size)
    values, skips = encoder(values, base_filters, depth)
    values = conv_block(values, base_filters * 2**depth, "bottleneck")
    return keras.Model(image, decoder(values, skips, base_filters, gated=True), name=name)


def build_attention_unet(
    num_classes: int, size: int = 256, base_filters: int = 32, depth: int = 4
) -> keras.Model:
    """Attention UNet returning per-pixel class logits."""
    return with_head(attention_unet_base(size, base_filters, depth), num_classes, "attention_unet")
