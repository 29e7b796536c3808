"""Input pipeline throughput: is training ever waiting for data?

Measures in one run, on the prepared demo set (voc21, 256 px):

(a) writer throughput (decode + rasterise + resize + encode + write) in images/s with
    one worker process versus one per core; the demo tasks are repeated to get enough
    work, and the pools are started before the clock runs;
(b) tf.data training input (interleave, decode, repeat-factor sampling, shuffle,
    augmentation, batch 8, prefetch) in images/s, epochs repeated, with and without the
    decoded-example cache;
(c) images/s a training step of the default UNet (unet, 32 base filters, depth 4,
    voc21's 21 classes, batch 8) consumes on this machine.

Usage: python benchmarks/input_pipeline.py [--repeat 3] [--batches 60] [--steps 6]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.coco_scale import machine_description  # noqa: E402
from cocoseg.pipeline.core.tf_runtime import tensorflow  # noqa: E402
from cocoseg.pipeline.core.workspace import Workspace  # noqa: E402
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.examples import build_example
from cocoseg.pipeline.prepare.plan import SplitPlan, plan
from cocoseg.pipeline.prepare.records import to_tf_example
from cocoseg.pipeline.prepare.sampling import SamplingConfig  # noqa: E402
from cocoseg.pipeline.prepare.writer import prepare, write_split
from cocoseg.pipeline.training.input import InputConfig, training_dataset  # noqa: E402

logger = logging.getLogger("benchmarks.input_pipeline")
LIMIT = 1024**3
SIZE = 256


def writer_throughput(workspace: Workspace, workers: int, repeat: int, size: int = SIZE) -> float:
    """Images/s of build + write for the demo tasks repeated ``repeat`` times.

    Both cases use a process pool (of 1 or of ``workers``) started and warmed before
    the clock runs, and TensorFlow is already imported for the writing side.
    """
    config = PrepareConfig("demo", labels="voc21", size=size, workers=workers)
    plan_ = plan(workspace, config, LIMIT)
    tasks = [task for split in plan_.splits for task in split.tasks] * repeat
    split = SplitPlan("bench", plan_.splits[0].dataset, tasks, "")
    to_tf_example(build_example(tasks[0]), "jpeg", 1, 1)  # imports TensorFlow in this process
    with (
        tempfile.TemporaryDirectory() as folder,
        ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool,
    ):
        list(pool.map(build_example, tasks[: workers * 2]))  # start and warm the workers
        started = time.perf_counter()
        write_split(pool, plan_, split, Path(folder), None, 0, len(tasks))
        return len(tasks) / (time.perf_counter() - started)


def input_throughput(prepared, batches: int, cache: str) -> float:
    """Images/s of the training input pipeline, epochs chained until ``batches`` batches."""
    config = InputConfig(batch_size=8, sampling=SamplingConfig("repeat-factor", 0.1), cache=cache, seed=1)
    epochs = training_dataset(prepared, "train", config).repeat()
    iterator = iter(epochs)
    for _ in range(3):
        next(iterator)  # build the pipeline and fill the prefetch buffer
    started = time.perf_counter()
    images = sum(int(next(iterator)[0].shape[0]) for _ in range(batches))
    return images / (time.perf_counter() - started)


def training_consumption(steps: int, size: int = SIZE) -> float:
    """Images/s of train_on_batch for the default UNet, batch 8, on random data."""
    tf = tensorflow()
    import keras
    import numpy as np

    from cocoseg.models.registry import build_model

    model = build_model("unet", num_classes=21, size=size)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
    )
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8))
    masks = tf.constant(rng.integers(0, 21, (8, size, size), dtype=np.uint8))
    for _ in range(2):
        model.train_on_batch(images, masks)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, masks)
    return steps * 8 / (time.perf_counter() - started)


def run(repeat: int, batches: int, steps: int, size: int = SIZE) -> dict:
    with tempfile.TemporaryDirectory() as home:
        workspace = Workspace(Path(home)).ensure()
        cores = os.cpu_count() or 1
        results = {"machine": machine_description(), "cores": cores, "size": size}
        results["writer_1"] = writer_throughput(workspace, 1, repeat, size)
        results["writer_all"] = writer_throughput(workspace, cores, repeat, size)
        prepared = prepare(workspace, PrepareConfig("demo", labels="voc21", size=size, workers=cores), LIMIT)
        results["input_cached"] = input_throughput(prepared, batches, "always")
        results["input_uncached"] = input_throughput(prepared, batches, "never")
        results["training"] = training_consumption(steps, size)
    return results


def format_table(results: dict) -> str:
    training = results["training"]
    rows = [
        ("(a) writer, 1 worker", results["writer_1"], f"{1.0:.2f}x writer"),
        (
            f"(a) writer, {results['cores']} workers",
            results["writer_all"],
            f"{results['writer_all'] / results['writer_1']:.2f}x writer",
        ),
        (
            "(b) training input, decoded cache",
            results["input_cached"],
            f"{results['input_cached'] / training:.1f}x training",
        ),
        (
            "(b) training input, no cache",
            results["input_uncached"],
            f"{results['input_uncached'] / training:.1f}x training",
        ),
        ("(c) UNet training step consumes", training, "1.0x training"),
    ]
    lines = [
        f"Machine: {results['machine']}; {results['size']} px.",
        "",
        "| case | images/s | ratio |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {value:.1f} | {ratio} |" for name, value, ratio in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="times the 160 demo images are written in (a)")
    parser.add_argument("--batches", type=int, default=60, help="batches timed in (b)")
    parser.add_argument("--steps", type=int, default=6, help="training steps timed in (c)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sys.stdout.write(format_table(run(arguments.repeat, arguments.batches, arguments.steps)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
