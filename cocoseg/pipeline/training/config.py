"""Training settings, validated on construction, in a module that never imports TensorFlow.

The web process builds these to check a form; the job process trains with them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from cocoseg.errors import ConfigError
from cocoseg.models.catalog import check_model_settings
from cocoseg.pipeline.prepare.sampling import SAMPLING_METHODS
from cocoseg.pipeline.training.precision import PRECISIONS, from_legacy

# The Train form's sampling choice that keeps the prepared set's (the config's ``None``).
AS_PREPARED = "prepared"


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (0 disables one).

    Attributes:
        flip: horizontal flip with probability 0.5.
        scale_min, scale_max: random zoom range before cropping/padding back to size.
        rotation_degrees: maximum absolute rotation.
        brightness: maximum brightness shift (fraction of the full range).
        contrast, saturation: maximum relative change (0.2 -> factor in [0.8, 1.2]).
    """

    flip: bool = True
    scale_min: float = 0.75
    scale_max: float = 1.5
    rotation_degrees: float = 10.0
    brightness: float = 0.15
    contrast: float = 0.2
    saturation: float = 0.2

    def __post_init__(self) -> None:
        if not 0.1 <= self.scale_min <= self.scale_max <= 4.0:
            raise ConfigError(
                "scale_min", f"need 0.1 <= min <= max <= 4, got {self.scale_min}, {self.scale_max}"
            )
        if not 0 <= self.rotation_degrees <= 45:
            raise ConfigError("rotation_degrees", f"must be 0-45, got {self.rotation_degrees}")
        for field in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, field) < 1:
                raise ConfigError(field, f"must be in [0, 1), got {getattr(self, field)}")


def augment_strengths(changes: Mapping[str, Any]) -> AugmentConfig:
    """``AugmentConfig``'s defaults with ``changes`` (its field names); a strength that is unknown,
    not a number or out of range raises ``ConfigError("augmentation", ...)`` naming it."""
    if not isinstance(changes, Mapping):
        raise ConfigError("augmentation", f"must be NAME: VALUE pairs, got {changes!r}")
    known = [field.name for field in dataclasses.fields(AugmentConfig)]
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise ConfigError("augmentation", f"unknown strength {unknown[0]!r}; known: {', '.join(known)}")
    numbers = [name for name, value in changes.items() if name != "flip" and not _is_number(value)]
    if numbers:
        raise ConfigError("augmentation", f"{numbers[0]} must be a number, got {changes[numbers[0]]!r}")
    if not isinstance(changes.get("flip", True), bool):
        raise ConfigError("augmentation", f"flip must be true or false, got {changes['flip']!r}")
    try:
        return AugmentConfig(**changes)
    except ConfigError as error:
        raise ConfigError("augmentation", f"{error.field}: {error.message}") from None


def describe_strengths(strengths: AugmentConfig) -> str:
    """The strengths in a line (``flip · scale 0.75-1.5 · rotation ±10° · ...``); ``none`` when every
    one is off."""
    parts = ["flip"] if strengths.flip else []
    if (strengths.scale_min, strengths.scale_max) != (1.0, 1.0):
        parts.append(f"scale {strengths.scale_min:g}–{strengths.scale_max:g}")
    if strengths.rotation_degrees:
        parts.append(f"rotation ±{strengths.rotation_degrees:g}°")
    for name in ("brightness", "contrast", "saturation"):
        if getattr(strengths, name):
            parts.append(f"{name} ±{getattr(strengths, name):g}")
    return " · ".join(parts) or "none"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


NO_AUGMENTATION = AugmentConfig(
    flip=False,
    scale_min=1.0,
    scale_max=1.0,
    rotation_degrees=0.0,
    brightness=0.0,
    contrast=0.0,
    saturation=0.0,
)


OPTIMIZERS = ("adam", "adamw", "sgd")


SCHEDULES = ("constant", "cosine", "poly")


LOSS_NAMES = ("cross_entropy", "dice", "focal", "cross_entropy_dice")


MAX_EPOCHS = 1000


MAX_BATCH_SIZE = 1024


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What to train and how (validated on construction).

    Attributes:
        prepared: name of a prepared set (``cocoseg prepare list``).
        model: registered architecture; ``model_options`` its keyword options.
        epochs, batch_size, learning_rate: the usual.
        optimizer: ``adam``, ``adamw`` or ``sgd`` (momentum 0.9).
        schedule: ``constant``, ``cosine`` or ``poly`` (power 0.9) decay over all steps.
        loss: ``cross_entropy``, ``dice``, ``focal`` or ``cross_entropy_dice``.
        sampling, threshold: class-balanced sampling of training reads; ``None`` takes the
            prepared set's (``resolved`` fills them in when the run is created, so a run's
            config always says what it used).
        augment: augment the training reads (off: every read is the prepared image as it is).
        augmentation: strengths that differ from ``AugmentConfig``'s defaults, by its field names
            (``{"rotation_degrees": 20}``), as the Prepare page's preview tunes them; ``augment``
            off ignores them.
        seed: seeds weights, data order, sampling and augmentation.
        precision: ``auto``, ``float32``, ``mixed_float16`` or ``mixed_bfloat16`` (``precision``
            module). The job resolves ``auto`` on its device and records the policy used, and why,
            in the run's config; the default here stays float32 so library callers and configs
            saved before precision existed keep float32 numerics (the CLI and the Train page
            default to ``auto``).
        init_from: a run or exported model to start from (its best checkpoint): every layer is
            copied, the classifier only when the label maps match. The run keeps the parent's
            architecture.
        freeze_encoder_epochs: keep the encoder's weights fixed for this many first epochs, so a
            new classifier (or a new decoder on ImageNet features) settles before the features move.
    """

    prepared: str
    model: str = "unet"
    model_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 20
    batch_size: int = 8
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    schedule: str = "cosine"
    loss: str = "cross_entropy"
    sampling: str | None = None
    threshold: float | None = None
    augment: bool = True
    augmentation: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 0
    precision: str = "float32"
    init_from: str | None = None
    freeze_encoder_epochs: int = 0

    def __post_init__(self) -> None:
        try:
            check_model_settings(self.model, dict(self.model_options))
        except ConfigError as error:
            if error.field in ("model", "model_options"):
                raise
            raise ConfigError("model_options", str(error)) from None
        if (
            isinstance(self.epochs, bool)
            or not isinstance(self.epochs, int)
            or not 1 <= self.epochs <= MAX_EPOCHS
        ):
            raise ConfigError("epochs", f"must be a whole number from 1 to {MAX_EPOCHS}, got {self.epochs!r}")
        if (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or not 1 <= self.batch_size <= MAX_BATCH_SIZE
        ):
            raise ConfigError(
                "batch_size", f"must be a whole number from 1 to {MAX_BATCH_SIZE}, got {self.batch_size!r}"
            )
        if not (
            isinstance(self.learning_rate, (int, float))
            and math.isfinite(self.learning_rate)
            and self.learning_rate > 0
        ):
            raise ConfigError("learning_rate", f"must be a positive number, got {self.learning_rate!r}")
        for field, allowed in (
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("loss", LOSS_NAMES),
        ):
            if getattr(self, field) not in allowed:
                raise ConfigError(field, f"must be one of {', '.join(allowed)}, got {getattr(self, field)!r}")
        if self.sampling is not None and self.sampling not in SAMPLING_METHODS:
            raise ConfigError(
                "sampling", f"must be one of {', '.join(SAMPLING_METHODS)} (or left to the prepared set's)"
            )
        if (
            isinstance(self.freeze_encoder_epochs, bool)
            or not isinstance(self.freeze_encoder_epochs, int)
            or not 0 <= self.freeze_encoder_epochs <= MAX_EPOCHS
        ):
            raise ConfigError(
                "freeze_encoder_epochs",
                f"must be a whole number from 0 to {MAX_EPOCHS}, got {self.freeze_encoder_epochs!r}",
            )
        pretrained_encoder = self.model_options.get("encoder_weights") == "imagenet"
        if self.freeze_encoder_epochs and not (self.init_from or pretrained_encoder):
            raise ConfigError(
                "freeze_encoder_epochs",
                "only a run that starts from a model (init_from) or from ImageNet encoder weights can freeze",
            )
        self.augment_config()  # a bad strength is refused with the run's other fields, not mid-epoch
        if self.precision not in PRECISIONS:
            raise ConfigError("precision", f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.threshold is not None and not (
            isinstance(self.threshold, (int, float))
            and not isinstance(self.threshold, bool)
            and 0 < self.threshold <= 1
        ):
            raise ConfigError("threshold", f"must be in (0, 1], got {self.threshold!r}")

    def resolved(self, prepared_sampling: Mapping[str, Any]) -> TrainConfig:
        """This config with the prepared set's sampling where it has none, and every augmentation
        strength written out (so the run's config says what it applied, whatever the defaults become).

        ``prepared_sampling`` is the set's ``manifest["config"]["sampling"]``.

        Preparation chose a sampling and recorded its epoch size; training uses that unless
        the run overrides it, so the steps per epoch, the schedule and the ETA match the reads.
        """
        return dataclasses.replace(
            self,
            augmentation=dataclasses.asdict(augment_strengths(self.augmentation)),  # all, not changes
            sampling=self.sampling or prepared_sampling.get("method", "none"),
            threshold=self.threshold
            if self.threshold is not None
            else prepared_sampling.get("threshold", 0.1),
        )

    def augment_config(self) -> AugmentConfig:
        """The strengths training applies (``NO_AUGMENTATION`` with ``augment`` off)."""
        strengths = augment_strengths(self.augmentation)
        return strengths if self.augment else NO_AUGMENTATION

    def to_dict(self) -> dict:
        return {
            **dataclasses.asdict(self),
            "model_options": dict(self.model_options),
            "augmentation": dict(self.augmentation),
        }

    @classmethod
    def from_dict(cls, payload: dict) -> TrainConfig:
        """A saved config; one from before ``precision`` (``mixed_precision: true/false``) still loads."""
        payload = from_legacy(payload)
        fields = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in payload.items() if key in fields})
