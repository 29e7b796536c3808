"""Preparation settings, validated on construction (no TensorFlow: the web form builds them)."""

from __future__ import annotations

import dataclasses
import os

from cocoseg.errors import ConfigError
from cocoseg.pipeline.core.workspace import UnsafePathError, check_name
from cocoseg.pipeline.data.geometry import RESIZE_MODES
from cocoseg.pipeline.data.labels import PRESETS
from cocoseg.pipeline.prepare.sampling import SamplingConfig

ENCODINGS = ("jpeg", "png")
AUTO_LABELS = "auto"  # a form's name for PrepareConfig(labels=None)


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """What to prepare and how. Validated on construction (``ConfigError`` names the field).

    Attributes:
        dataset: registered dataset name.
        splits: splits to write; a split whose name starts with ``train`` gets the
            labelled-area filter, the others keep every valid image.
        labels: label-map preset (None: coco80 for COCO categories, else all).
        classes: category names for ``labels="custom"``.
        size: side of the square examples (a multiple of 32, for UNet depths up to 5).
        resize: ``stretch``, ``letterbox`` (pad = 255 in masks) or ``shorter-crop``.
        encoding: image bytes as ``jpeg`` (with ``quality``) or lossless ``png``.
        min_labelled_area: training images whose kept annotations' ``area`` sums to no
            more than this are dropped; None uses the label map's rule (voc21: 1000).
        shards: shards per split.
        workers: worker processes (0: one per CPU core).
        sampling: class-balanced sampling recorded in the manifest and used by training
            reads; it does not change the written bytes.
    """

    dataset: str
    splits: tuple[str, ...] = ("train", "val")
    labels: str | None = None
    classes: tuple[str, ...] = ()
    size: int = 256
    resize: str = "stretch"
    encoding: str = "jpeg"
    quality: int = 90
    min_labelled_area: float | None = None
    shards: int = 4
    workers: int = 0
    sampling: SamplingConfig = SamplingConfig()

    def __post_init__(self) -> None:
        for field, names in (("dataset", [self.dataset]), ("splits", list(self.splits))):
            try:
                for name in names:
                    check_name(name, field)
            except UnsafePathError as error:
                raise ConfigError(field, str(error)) from None
        if not self.splits or len(set(self.splits)) != len(self.splits):
            raise ConfigError("splits", "give one or more distinct split names")
        if self.labels is not None and self.labels not in PRESETS:
            raise ConfigError(
                "labels", f"unknown label map preset {self.labels!r}; choose one of {', '.join(PRESETS)}"
            )
        if self.labels == "custom" and not self.classes:
            raise ConfigError("classes", "the custom label map needs category names")
        if self.classes and self.labels != "custom":
            raise ConfigError("classes", "category names are only used with labels='custom'")
        if not (isinstance(self.size, int) and 32 <= self.size <= 2048 and self.size % 32 == 0):
            raise ConfigError("size", f"must be a multiple of 32 between 32 and 2048, got {self.size!r}")
        if self.resize not in RESIZE_MODES:
            raise ConfigError("resize", f"must be one of {', '.join(RESIZE_MODES)}, got {self.resize!r}")
        if self.encoding not in ENCODINGS:
            raise ConfigError("encoding", f"must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        if not 1 <= self.quality <= 100:
            raise ConfigError("quality", f"JPEG quality must be 1-100, got {self.quality}")
        if self.min_labelled_area is not None and not self.min_labelled_area >= 0:
            raise ConfigError("min_labelled_area", f"must be >= 0, got {self.min_labelled_area}")
        if not 1 <= self.shards <= 1024:
            raise ConfigError("shards", f"must be 1-1024, got {self.shards}")
        if self.workers < 0:
            raise ConfigError("workers", f"must be >= 0 (0 = one per core), got {self.workers}")

    def output_fields(self) -> dict:
        """The settings that change the written bytes (the set's identity)."""
        fields = dataclasses.asdict(self)
        for runtime_only in ("workers", "sampling"):
            fields.pop(runtime_only)
        fields["splits"] = list(self.splits)
        fields["classes"] = list(self.classes)
        return fields

    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


def config_to_dict(config: PrepareConfig) -> dict:
    payload = dataclasses.asdict(config)
    payload["splits"], payload["classes"] = list(config.splits), list(config.classes)
    return payload


def config_from_dict(payload: dict) -> PrepareConfig:
    fields = {field.name for field in dataclasses.fields(PrepareConfig)}
    values = {key: value for key, value in payload.items() if key in fields}
    values["splits"] = tuple(values.get("splits", ("train", "val")))
    values["classes"] = tuple(values.get("classes", ()))
    values["sampling"] = SamplingConfig(**values.get("sampling", {}))
    return PrepareConfig(**values)


def training_split(splits) -> str | None:
    """The split a dry-run chart and an augmentation preview show: the first training one, else the first."""
    chosen = list(splits or [])
    return next((split for split in chosen if split.startswith("train")), chosen[0] if chosen else None)


def config_from_form(dataset, splits, labels, classes, size, resize, sampling, threshold) -> PrepareConfig:
    """The validated config for a form's loose values.

    A form gives numbers as floats or None, the custom class names as one comma-separated
    string, and ``AUTO_LABELS`` for the default label map; the threshold only counts for
    repeat-factor sampling and the class names only for the custom label map.

    Raises:
        ConfigError: ``field`` names the form field at fault.
    """
    if not dataset:
        raise ConfigError("dataset", "choose a dataset")
    if not isinstance(size, (int, float)) or isinstance(size, bool) or float(size) != int(size):
        raise ConfigError("size", "enter a whole number of pixels, a multiple of 32 such as 256")
    names = (
        tuple(name.strip() for name in (classes or "").split(",") if name.strip())
        if labels == "custom"
        else ()
    )
    return PrepareConfig(
        dataset=dataset,
        splits=tuple(splits or ()),
        labels=None if labels in (None, AUTO_LABELS) else labels,
        classes=names,
        size=int(size),
        resize=resize or "stretch",
        sampling=_sampling_from_form(sampling or "none", threshold),
    )


def _sampling_from_form(method: str, threshold) -> SamplingConfig:
    if method != "none" and not isinstance(threshold, (int, float)):
        raise ConfigError("threshold", "enter a number in (0, 1], such as 0.1")
    return SamplingConfig(method, float(threshold) if method != "none" else SamplingConfig().threshold)
