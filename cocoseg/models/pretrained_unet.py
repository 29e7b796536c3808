"""UNet decoder on a pretrained Keras Applications encoder (MobileNetV2 by default; Sandler et al., 2018).

With ImageNet weights the encoder starts from general image features, which helps most when
labelled data is scarce. ``encoder_weights`` is None (random), ``"imagenet"`` (Keras' own
download and cache) or a checked weights file; the training job passes the workspace's file.
Offline, the build fails with one clear line unless ``fallback_to_random=True`` was asked
for, in which case it says so in the log and starts from random weights.
"""

from __future__ import annotations

import keras
from keras import layers

from cocoseg.errors import ConfigError
from cocoseg.models.blocks import check_size, conv_block, with_head
from cocoseg.models.encoder_catalog import DEFAULT_ENCODER, encoder_info
from cocoseg.models.encoders import EncoderWeightsUnavailable, encoder_input, feature_extractor

__all__ = [
    "EncoderWeightsUnavailable",
    "build_pretrained_unet",
    "check_encoder_weights",
    "pretrained_unet_base",
]

DECODER_FILTERS = (16, 32, 64, 128)


def check_encoder_weights(encoder: str, encoder_weights) -> None:
    """Refuse an unknown encoder, or weights that are neither None, ``"imagenet"`` nor a file path."""
    encoder_info(encoder)
    if encoder_weights is not None and not isinstance(encoder_weights, str):
        raise ConfigError(
            "encoder_weights", f"must be 'imagenet', a weights file or None, got {encoder_weights!r}"
        )


def pretrained_unet_base(
    size: int = 256,
    encoder: str = DEFAULT_ENCODER,
    encoder_weights: str | None = None,
    fallback_to_random: bool = False,
    name: str = "pretrained_unet_base",
) -> keras.Model:
    """Headless encoder-UNet: image (uint8) -> decoder features at full resolution."""
    check_size(size, 32)
    check_encoder_weights(encoder, encoder_weights)
    image, values = encoder_input(size, encoder)
    *skips, values = feature_extractor(encoder, size, encoder_weights, fallback_to_random)(values)
    for level in reversed(range(len(skips))):
        values = layers.UpSampling2D(2, interpolation="bilinear", name=f"decoder{level + 1}_up")(values)
        values = layers.Concatenate(name=f"decoder{level + 1}_concat")([values, skips[level]])
        values = conv_block(values, DECODER_FILTERS[level], f"decoder{level + 1}")
    values = layers.UpSampling2D(2, interpolation="bilinear", name="decoder0_up")(values)
    values = conv_block(values, DECODER_FILTERS[0], "decoder0")
    return keras.Model(image, values, name=name)


def build_pretrained_unet(
    num_classes: int,
    size: int = 256,
    encoder: str = DEFAULT_ENCODER,
    encoder_weights: str | None = None,
    fallback_to_random: bool = False,
) -> keras.Model:
    """Encoder-UNet returning per-pixel class logits."""
    return with_head(
        pretrained_unet_base(size, encoder, encoder_weights, fallback_to_random),
        num_classes,
        "pretrained_unet",
    )
