"""The correction loop in one action: plan a round of fine-tuning on the corrections saved so far.

A round takes every correction saved for a dataset, lays them over that dataset as a new,
versioned overlay dataset (``<dataset>-corrections-<n>``, kept to a dataset name's 64 characters;
a round re-run on unchanged corrections reuses the last one), prepares it with the parent model's
settings, fine-tunes from the parent (every layer copied, a third of its epochs at a tenth of its
learning rate), exports the child and evaluates parent and child on the source dataset's own val
split, so the two numbers are comparable. ``plan_round`` checks everything without TensorFlow (the
Annotate page and the CLI refuse before anything is written); ``correction_job`` runs it. Each
round is recorded in ``<workspace>/annotations/rounds/<dataset>/<n>.json``.
"""

from __future__ import annotations

import dataclasses
import math
import re

from cocoseg.errors import ConfigError
from cocoseg.pipeline.annotation.store import open_annotations, saved_images
from cocoseg.pipeline.core.workspace import NAME_LENGTH, Workspace, atomic_write_json, read_json
from cocoseg.pipeline.data.registry import RegistryError, get_dataset, list_datasets
from cocoseg.pipeline.inference.model_store import ModelError, get_entry
from cocoseg.pipeline.training.config import TrainConfig
from cocoseg.pipeline.training.lineage import find_parent

EVALUATION_SPLIT = "val"
# A tenth of the parent's rate: Adam restarts with empty moments, so its first steps move every
# weight by about the rate. Measured (BENCHMARKS.md, transfer): at half the rate the child lost 4.6
# points of val mIoU in its first epoch and passed its parent only in epoch 4 of 8; at a tenth it
# passed it after one and peaked as high; at a fiftieth it learnt the corrections more slowly.
LEARNING_RATE_FACTOR = 0.1
OVERLAY_SUFFIX = re.compile(r"-corrections-\d+$")


@dataclasses.dataclass(frozen=True)
class CorrectionRound:
    """One round of the loop, as planned.

    Attributes:
        number: the round (1 for the first fine-tuning on ``dataset``'s corrections).
        parent: the exported model the child starts from (the one Annotate pre-filled with).
        dataset: the dataset the corrections were drawn on; parent and child are evaluated
            on its ``val`` split.
        corrections: how many corrected images the round uses (all saved so far).
        version: the saved corrections' version token (a re-run on the same token reuses the overlay).
        overlay: the overlay dataset's name; ``reuse`` when it is registered already.
        prepare: the preparation settings (the parent's, on the overlay).
        train: the fine-tuning settings (``prepared`` filled in once the overlay is prepared).
    """

    number: int
    parent: str
    dataset: str
    corrections: int
    version: str
    overlay: str
    reuse: bool
    prepare: dict
    train: dict

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, payload: dict) -> CorrectionRound:
        return cls(**{field.name: payload[field.name] for field in dataclasses.fields(cls)})


def rounds_dir(workspace: Workspace, dataset: str):
    return workspace.annotations_dir / "rounds" / dataset


def past_rounds(workspace: Workspace, dataset: str) -> list[dict]:
    """The recorded rounds on ``dataset``'s corrections, oldest first."""
    folder = rounds_dir(workspace, dataset)
    records = [read_json(path, {}) for path in folder.glob("*.json")] if folder.is_dir() else []
    return sorted(
        (record for record in records if isinstance(record.get("number"), int)),
        key=lambda record: record["number"],
    )


def record_round(workspace: Workspace, round_: CorrectionRound, outcome: dict) -> None:
    atomic_write_json(
        rounds_dir(workspace, round_.dataset) / f"{round_.number}.json", {**round_.to_dict(), **outcome}
    )


def _overlay_name(workspace: Workspace, dataset: str, version: str) -> tuple[int, str, bool]:
    """The round number and overlay: the last overlay for unchanged corrections, else the next free name."""
    registered = {entry.name for entry in list_datasets(workspace)}
    rounds = past_rounds(workspace, dataset)
    if rounds and rounds[-1].get("version") == version and rounds[-1].get("overlay") in registered:
        return rounds[-1]["number"] + 1, rounds[-1]["overlay"], True
    number = (rounds[-1]["number"] + 1) if rounds else 1
    version_number = number
    base = OVERLAY_SUFFIX.sub("", dataset)  # an overlay's overlay is a new version, not a longer name
    while (overlay := _versioned(base, version_number)) in registered:  # never clash with a name in use
        version_number += 1
    return number, overlay, False


def _versioned(base: str, version: int) -> str:
    """``<base>-corrections-<version>``, ``base`` cut to fit: the overlay is a dataset that every
    page and command takes, so it keeps to the 64 characters of a name a user gives."""
    suffix = f"-corrections-{version}"
    return base[: NAME_LENGTH - len(suffix)] + suffix


def plan_round(workspace: Workspace, model: str, dataset: str, epochs: int | None = None) -> CorrectionRound:
    """Check that a round can run and say what it will do; nothing is written.

    Raises:
        ConfigError: ``corrections`` (none saved), ``dataset`` (not registered, no val split),
            ``model`` (not an exported model, its run or prepared set deleted) or ``epochs``.
    """
    if not model:
        raise ConfigError("model", "choose the model to fine-tune (the one that pre-filled the corrections)")
    try:
        get_entry(workspace, model)
    except ModelError as error:
        raise ConfigError("model", str(error)) from None
    try:
        source = get_dataset(workspace, dataset)
    except RegistryError:
        raise ConfigError(
            "dataset",
            f"corrections of {dataset!r} cannot be laid over a registered dataset; "
            "register them with `cocoseg annotations register` and train on that instead",
        ) from None
    if EVALUATION_SPLIT not in source.splits:
        raise ConfigError(
            "dataset", f"{dataset} has no {EVALUATION_SPLIT} split to compare parent and child on"
        )
    saved = saved_images(workspace, dataset)
    if not saved:
        raise ConfigError(
            "corrections",
            f"no saved corrections of {dataset} yet: correct an image on Annotate and save it first",
        )
    try:
        parent = find_parent(workspace, model)
    except ConfigError as error:
        raise ConfigError("model", error.message) from None
    config = parent.run.config()
    manifest = read_json(workspace.prepared_dir / str(config.get("prepared_folder", "")) / "manifest.json")
    if not manifest:
        raise ConfigError(
            "model",
            f"{model}'s prepared set {config.get('prepared_folder')} was deleted; "
            "a round prepares the corrections with its settings",
        )
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ConfigError("epochs", f"must be a whole number of at least 1, got {epochs!r}")
    _data, version = open_annotations(workspace, dataset)
    number, overlay, reuse = _overlay_name(workspace, dataset, version)
    parent_config = TrainConfig.from_dict(config)
    train = dataclasses.replace(
        parent_config,
        prepared="",
        epochs=epochs or max(1, math.ceil(parent_config.epochs / 3)),
        learning_rate=parent_config.learning_rate * LEARNING_RATE_FACTOR,
        init_from=parent.name,
        freeze_encoder_epochs=0,
        sampling=None,
        threshold=None,
        # what the parent asked for (auto is resolved again on the round's device), not what it got
        precision=config.get("precision_requested") or parent_config.precision,
    )
    prepare = {**manifest["config"], "dataset": overlay, "workers": 0}
    return CorrectionRound(
        number, model, dataset, len(saved), version, overlay, reuse, prepare, train.to_dict()
    )
