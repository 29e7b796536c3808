"""TransUNet-style model (Chen et al., 2021): a convolutional encoder down to 1/16, a stack
of multi-head self-attention (ViT) layers over the bottleneck's tokens for global
context, and a UNet decoder with skip connections back to full resolution.

Token count is fixed by the input size (static shapes), so the position embedding is a
learned (tokens, dim) table and the whole graph converts to ONNX.
"""

from __future__ import annotations

import keras
from keras import layers

from cocoseg.errors import ConfigError
from cocoseg.models.blocks import check_size, conv_block, decoder, encoder, normalised_input, with_head


@keras.saving.register_keras_serializable(package="cocoseg")
class PositionEmbedding(layers.Layer):
    """Adds a learned embedding per token position to a (batch, tokens, dim) tensor."""

    def build(self, input_shape):
        self.table = self.add_weight(
            name="table",
            shape=(input_shape[1], input_shape[2]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )

    def call(self, tokens):
        return tokens + self.table


@keras.saving.register_keras_serializable(package="cocoseg")
class TanhGelu(layers.Layer):
    """GELU with the tanh approximation: the exact (erf) form lowers to TensorFlow's
    ``Erfc``, which tf2onnx cannot convert; the tanh form exports to plain ONNX ops."""

    def call(self, values):
        return keras.ops.gelu(values, approximate=True)


def transformer_layer(tokens, dim: int, heads: int, name: str):
    """Pre-norm transformer encoder layer: self-attention and a GELU MLP, each residual."""
    attended = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(tokens)
    attended = layers.MultiHeadAttention(heads, dim // heads, name=f"{name}_attention")(attended, attended)
    tokens = layers.Add(name=f"{name}_add1")([tokens, attended])
    hidden = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(tokens)
    hidden = layers.Dense(dim * 2, name=f"{name}_mlp1")(hidden)
    hidden = TanhGelu(name=f"{name}_gelu")(hidden)
    hidden = layers.Dense(dim, name=f"{name}_mlp2")(hidden)
    return layers.Add(name=f"{name}_add2")([tokens, hidden])


def transunet_base(
    size: int = 256,
    base_filters: int = 32,
    depth: int = 4,
    layers_count: int = 4,
    heads: int = 4,
    dim: int = 128,
    name: str = "transunet_base",
) -> keras.Model:
    """Headless TransUNet: image (uint8) -> decoder features at full resolution.

    Args:
        layers_count: transformer layers over the bottleneck tokens.
        heads: attention heads (``dim`` must be divisible by it).
        dim: token width.
    """
    check_size(size, 2**depth)
    if dim % heads:
        raise ConfigError("dim", f"{dim} must be divisible by heads={heads}")
    image, values = normalised_input(size)
    values, skips = encoder(values, base_filters, depth)
    side = size // 2**depth
    tokens = layers.Conv2D(dim, 1, name="bottleneck_embed")(values)
    tokens = layers.Reshape((side * side, dim), name="bottleneck_tokens")(tokens)
    tokens = PositionEmbedding(name="bottleneck_position")(tokens)
    for index in range(layers_count):
        tokens = transformer_layer(tokens, dim, heads, f"transformer{index}")
    tokens = layers.LayerNormalization(epsilon=1e-6, name="transformer_norm")(tokens)
    values = layers.Reshape((side, side, dim), name="bottleneck_grid")(tokens)
    values = conv_block(values, base_filters * 2**depth, "bottleneck")
    return keras.Model(image, decoder(values, skips, base_filters), name=name)


def build_transunet(
    num_classes: int,
    size: int = 256,
    base_filters: int = 32,
    depth: int = 4,
    layers_count: int = 4,
    heads: int = 4,
    dim: int = 128,
) -> keras.Model:
    """TransUNet returning per-pixel class logits."""
    return with_head(
        transunet_base(size, base_filters, depth, layers_count, heads, dim), num_classes, "transunet"
    )
