"""Architectures by name, so configs and the UI can refer to them as strings."""

from __future__ import annotations

from typing import Callable

import keras

from models.unet import build_unet

ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {"unet": build_unet}
DEFAULT_ARCHITECTURE = "unet"


def build_model(name: str, num_classes: int, size: int, **options) -> keras.Model:
    """Build a registered architecture; ``ValueError`` lists the known names."""
    try:
        factory = ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None
    return factory(num_classes=num_classes, size=size, **options)
