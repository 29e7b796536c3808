"""What each architecture is and which options it takes, without importing Keras.

The web process lists architectures and validates a training form before any job
starts, and it never imports TensorFlow; this table is what it reads. The builders in
``cocoseg.models.registry`` check the same rules again at build time (``check_size``), and
``tests/models`` keeps the two in step (every option here is a builder parameter with
the same default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from cocoseg.errors import ConfigError
from cocoseg.models.encoder_catalog import DEFAULT_ENCODER, ENCODERS


@dataclasses.dataclass(frozen=True)
class Option:
    """One keyword option of a builder: its default and the values that make sense."""

    name: str
    default: Any
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple | None = None
    help: str = ""
    # False for how weights start (not what the network is): a fine-tuned child may differ there
    architectural: bool = True


@dataclasses.dataclass(frozen=True)
class ArchitectureInfo:
    name: str
    description: str
    options: tuple[Option, ...]

    def option(self, name: str) -> Option:
        return next(option for option in self.options if option.name == name)

    def defaults(self) -> dict:
        return {option.name: option.default for option in self.options}

    def architecture(self, options: Mapping[str, Any]) -> dict:
        """The options that shape the network, defaults filled in (initialisation left out)."""
        merged = {**self.defaults(), **dict(options)}
        return {option.name: merged[option.name] for option in self.options if option.architectural}

    @property
    def pretrained(self) -> bool:
        """Built on a Keras Applications encoder (``encoder`` and ``encoder_weights`` options)."""
        return any(option.name == "encoder" for option in self.options)

    def size_factor(self, options: Mapping[str, Any]) -> int:
        """The input size must be a multiple of this (one halving per encoder level)."""
        if self.pretrained:
            return 32
        return 2 ** int(options.get("depth", self.option("depth").default))


_FILTERS = Option("base_filters", 32, 4, 256, help="filters of the first level; doubles per level")
_DEPTH = Option("depth", 4, 2, 6, help="encoder levels (halvings)")

_PRETRAINED = (
    Option("encoder", DEFAULT_ENCODER, choices=tuple(ENCODERS), help="Keras Applications backbone"),
    Option(
        "encoder_weights",
        None,
        choices=(None, "imagenet"),
        help="imagenet: downloaded once into the workspace, or imported with `cocoseg weights import`",
        architectural=False,
    ),
    Option(
        "fallback_to_random",
        False,
        choices=(False, True),
        help="random encoder when the weights cannot be loaded",
        architectural=False,
    ),
)

CATALOG: dict[str, ArchitectureInfo] = {
    info.name: info
    for info in (
        ArchitectureInfo("unet", "UNet (Ronneberger et al. 2015)", (_FILTERS, _DEPTH)),
        ArchitectureInfo(
            "attention_unet", "UNet with additive attention gates (Oktay et al. 2018)", (_FILTERS, _DEPTH)
        ),
        ArchitectureInfo("residual_unet", "UNet with residual blocks", (_FILTERS, _DEPTH)),
        ArchitectureInfo(
            "transunet",
            "CNN encoder + ViT bottleneck + UNet decoder (Chen et al. 2021)",
            (
                _FILTERS,
                _DEPTH,
                Option("layers_count", 4, 1, 12, help="transformer layers"),
                Option("heads", 4, 1, 16, help="attention heads"),
                Option("dim", 128, 16, 1024, help="token width (multiple of heads)"),
            ),
        ),
        ArchitectureInfo(
            "pretrained_unet", "UNet decoder on a pretrained encoder (MobileNetV2 and others)", _PRETRAINED
        ),
        ArchitectureInfo(
            "deeplabv3_plus",
            "DeepLabV3+ (Chen et al. 2018): atrous pyramid and a 1/4 skip on a pretrained encoder",
            (*_PRETRAINED, Option("aspp_filters", 128, 16, 512, help="filters of the pyramid and decoder")),
        ),
    )
}


def architecture_info(name: str) -> ArchitectureInfo:
    try:
        return CATALOG[name]
    except KeyError:
        raise ConfigError("model", f"unknown architecture {name!r}; known: {', '.join(CATALOG)}") from None


def check_model_settings(name: str, options: Mapping[str, Any], size: int | None = None) -> None:
    """Raise ``ConfigError(field, why)`` for settings the builder would refuse or that make no sense.

    ``field`` is ``model``, ``model_options``, an option name, or ``size``.
    """
    info = architecture_info(name)
    known = {option.name for option in info.options}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            "model_options",
            f"{name} does not take {', '.join(unknown)}; it takes {', '.join(sorted(known)) or 'none'}",
        )
    for option in info.options:
        if option.name not in options:
            continue
        value = options[option.name]
        if option.choices is not None:
            if value not in option.choices:
                raise ConfigError(
                    option.name, f"must be one of {', '.join(map(str, option.choices))}, got {value!r}"
                )
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(option.name, f"must be a whole number, got {value!r}")
        if (option.minimum is not None and value < option.minimum) or (
            option.maximum is not None and value > option.maximum
        ):
            raise ConfigError(
                option.name, f"must be between {option.minimum} and {option.maximum}, got {value}"
            )
    if name == "transunet":
        merged = {**info.defaults(), **options}
        if merged["dim"] % merged["heads"]:
            raise ConfigError("dim", f"{merged['dim']} must be divisible by heads={merged['heads']}")
    if size is not None:
        factor = info.size_factor(options)
        if size % factor:
            raise ConfigError(
                "size",
                f"{size} px is not a multiple of {factor}, which {name} needs "
                f"(nearest: {max(factor, size // factor * factor)} or {(size // factor + 1) * factor}); "
                "prepare at another size",
            )
