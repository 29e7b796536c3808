"""Architectures by name, so configs and the UI can refer to them as strings.

Each entry has a full builder (logits head) and a headless ``*_base`` builder (decoder
features, for ensembles and new heads). Options are checked against the builder's
signature, so a misspelt option fails with its name instead of a TypeError.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import keras

from cocoseg.errors import ConfigError
from cocoseg.models.attention_unet import attention_unet_base, build_attention_unet
from cocoseg.models.catalog import CATALOG
from cocoseg.models.deeplab import build_deeplabv3_plus, deeplabv3_plus_base
from cocoseg.models.pretrained_unet import build_pretrained_unet, pretrained_unet_base
from cocoseg.models.residual_unet import build_residual_unet, residual_unet_base
from cocoseg.models.transunet import build_transunet, transunet_base
from cocoseg.models.unet import build_unet, unet_base


@dataclasses.dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., keras.Model]
    build_base: Callable[..., keras.Model]
    description: str


ARCHITECTURES: dict[str, Architecture] = {
    architecture.name: architecture
    for architecture in (
        Architecture("unet", build_unet, unet_base, CATALOG["unet"].description),
        Architecture(
            "attention_unet", build_attention_unet, attention_unet_base, CATALOG["attention_unet"].description
        ),
        Architecture(
            "residual_unet", build_residual_unet, residual_unet_base, CATALOG["residual_unet"].description
        ),
        Architecture("transunet", build_transunet, transunet_base, CATALOG["transunet"].description),
        Architecture(
            "pretrained_unet",
            build_pretrained_unet,
            pretrained_unet_base,
            CATALOG["pretrained_unet"].description,
        ),
        Architecture(
            "deeplabv3_plus", build_deeplabv3_plus, deeplabv3_plus_base, CATALOG["deeplabv3_plus"].description
        ),
    )
}


def architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ConfigError(
            "model", f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}"
        ) from None


def check_options(name: str, options: dict) -> None:
    """Refuse options the architecture does not take, naming them and what it takes."""
    accepted = set(inspect.signature(architecture(name).build).parameters) - {"num_classes", "size"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(
            "model_options",
            f"{name} does not take {', '.join(unknown)}; it takes {', '.join(sorted(accepted)) or 'none'}",
        )


def build_model(name: str, num_classes: int, size: int, **options) -> keras.Model:
    """Build a registered architecture with logits head."""
    check_options(name, options)
    return architecture(name).build(num_classes=num_classes, size=size, **options)


def build_base(name: str, size: int, **options) -> keras.Model:
    """Build a registered architecture without its head."""
    check_options(name, options)
    return architecture(name).build_base(size=size, **options)
