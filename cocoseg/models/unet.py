"""UNet (Ronneberger et al., 2015): a convolutional encoder-decoder with skip connections."""

from __future__ import annotations

import keras

from cocoseg.models.blocks import check_size, conv_block, decoder, encoder, normalised_input, with_head


def unet_base(
    size: int = 256, base_filters: int = 32, depth: int = 4, block=conv_block, name: str = "unet_base"
) -> keras.Model:
    """Headless UNet: image (uint8) -> decoder features at full resolution.

    Args:
        size: square input side; divisible by 2**depth.
        base_filters: filters of the first level, doubled at every level down.
        depth: number of down-sampling steps.
        block: the per-level unit (``conv_block``; residual_unet passes its own).
    """
    check_size(size, 2**depth)
    image, values = normalised_input(size)
    values, skips = encoder(values, base_filters, depth, block)
    values = block(values, base_filters * 2**depth, "bottleneck")
    return keras.Model(image, decoder(values, skips, base_filters, block), name=name)


def build_unet(num_classes: int, size: int = 256, base_filters: int = 32, depth: int = 4) -> keras.Model:
    """UNet returning per-pixel class logits (B, size, size, num_classes)."""
    return with_head(unet_base(size, base_filters, depth), num_classes, "unet")
