"""A training form's raw values as a ``TrainConfig``, and its architecture checked against a prepared set.

A browser form sends what its fields hold (None for an empty number field, 2.5 where a whole number
belongs), so every value is checked here and a ``ConfigError`` names the field at fault before any run
folder exists. No TensorFlow: the web process imports this.
"""

from __future__ import annotations

import dataclasses

from cocoseg.errors import ConfigError
from cocoseg.models.catalog import CATALOG, check_model_settings
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.prepare.sets import find_prepared
from cocoseg.pipeline.training.config import AS_PREPARED, AugmentConfig, TrainConfig, augment_strengths


def whole_number(value, field: str) -> int:
    """``value`` as an int; a number field may send None or a fraction, which no config should see."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number.is_integer():
        raise ConfigError(field, "enter a whole number")
    return int(number)


RANDOM_WEIGHTS = "random"


def model_options(model: str | None, base_filters, depth, encoder=None, encoder_weights=None) -> dict:
    """The options the form sets for an architecture (the others keep their defaults).

    The form's "random" encoder weights is the builder's None.
    """
    info = CATALOG.get(model)
    if info is None:
        return {}
    names = {option.name for option in info.options}
    chosen = {
        "base_filters": base_filters,
        "depth": depth,
        "encoder": encoder,
        "encoder_weights": None if encoder_weights == RANDOM_WEIGHTS else encoder_weights,
    }
    return {name: value for name, value in chosen.items() if name in names and value is not None}


def config_from_form(
    prepared,
    model,
    base_filters,
    depth,
    epochs,
    batch_size,
    learning_rate,
    seed,
    optimizer,
    schedule,
    loss,
    sampling,
    threshold,
    augment,
    init_from=None,
    freeze_encoder_epochs=0,
    encoder=None,
    encoder_weights=None,
    precision="auto",
    augmentation=None,
) -> TrainConfig:
    """The form's values as a config; raises ``ConfigError`` naming the first field at fault.

    Sampling ``AS_PREPARED`` and an empty threshold leave both to the prepared set; an empty
    "Start from" trains from new weights. Precision ``auto`` is resolved by the job, on its device.
    ``augmentation`` holds the strengths Prepare's "Use for training" stored (none: the defaults).
    """
    if learning_rate is None:
        raise ConfigError("learning_rate", "enter a positive number such as 0.001")
    if threshold is not None and not isinstance(threshold, (int, float)):
        raise ConfigError("threshold", "enter a number in (0, 1], or leave it empty for the prepared set's")
    return TrainConfig(
        prepared or "",
        model=model or "",
        model_options=model_options(model, base_filters, depth, encoder, encoder_weights),
        epochs=whole_number(epochs, "epochs"),
        batch_size=whole_number(batch_size, "batch_size"),
        learning_rate=float(learning_rate),
        optimizer=optimizer,
        schedule=schedule,
        loss=loss,
        sampling=None if sampling in (None, "", AS_PREPARED) else sampling,
        threshold=None if threshold is None else float(threshold),
        augment=bool(augment),
        augmentation=augmentation or {},  # a forged Store is refused by the config's check
        seed=whole_number(seed, "seed"),
        init_from=init_from or None,
        freeze_encoder_epochs=whole_number(freeze_encoder_epochs or 0, "freeze_encoder_epochs"),
        precision=precision or "auto",
    )


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """An architecture and its options checked against a prepared set, before anything is queued.

    Attributes:
        description: the architecture's one-line description.
        options: the options the form sets (``model_options``).
        takes_depth: the architecture has encoder levels (``depth``, and with it ``base_filters``).
        pretrained: it is built on a Keras Applications encoder (``encoder``, ``encoder_weights``).
        size, classes: the prepared set's input size and class count (None when it was not readable).
        problem: why this choice cannot train on the set ("" when it can).
    """

    model: str
    description: str
    options: dict
    takes_depth: bool
    pretrained: bool = False
    size: int | None = None
    classes: int | None = None
    problem: str = ""

    def summary_request(self) -> dict | None:
        """What a model-summary job needs (parameters and FLOPs), or None for a choice that cannot train."""
        if self.problem:
            return None
        # the network's shape only: how the encoder starts changes neither count, and needs no download
        options = CATALOG[self.model].architecture(self.options)
        return {"model": self.model, "options": options, "size": self.size, "classes": self.classes}


def check_model_choice(
    workspace: Workspace,
    model: str | None,
    base_filters,
    depth,
    prepared: str | None,
    encoder=None,
    encoder_weights=None,
) -> ModelChoice | None:
    """The form's architecture against the prepared set's size; None until both are chosen."""
    info = CATALOG.get(model)
    if info is None or not prepared:
        return None
    options = model_options(model, base_filters, depth, encoder, encoder_weights)
    choice = ModelChoice(
        info.name,
        info.description,
        options,
        "depth" in {option.name for option in info.options},
        info.pretrained,
    )
    try:
        manifest = find_prepared(workspace, prepared).manifest
        size, classes = manifest["config"]["size"], len(manifest["label_map"]["classes"])
        check_model_settings(info.name, options, size)
    except ValueError as error:
        return dataclasses.replace(choice, problem=str(error))
    return dataclasses.replace(choice, size=size, classes=classes)


def augment_config(request: dict) -> AugmentConfig:
    """The augmentation preview form's sliders as strengths, checked as any strengths are
    (``augment_strengths``: ``ConfigError`` names a bad one)."""
    low, high = request.get("scale") or (AugmentConfig().scale_min, AugmentConfig().scale_max)
    return augment_strengths(
        {
            "flip": bool(request.get("flip")),
            "scale_min": low,
            "scale_max": high,
            "rotation_degrees": request.get("rotation") or 0,
            "brightness": request.get("brightness") or 0,
            "contrast": request.get("contrast") or 0,
            "saturation": request.get("saturation") or 0,
        }
    )
