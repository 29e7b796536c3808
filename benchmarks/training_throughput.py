"""Training throughput of every architecture, against the machine's own matmul rate.

For each registered architecture (default options) at 128 and 256 px: training images/s
of the runner's step (forward, cross-entropy, backward, Adam) on random data, its
parameters and forward FLOPs per image, and the achieved fraction of this machine's
float32 matrix-multiply rate (a 2048^3 matmul in NumPy and in TensorFlow, measured in
the same run). Training FLOPs are taken as 3x the forward FLOPs (forward + backward).
With a CUDA GPU the same is measured on it with and without mixed precision; without
one this says so and skips.

Usage: python benchmarks/training_throughput.py [--steps 3] [--sizes 128,256] [--models unet,deeplabv3_plus]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.coco_scale import machine_description  # noqa: E402
from cocoseg.pipeline.core.tf_runtime import tensorflow  # noqa: E402
from cocoseg.pipeline.training.loop import make_train_step

tf = tensorflow()

import keras  # noqa: E402

from cocoseg.models.losses import cross_entropy  # noqa: E402
from cocoseg.models.registry import ARCHITECTURES, build_model  # noqa: E402
from cocoseg.models.summary import summarise  # noqa: E402

BATCH = {128: 8, 256: 4}


def matmul_rate() -> dict:
    """Best-of-three GFLOP/s of a 2048^3 float32 matmul in NumPy and in TensorFlow."""
    size = 2048
    rng = np.random.default_rng(0)
    left, right = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    flops = 2 * size**3

    def best(call) -> float:
        call()
        times = []
        for _ in range(3):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return flops / min(times) / 1e9

    tf_left, tf_right = tf.constant(left), tf.constant(right)
    return {
        "numpy": best(lambda: left @ right),
        "tensorflow": best(lambda: tf.linalg.matmul(tf_left, tf_right).numpy()),
    }


def training_rate(name: str, size: int, steps: int, device: str = "/CPU:0") -> float:
    """Images/s of the training step for one architecture and size."""
    batch = BATCH.get(size, 4)
    with tf.device(device):
        model = build_model(name, num_classes=21, size=size)
        optimizer = keras.optimizers.Adam(1e-3)
        rng = np.random.default_rng(0)
        images = tf.constant(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8))
        masks = tf.constant(rng.integers(0, 21, (batch, size, size), dtype=np.uint8))

        step = make_train_step(model, optimizer, cross_entropy)
        float(step(images, masks))
        started = time.perf_counter()
        for _ in range(steps):
            float(step(images, masks))
        return steps * batch / (time.perf_counter() - started)


def run(steps: int, sizes: list[int], names: list[str] | None = None) -> dict:
    """The figures for ``names`` (default: every architecture) at ``sizes``."""
    names = list(names or ARCHITECTURES)
    rates = matmul_rate()
    rows = []
    for name in names:
        for size in sizes:
            summary = summarise(build_model(name, num_classes=21, size=size))
            images_per_second = training_rate(name, size, steps)
            achieved = images_per_second * 3 * summary.flops_per_image / 1e9
            rows.append(
                {
                    "name": name,
                    "size": size,
                    "parameters": summary.parameters,
                    "gflops": summary.gflops,
                    "images_per_second": images_per_second,
                    "achieved_gflops": achieved,
                    "fraction": achieved / max(rates["numpy"], rates["tensorflow"]),
                }
            )
    gpus = tf.config.list_physical_devices("GPU")
    gpu_rows = []
    if gpus:
        for name in names:
            for size in sizes:
                plain = training_rate(name, size, steps, "/GPU:0")
                keras.mixed_precision.set_global_policy("mixed_float16")
                mixed = training_rate(name, size, steps, "/GPU:0")
                keras.mixed_precision.set_global_policy("float32")
                gpu_rows.append({"name": name, "size": size, "float32": plain, "mixed": mixed})
    return {"machine": machine_description(), "matmul": rates, "rows": rows, "gpu": gpu_rows}


def format_table(results: dict) -> str:
    rates = results["matmul"]
    lines = [
        (
            f"Machine: {results['machine']}. float32 matmul 2048^3: NumPy {rates['numpy']:.0f} GFLOP/s, "
            f"TensorFlow {rates['tensorflow']:.0f} GFLOP/s."
        ),
        "",
        (
            "| model | px | parameters | forward GFLOPs/image | train images/s | achieved GFLOP/s "
            "| of matmul rate |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['name']} | {row['size']} | {row['parameters'] / 1e6:.2f} M | {row['gflops']:.2f} "
            f"| {row['images_per_second']:.2f} "
            f"| {row['achieved_gflops']:.0f} | {row['fraction']:.0%} |"
        )
    if results["gpu"]:
        lines += [
            "",
            "| model | px | GPU images/s float32 | GPU images/s mixed float16 |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {row['name']} | {row['size']} | {row['float32']:.1f} | {row['mixed']:.1f} |"
            for row in results["gpu"]
        ]
    else:
        lines += ["", "No CUDA GPU visible: GPU rows (float32 and mixed precision) skipped."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--models", default="", help="comma-separated architectures (default: all)")
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]
    names = [name for name in arguments.models.split(",") if name] or None
    sys.stdout.write(format_table(run(arguments.steps, sizes, names)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
