"""UNet decoder on a MobileNetV2 encoder from Keras Applications (Sandler et al., 2018).

With ``encoder_weights="imagenet"`` the encoder starts from ImageNet features, which
helps most when labelled data is scarce. Weights are downloaded by Keras on first use;
offline, the build fails with one clear line unless ``fallback_to_random=True`` was
asked for, in which case it says so in the log and starts from random weights.
MobileNetV2 expects inputs in [-1, 1], which is what ``normalised_input`` produces.
"""

from __future__ import annotations

import logging

import keras
from keras import layers

from cocoseg.errors import ConfigError
from cocoseg.models.blocks import check_size, conv_block, normalised_input, with_head

logger = logging.getLogger(__name__)

# MobileNetV2 feature maps at 1/2, 1/4, 1/8 and 1/16 of the input, then the 1/32 output.
SKIP_LAYERS = ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu")
ENCODER_OUTPUT = "out_relu"
DECODER_FILTERS = (16, 32, 64, 128)


class EncoderWeightsUnavailable(RuntimeError):
    """ImageNet weights could not be loaded (typically: no network)."""


def _encoder(size: int, encoder_weights: str | None, fallback_to_random: bool) -> keras.Model:
    try:
        return keras.applications.MobileNetV2(
            input_shape=(size, size, 3), include_top=False, weights=encoder_weights
        )
    except Exception as error:  # noqa: BLE001 - download and file errors differ by platform
        if encoder_weights is None:
            raise
        message = (
            "MobileNetV2 ImageNet weights could not be loaded "
            f"({type(error).__name__}: {str(error).splitlines()[0][:120]})"
        )
        if not fallback_to_random:
            raise EncoderWeightsUnavailable(
                message + "; use encoder_weights=None or allow the random fallback"
            ) from None
        logger.warning("%s; starting from random encoder weights as requested", message)
        return keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=None)


def pretrained_unet_base(
    size: int = 256,
    encoder_weights: str | None = None,
    fallback_to_random: bool = False,
    name: str = "pretrained_unet_base",
) -> keras.Model:
    """Headless MobileNetV2-UNet: image (uint8) -> decoder features at full resolution."""
    check_size(size, 32)
    if encoder_weights not in (None, "imagenet"):
        raise ConfigError("encoder_weights", f"must be 'imagenet' or None, got {encoder_weights!r}")
    image, values = normalised_input(size)
    encoder = _encoder(size, encoder_weights, fallback_to_random)
    features = keras.Model(
        encoder.input,
        [encoder.get_layer(layer).output for layer in (*SKIP_LAYERS, ENCODER_OUTPUT)],
        name="encoder",
    )
    *skips, values = features(values)
    for level in reversed(range(len(skips))):
        values = layers.UpSampling2D(2, interpolation="bilinear", name=f"decoder{level + 1}_up")(values)
        values = layers.Concatenate(name=f"decoder{level + 1}_concat")([values, skips[level]])
        values = conv_block(values, DECODER_FILTERS[level], f"decoder{level + 1}")
    values = layers.UpSampling2D(2, interpolation="bilinear", name="decoder0_up")(values)
    values = conv_block(values, DECODER_FILTERS[0], "decoder0")
    return keras.Model(image, values, name=name)


def build_pretrained_unet(
    num_classes: int, size: int = 256, encoder_weights: str | None = None, fallback_to_random: bool = False
) -> keras.Model:
    """MobileNetV2-UNet returning per-pixel class logits."""
    return with_head(
        pretrained_unet_base(size, encoder_weights, fallback_to_random), num_classes, "pretrained_unet"
    )
