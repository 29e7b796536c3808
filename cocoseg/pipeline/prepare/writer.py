"""Data preparation: a registered COCO dataset -> sharded TFRecords + manifest.json.

A prepared set is identified by its config (everything that changes the bytes) and
the SHA-256 of its source annotation files: preparing again with the same inputs is a
no-op, anything else writes a new set. Work happens in a hidden ``.partial-*`` folder
that is renamed into place only after every shard and the manifest are written, so an
interrupted run (Ctrl-C, killed worker, full disk) never leaves something that looks
finished, and a previous set is never touched.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import numpy as np

from cocoseg.pipeline.core.cache import file_sha256
from cocoseg.pipeline.data.coco import CocoDataset
from cocoseg.pipeline.prepare.examples import ExampleResult, ExampleTask, build_example, to_tf_example
from cocoseg.pipeline.data.registry import cached_split, get_dataset
from cocoseg.pipeline.data.geometry import RESIZE_MODES
from cocoseg.pipeline.data.labels import IGNORE_INDEX, PRESETS, LabelMap, LabelMapError, build_label_map, default_label_map, label_map_from_dict
from cocoseg.pipeline.data.masks import kept_area
from cocoseg.pipeline.prepare.sampling import SamplingConfig, sampling_summary
from cocoseg.pipeline.prepare.tfrecord import ShardedWriter
from cocoseg.pipeline.core.workspace import UnsafePathError, Workspace, atomic_write_json, check_name, read_json

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
ENCODINGS = ("jpeg", "png")
SKIPPED_EXAMPLES_KEPT = 50
ProgressCallback = Callable[[int, int], None]
StopCallback = Callable[[], bool]


class PrepareError(ValueError):
    """Preparation cannot start or did not finish; the message says what to do."""


class PrepareCancelled(PrepareError):
    """``should_stop`` asked preparation to stop; nothing was published."""


class ConfigError(PrepareError):
    """An invalid preparation setting; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


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
            raise ConfigError("labels", f"unknown label map preset {self.labels!r}; choose one of {', '.join(PRESETS)}")
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
        ConfigError: unknown split, label preset or class name (before any work).
        RegistryError / CocoFileError: unknown dataset or unreadable annotations.
    """
    entry = get_dataset(workspace, config.dataset)
    for split in config.splits:
        if split not in entry.splits:
            raise ConfigError("splits", f"dataset {entry.name!r} has no split {split!r}; it has {', '.join(entry.splits)}")
    loaded = [(split, cached_split(workspace, entry.name, split, max_bytes)) for split in config.splits]  # forms re-plan often
    label_map = _label_map(config, loaded[0][1].categories)
    splits = []
    for split, dataset in loaded:
        minimum = _area_filter(config, label_map, split)
        tasks = [
            ExampleTask(image, dataset.annotations_by_image[image["id"]], dataset.image_path(image), label_map,
                        config.size, config.resize, config.encoding, config.quality, minimum)
            for image in dataset.images
        ]
        splits.append(SplitPlan(split, dataset, tasks, file_sha256(workspace, entry.split(split).annotations)))
    identity = json.dumps({"format": FORMAT_VERSION, "config": config.output_fields(),
                           "sources": {item.name: item.annotations_sha256 for item in splits}}, sort_keys=True)
    set_id = hashlib.sha256(identity.encode()).hexdigest()[:12]
    folder = workspace.prepared_dir / f"{config.dataset}-{label_map.name}-{config.size}-{set_id}"
    return Plan(config, label_map, splits, set_id, folder)


@dataclasses.dataclass
class _SplitTally:
    """What a split's written examples contain, kept compact: 118k images must fit easily."""

    num_classes: int
    capacity: int
    classes: list[tuple[int, ...]] = dataclasses.field(default_factory=list)
    skipped: list[ExampleResult] = dataclasses.field(default_factory=list)
    ignored: int = 0

    def __post_init__(self) -> None:
        self.pixels = np.zeros((self.capacity, self.num_classes), dtype=np.int64)

    def add(self, result: ExampleResult) -> None:
        counts = np.asarray(result.pixel_counts, dtype=np.int64)
        self.pixels[len(self.classes)] = counts[: self.num_classes]
        self.ignored += int(counts[IGNORE_INDEX])
        self.classes.append(result.classes)

    def written_pixels(self) -> np.ndarray:
        return self.pixels[: len(self.classes)]


def _split_summary(plan_: Plan, split: SplitPlan, tally: _SplitTally, shards: list[Path]) -> dict:
    num_classes = plan_.label_map.num_classes
    pixels = tally.written_pixels()
    class_images = np.zeros(num_classes, dtype=np.int64)
    for present in tally.classes:
        class_images[list(present)] += 1
    reasons: dict[str, int] = {}
    for result in tally.skipped:
        reasons[result.skipped] = reasons.get(result.skipped, 0) + 1
    summary = {
        "examples": len(tally.classes),
        "shards": [path.name for path in shards],
        "source_images": split.dataset.report.totals.get("images", len(split.tasks)),
        "left_out_by_validation": split.dataset.report.totals.get("images", 0) - len(split.dataset.images),
        "validation": {"errors": split.dataset.report.errors, "warnings": split.dataset.report.warnings,
                       "checks": {code: count for code, count in split.dataset.report.counts.items()}},
        "skipped": reasons,
        "skipped_examples": [{"file_name": r.file_name, "reason": r.skipped, "detail": r.detail} for r in tally.skipped[:SKIPPED_EXAMPLES_KEPT]],
        "class_images": class_images.tolist(),
        "class_pixels": pixels.sum(axis=0).tolist(),
        "ignore_pixels": tally.ignored,
        "min_labelled_area": split.tasks[0].min_labelled_area if split.tasks else 0.0,
    }
    if split.name.startswith("train"):
        summary["sampling"] = sampling_summary(tally.classes, pixels, num_classes, plan_.config.sampling)
    return summary


def write_split(pool, plan_: Plan, split: SplitPlan, folder: Path, progress: ProgressCallback | None, done: int, total: int,
                should_stop: StopCallback | None = None) -> dict:
    """Build every task of a split (in ``pool``, or here when it is None), write its shards
    into ``folder`` and return the split's manifest section.

    Raises:
        PrepareCancelled: ``should_stop`` returned True (checked after every image).
    """
    tally = _SplitTally(plan_.label_map.num_classes, len(split.tasks))
    with ShardedWriter(folder, split.name, plan_.config.shards) as writer:
        results = pool.map(build_example, split.tasks, chunksize=4) if pool else map(build_example, split.tasks)
        for task, result in zip(split.tasks, results):
            if result.skipped:
                tally.skipped.append(result)
            else:
                writer.write(to_tf_example(result, plan_.config.encoding, task.image["height"], task.image["width"]))
                tally.add(result)
            done += 1
            if progress:
                progress(done, total)
            if should_stop and should_stop():
                raise PrepareCancelled(f"cancelled after {done} of {total} images; nothing was published")
    return _split_summary(plan_, split, tally, writer.paths)


def _manifest(plan_: Plan, workspace: Workspace, splits: dict, seconds: float) -> dict:
    entry = get_dataset(workspace, plan_.config.dataset)
    return {
        "format": FORMAT_VERSION,
        "set_id": plan_.set_id,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": {**plan_.config.output_fields(), "workers": plan_.config.worker_count(),
                   "sampling": dataclasses.asdict(plan_.config.sampling)},
        "label_map": plan_.label_map.to_dict(),
        "sources": {item.name: {"annotations": str(entry.split(item.name).annotations), "images": str(entry.split(item.name).images),
                                "sha256": item.annotations_sha256} for item in plan_.splits},
        "splits": splits,
        "seconds": round(seconds, 2),
    }


def _exit_with_parent(parent: int) -> None:
    """Pool initializer: end this worker when the preparing process is gone (SIGKILL, OOM killer).

    A killed parent never shuts its pool down; without this its workers wait on the call
    queue for ever.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _remove_stale_partials(workspace: Workspace, set_id: str) -> None:
    for stale in workspace.prepared_dir.glob(f".partial-{set_id}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def prepare(workspace: Workspace, config: PrepareConfig, max_bytes: int, progress: ProgressCallback | None = None,
            should_stop: StopCallback | None = None) -> "PreparedSet":
    """Write the prepared set for ``config`` (or find it already written).

    Raises:
        PrepareCancelled: ``should_stop`` said so; the partial folder is removed.
        ConfigError: invalid settings, before any work.
        PrepareError: a worker died or writing failed; nothing was published and any
            earlier set is untouched.
    """
    plan_ = plan(workspace, config, max_bytes)
    workspace.prepared_dir.mkdir(parents=True, exist_ok=True)
    with workspace.lock(f"prepare-{plan_.set_id}"):
        if (plan_.folder / "manifest.json").is_file():
            logger.info("prepared set %s already exists; nothing to do", plan_.folder.name)
            return PreparedSet(plan_.folder, reused=True)
        _remove_stale_partials(workspace, plan_.set_id)
        partial = workspace.prepared_dir / f".partial-{plan_.set_id}-{uuid.uuid4().hex[:8]}"
        partial.mkdir()
        started = time.perf_counter()
        total = sum(len(split.tasks) for split in plan_.splits)
        workers = config.worker_count()
        pool = (ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_exit_with_parent, initargs=(os.getpid(),))
                if workers > 1 else None)
        try:
            splits = {}
            done = 0
            for split in plan_.splits:
                splits[split.name] = write_split(pool, plan_, split, partial, progress, done, total, should_stop)
                done += len(split.tasks)
            atomic_write_json(partial / "manifest.json", _manifest(plan_, workspace, splits, time.perf_counter() - started))
            os.replace(partial, plan_.folder)
        except BrokenProcessPool:
            shutil.rmtree(partial, ignore_errors=True)
            raise PrepareError("a worker process died (killed or out of memory); nothing was published, earlier sets are intact") from None
        except OSError as error:
            shutil.rmtree(partial, ignore_errors=True)
            raise PrepareError(f"writing the prepared set failed ({error.strerror or error}); nothing was published, earlier sets are intact") from None
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        finally:
            if pool is not None:  # Ctrl-C must not wait for every queued image
                pool.shutdown(wait=True, cancel_futures=True)
    logger.info("prepared %s in %.1f s", plan_.folder.name, time.perf_counter() - started)
    return PreparedSet(plan_.folder)


def dry_run(workspace: Workspace, config: PrepareConfig, max_bytes: int) -> dict:
    """What ``prepare`` would write, without decoding a pixel.

    Per split: images kept and filtered, classes per image from the annotations, and
    pixels estimated from annotation ``area`` (the real counts are in the manifest
    after writing); for training splits the class distribution before/after sampling.
    """
    plan_ = plan(workspace, config, max_bytes)
    label_map = plan_.label_map
    result = {"folder": str(plan_.folder), "exists": (plan_.folder / "manifest.json").is_file(),
              "label_map": label_map.to_dict(), "splits": {}}
    for split in plan_.splits:
        kept = [task for task in split.tasks if not (task.min_labelled_area > 0 and kept_area(task.annotations, label_map) <= task.min_labelled_area)]
        image_classes, image_pixels = [], np.zeros((len(kept), label_map.num_classes))
        for row, task in enumerate(kept):
            present = set()
            for annotation in task.annotations:
                class_index = label_map.class_of(annotation["category_id"])
                if class_index:
                    present.add(class_index)
                    image_pixels[row, class_index] += annotation.get("area", 0.0)
            image_classes.append(tuple(sorted(present)))
        summary = {"images": len(kept), "filtered_by_area": len(split.tasks) - len(kept),
                   "left_out_by_validation": split.dataset.report.totals.get("images", 0) - len(split.dataset.images)}
        summary["distribution"] = sampling_summary(image_classes, image_pixels, label_map.num_classes,
                                                   config.sampling if split.name.startswith("train") else SamplingConfig())
        result["splits"][split.name] = summary
    return result


@dataclasses.dataclass
class PreparedSet:
    """A finished prepared set: its folder and manifest."""

    folder: Path
    reused: bool = False

    @functools.cached_property
    def manifest(self) -> dict:
        """The set's manifest (read once: a finished set never changes)."""
        return read_json(self.folder / "manifest.json")

    @property
    def name(self) -> str:
        return self.folder.name

    def label_map(self) -> LabelMap:
        return label_map_from_dict(self.manifest["label_map"])


def list_prepared(workspace: Workspace) -> list[PreparedSet]:
    """Finished sets (folders with a manifest), newest first; partial folders are ignored."""
    if not workspace.prepared_dir.is_dir():
        return []
    sets = [PreparedSet(folder) for folder in workspace.prepared_dir.iterdir()
            if folder.is_dir() and not folder.name.startswith(".") and (folder / "manifest.json").is_file()]
    return sorted(sets, key=lambda item: (item.folder / "manifest.json").stat().st_mtime, reverse=True)


def find_prepared(workspace: Workspace, name: str) -> PreparedSet:
    """A finished set by folder name."""
    check_name(name, "prepared set")
    folder = workspace.prepared_dir / name
    if not (folder / "manifest.json").is_file():
        known = ", ".join(item.name for item in list_prepared(workspace)) or "none yet"
        raise PrepareError(f"no prepared set called {name!r}; prepared: {known}")
    return PreparedSet(folder)
