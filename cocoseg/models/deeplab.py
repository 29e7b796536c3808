"""DeepLabV3+ (Chen et al., 2018) on the pretrained encoders: ASPP on the 1/16 features, a 1/4 skip.

Atrous spatial pyramid pooling looks at several context sizes at once (a 1x1 branch, three
dilated 3x3 branches and image-level pooling); the decoder up-samples that by 4, joins the
encoder's 1/4 features through a narrow projection, refines and up-samples to the input.
Dilation rates are those of the paper at output stride 16, capped so that a branch never
looks wider than the feature map (at 128 px the map is 8x8, where rate 18 would only see padding).
Static shapes and fixed up-sampling factors, so tf2onnx converts it.
"""

from __future__ import annotations

import keras
from keras import layers

from cocoseg.models.blocks import BATCH_NORM_MOMENTUM, check_size, with_head
from cocoseg.models.encoder_catalog import DEFAULT_ENCODER
from cocoseg.models.encoders import encoder_input, feature_extractor
from cocoseg.models.pretrained_unet import check_encoder_weights

PAPER_RATES = (6, 12, 18)
LOW_LEVEL_FILTERS = 48


def _convolution(values, filters: int, kernel: int, name: str, dilation: int = 1):
    values = layers.Conv2D(
        filters, kernel, padding="same", dilation_rate=dilation, use_bias=False, name=f"{name}_conv"
    )(values)
    values = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn")(values)
    return layers.Activation("relu", name=f"{name}_relu")(values)


def atrous_pyramid(values, filters: int):
    """ASPP: parallel 1x1, dilated 3x3 and image-pooling branches, joined and projected."""
    side = values.shape[1]
    rates = [rate for rate in PAPER_RATES if rate < side] or [max(1, side // 2)]
    branches = [_convolution(values, filters, 1, "aspp_1x1")]
    branches += [_convolution(values, filters, 3, f"aspp_rate{rate}", rate) for rate in rates]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(values)
    pooled = _convolution(pooled, filters, 1, "aspp_pool_projection")
    branches.append(layers.UpSampling2D(side, interpolation="nearest", name="aspp_pool_up")(pooled))
    joined = layers.Concatenate(name="aspp_concat")(branches)
    return _convolution(joined, filters, 1, "aspp_projection")


def deeplabv3_plus_base(
    size: int = 256,
    encoder: str = DEFAULT_ENCODER,
    encoder_weights: str | None = None,
    fallback_to_random: bool = False,
    aspp_filters: int = 128,
    name: str = "deeplabv3_plus_base",
) -> keras.Model:
    """Headless DeepLabV3+: image (uint8) -> decoder features at full resolution."""
    check_size(size, 32)
    check_encoder_weights(encoder, encoder_weights)
    image, values = encoder_input(size, encoder)
    features = feature_extractor(encoder, size, encoder_weights, fallback_to_random, levels=(1, 3))
    quarter, sixteenth = features(values)
    context = atrous_pyramid(sixteenth, aspp_filters)
    context = layers.UpSampling2D(4, interpolation="bilinear", name="decoder_context_up")(context)
    detail = _convolution(quarter, LOW_LEVEL_FILTERS, 1, "decoder_low_level")
    values = layers.Concatenate(name="decoder_concat")([context, detail])
    values = _convolution(values, aspp_filters, 3, "decoder_refine1")
    values = _convolution(values, aspp_filters, 3, "decoder_refine2")
    values = layers.UpSampling2D(4, interpolation="bilinear", name="decoder_up")(values)
    return keras.Model(image, values, name=name)


def build_deeplabv3_plus(
    num_classes: int,
    size: int = 256,
    encoder: str = DEFAULT_ENCODER,
    encoder_weights: str | None = None,
    fallback_to_random: bool = False,
    aspp_filters: int = 128,
) -> keras.Model:
    """DeepLabV3+ returning per-pixel class logits."""
    return with_head(
        deeplabv3_plus_base(size, encoder, encoder_weights, fallback_to_random, aspp_filters),
        num_classes,
        "deeplabv3_plus",
    )
