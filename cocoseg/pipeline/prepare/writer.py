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
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from cocoseg.pipeline.core.workspace import (
    Workspace,
    atomic_write_json,
)
from cocoseg.pipeline.data.labels import (
    IGNORE_INDEX,
)
from cocoseg.pipeline.data.registry import get_dataset
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.examples import ExampleResult, build_example
from cocoseg.pipeline.prepare.plan import FORMAT_VERSION, Plan, SplitPlan, plan
from cocoseg.pipeline.prepare.records import to_tf_example
from cocoseg.pipeline.prepare.sampling import sampling_summary
from cocoseg.pipeline.prepare.sets import PrepareCancelled, PreparedSet, PrepareError
from cocoseg.pipeline.prepare.tfrecord import ShardedWriter

logger = logging.getLogger(__name__)

SKIPPED_EXAMPLES_KEPT = 50
ProgressCallback = Callable[[int, int], None]
StopCallback = Callable[[], bool]


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
        "validation": {
            "errors": split.dataset.report.errors,
            "warnings": split.dataset.report.warnings,
            "checks": {code: count for code, count in split.dataset.report.counts.items()},
        },
        "skipped": reasons,
        "skipped_examples": [
            {"file_name": r.file_name, "reason": r.skipped, "detail": r.detail}
            for r in tally.skipped[:SKIPPED_EXAMPLES_KEPT]
        ],
        "class_images": class_images.tolist(),
        "class_pixels": pixels.sum(axis=0).tolist(),
        "ignore_pixels": tally.ignored,
        "min_labelled_area": split.tasks[0].min_labelled_area if split.tasks else 0.0,
    }
    if split.name.startswith("train"):
        summary["sampling"] = sampling_summary(tally.classes, pixels, num_classes, plan_.config.sampling)
    return summary


def write_split(
    pool,
    plan_: Plan,
    split: SplitPlan,
    folder: Path,
    progress: ProgressCallback | None,
    done: int,
    total: int,
    should_stop: StopCallback | None = None,
) -> dict:
    """Build every task of a split (in ``pool``, or here when it is None), write its shards
    into ``folder`` and return the split's manifest section.

    Raises:
        PrepareCancelled: ``should_stop`` returned True (checked after every image).
    """
    tally = _SplitTally(plan_.label_map.num_classes, len(split.tasks))
    with ShardedWriter(folder, split.name, plan_.config.shards) as writer:
        results = (
            pool.map(build_example, split.tasks, chunksize=4) if pool else map(build_example, split.tasks)
        )
        for task, result in zip(split.tasks, results):
            if result.skipped:
                tally.skipped.append(result)
            else:
                writer.write(
                    to_tf_example(result, plan_.config.encoding, task.image["height"], task.image["width"])
                )
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
        "config": {
            **plan_.config.output_fields(),
            "workers": plan_.config.worker_count(),
            "sampling": dataclasses.asdict(plan_.config.sampling),
        },
        "label_map": plan_.label_map.to_dict(),
        "sources": {
            item.name: {
                "annotations": str(entry.split(item.name).annotations),
                "images": str(entry.split(item.name).images),
                "sha256": item.annotations_sha256,
            }
            for item in plan_.splits
        },
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


def prepare(
    workspace: Workspace,
    config: PrepareConfig,
    max_bytes: int,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> PreparedSet:
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
        pool = (
            ProcessPoolExecutor(
                workers,
                mp_context=get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
            if workers > 1
            else None
        )
        try:
            splits = {}
            done = 0
            for split in plan_.splits:
                splits[split.name] = write_split(
                    pool, plan_, split, partial, progress, done, total, should_stop
                )
                done += len(split.tasks)
            atomic_write_json(
                partial / "manifest.json", _manifest(plan_, workspace, splits, time.perf_counter() - started)
            )
            os.replace(partial, plan_.folder)
        except BrokenProcessPool:
            shutil.rmtree(partial, ignore_errors=True)
            raise PrepareError(
                "a worker process died (killed or out of memory); "
                "nothing was published, earlier sets are intact"
            ) from None
        except OSError as error:
            shutil.rmtree(partial, ignore_errors=True)
            raise PrepareError(
                f"writing the prepared set failed ({error.strerror or error}); "
                "nothing was published, earlier sets are intact"
            ) from None
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        finally:
            if pool is not None:  # Ctrl-C must not wait for every queued image
                pool.shutdown(wait=True, cancel_futures=True)
    logger.info("prepared %s in %.1f s", plan_.folder.name, time.perf_counter() - started)
    return PreparedSet(plan_.folder)
