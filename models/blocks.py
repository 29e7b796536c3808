"""Building blocks shared by the architectures (Keras 3, deterministic layer names)."""

from __future__ import annotations

import keras
from keras import layers


def conv_block(values, filters: int, name: str):
    """Two 3x3 convolutions with batch normalisation and ReLU (the UNet unit)."""
    for index in (1, 2):
        values = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{index}")(values)
        values = layers.BatchNormalization(name=f"{name}_bn{index}")(values)
        values = layers.Activation("relu", name=f"{name}_relu{index}")(values)
    return values


def normalised_input(size: int, name: str = "image"):
    """A uint8 RGB input and its [-1, 1] float version: the model owns its normalisation,
    so training, export and inference cannot drift apart."""
    image = keras.Input((size, size, 3), dtype="uint8", name=name)
    values = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalise")(image)
    return image, values
