"""What a preparation would write, decided before any pixel is decoded: the plan and the dry run.

No TensorFlow: the Prepare page shows the dry run while the user fills the form.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from cocoseg.errors import ConfigError
from cocoseg.pipeline.core.cache import file_sha256
from cocoseg.pipeline.core.workspace import Workspace, check_name
from cocoseg.pipeline.data.coco import CocoDataset
from cocoseg.pipeline.data.labels import LabelMap, LabelMapError, build_label_map, default_label_map
from cocoseg.pipeline.data.masks import kept_area
from cocoseg.pipeline.data.registry import cached_split, get_dataset, is_unlabelled
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.examples import ExampleTask
from cocoseg.pipeline.prepare.sampling import SamplingConfig, sampling_summary

FORMAT_VERSION = 1


@dataclasses.dataclass
class SplitPlan:
    name: str
    dataset: CocoDataset
    tasks: list[ExampleTask]
    annotations_sha256: str


@dataclasses.dataclass
class Plan:
    """Everything decided before any work: label map, tasks per split, the set's folder."""

    config: PrepareConfig
    label_map: LabelMap
    splits: list[SplitPlan]
    set_id: str
    folder: Path


def _label_map(config: PrepareConfig, categories: list[dict]) -> LabelMap:
    try:
        if config.labels is None:
            return default_label_map(categories)
        return build_label_map(config.labels, categories, config.classes)
    except LabelMapError as error:
        raise ConfigError("classes" if config.labels == "custom" else "labels", str(error)) from None


def _area_filter(config: PrepareConfig, label_map: LabelMap, split: str) -> float:
    if not split.startswith("train"):
        return 0.0
    return label_map.min_train_area if config.min_labelled_area is None else config.min_labelled_area


def plan(workspace: Workspace, config: PrepareConfig, max_bytes: int) -> Plan:
    """Load and validate the sources, build the label map and one task per valid image.

    Raises:
        ConfigError: unknown split, an unlabelled split (its masks would be all background,
            teaching the model that nothing is ever there), label preset or class name
            (before any work).
        RegistryError / CocoFileError: unknown dataset or unreadable annotations.
    """
    entry = get_dataset(workspace, config.dataset)
    for split in config.splits:
        if split not in entry.splits:
            raise ConfigError(
                "splits", f"dataset {entry.name!r} has no split {split!r}; it has {', '.join(entry.splits)}"
            )
    loaded = [
        (split, cached_split(workspace, entry.name, split, max_bytes)) for split in config.splits
    ]  # forms re-plan often
    for split, dataset in loaded:
        if is_unlabelled(dataset):
            raise ConfigError(
                "splits",
                f"{entry.name}/{split} is unlabelled (images without annotations): nothing to train on; "
                "label its images on Annotate and register the corrections as a dataset",
            )
    label_map = _label_map(config, loaded[0][1].categories)
    splits = []
    for split, dataset in loaded:
        minimum = _area_filter(config, label_map, split)
        tasks = [
            ExampleTask(
                image,
                dataset.annotations_by_image[image["id"]],
                dataset.image_path(image),
                label_map,
                config.size,
                config.resize,
                config.encoding,
                config.quality,
                minimum,
            )
            for image in dataset.images
        ]
        splits.append(
            SplitPlan(split, dataset, tasks, file_sha256(workspace, entry.split(split).annotations))
        )
    identity = json.dumps(
        {
            "format": FORMAT_VERSION,
            "config": config.output_fields(),
            "sources": {item.name: item.annotations_sha256 for item in splits},
        },
        sort_keys=True,
    )
    set_id = hashlib.sha256(identity.encode()).hexdigest()[:12]
    name = f"{config.dataset}-{label_map.name}-{config.size}-{set_id}"
    folder = workspace.prepared_dir / check_name(name, "prepared set", derived=True)  # find_prepared's rule
    return Plan(config, label_map, splits, set_id, folder)


def dry_run(workspace: Workspace, config: PrepareConfig, max_bytes: int) -> dict:
    """What ``prepare`` would write, without decoding a pixel.

    Per split: images kept and filtered, classes per image from the annotations, and
    pixels estimated from annotation ``area`` (the real counts are in the manifest
    after writing); for training splits the class distribution before/after sampling.
    """
    plan_ = plan(workspace, config, max_bytes)
    label_map = plan_.label_map
    result = {
        "folder": str(plan_.folder),
        "exists": (plan_.folder / "manifest.json").is_file(),
        "label_map": label_map.to_dict(),
        "splits": {},
    }
    for split in plan_.splits:
        kept = [
            task
            for task in split.tasks
            if not (
                task.min_labelled_area > 0
                and kept_area(task.annotations, label_map) <= task.min_labelled_area
            )
        ]
        image_classes, image_pixels = [], np.zeros((len(kept), label_map.num_classes))
        for row, task in enumerate(kept):
            present = set()
            for annotation in task.annotations:
                class_index = label_map.class_of(annotation["category_id"])
                if class_index:
                    present.add(class_index)
                    image_pixels[row, class_index] += annotation.get("area", 0.0)
            image_classes.append(tuple(sorted(present)))
        summary = {
            "images": len(kept),
            "filtered_by_area": len(split.tasks) - len(kept),
            "left_out_by_validation": split.dataset.report.totals.get("images", 0)
            - len(split.dataset.images),
        }
        summary["distribution"] = sampling_summary(
            image_classes,
            image_pixels,
            label_map.num_classes,
            config.sampling if split.name.startswith("train") else SamplingConfig(),
        )
        result["splits"][split.name] = summary
    return result
