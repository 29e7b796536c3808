"""Training throughput of every architecture, against the machine's own matmul rate.

For each registered architecture (default options) at 128 and 256 px: training images/s
of the runner's step (forward, cross-entropy, backward, Adam) on random data, its
parameters and forward FLOPs per image, and the achieved fraction of this machine's
float32 matrix-multiply rate (a 2048^3 matmul in NumPy and in TensorFlow, measured in
the same run). Training FLOPs are taken as 3x the forward FLOPs (forward + backward).
With a CUDA GPU the same is measured on it with and without mixed precision; without
one this says so and skips.

Precision rows: the default UNet at 128 px, batch 8, in float32 and in the precision
``--precision auto`` picks on this machine (``training.precision.choose_precision``: mixed
bfloat16 on a CPU with AVX-512 BF16 or AMX, mixed float16 on a GPU with tensor cores),
alternated in the same run (best of ``--rounds`` for each), as a ratio, beside the CPU's
flags (``core.devices.cpu_info().describe()``).

Usage: python benchmarks/training_throughput.py [--steps 3] [--sizes 128,256] [--models unet,deeplabv3_plus]
       python benchmarks/training_throughput.py --precision-only [--steps 5] [--rounds 2]
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
from cocoseg.pipeline.core.devices import cpu_info  # noqa: E402
from cocoseg.pipeline.core.tf_runtime import tensorflow  # noqa: E402
from cocoseg.pipeline.training.loop import gpu_capabilities, make_train_step  # noqa: E402
from cocoseg.pipeline.training.precision import choose_precision  # noqa: E402

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


def training_rate(name: str, size: int, steps: int, device: str = "/CPU:0", policy: str = "float32") -> float:
    """Images/s of the training step for one architecture and size, built under the Keras dtype
    ``policy`` (mixed float16 with the loss scaling a run's ``compile`` adds)."""
    batch = BATCH.get(size, 4)
    keras.mixed_precision.set_global_policy(policy)
    try:
        with tf.device(device):
            model = build_model(name, num_classes=21, size=size)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with tf.device(device):
        optimizer = keras.optimizers.Adam(1e-3)
        if policy == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        rng = np.random.default_rng(0)
        images = tf.constant(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8))
        masks = tf.constant(rng.integers(0, 21, (batch, size, size), dtype=np.uint8))

        step = make_train_step(model, optimizer, cross_entropy)
        float(step(images, masks))
        started = time.perf_counter()
        for _ in range(steps):
            float(step(images, masks))
        return steps * batch / (time.perf_counter() - started)


def precision_rows(steps: int, rounds: int = 2, name: str = "unet", size: int = 128) -> dict:
    """float32 against ``auto``'s pick, on the CPU and (when present) the GPU, alternated round by
    round so that a neighbour's load falls on both; the best rate of each, and their ratio."""
    cpu = cpu_info()
    devices = [("CPU", "/CPU:0", choose_precision("auto", [], cpu.bfloat16, cpu.model))]
    capabilities = gpu_capabilities()
    if capabilities:
        devices.append(("GPU", "/GPU:0", choose_precision("auto", capabilities, cpu.bfloat16, cpu.model)))
    rows = []
    for device, place, auto in devices:
        policies = ["float32"] + ([auto.policy] if auto.policy != "float32" else [])
        best = dict.fromkeys(policies, 0.0)
        for _ in range(rounds):
            for policy in policies:
                best[policy] = max(best[policy], training_rate(name, size, steps, place, policy))
        rows.append(
            {
                "device": device,
                "auto": auto.policy,
                "reason": auto.reason,
                "float32": best["float32"],
                "auto_rate": best[auto.policy],
                "ratio": best[auto.policy] / best["float32"],
            }
        )
    return {
        "cpu": cpu.describe(),
        "model": name,
        "size": size,
        "batch": BATCH.get(size, 4),
        "steps": steps,
        "rounds": rounds,
        "rows": rows,
    }


def format_precision(results: dict) -> str:
    lines = [
        f"CPU: {results['cpu']}.",
        f"{results['model']} at {results['size']} px, batch {results['batch']}, {results['steps']} timed "
        f"steps, best of {results['rounds']} alternated rounds.",
        "",
        "| device | auto picks | float32 images/s | auto images/s | auto vs float32 |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {row['device']} | {row['auto']} | {row['float32']:.2f} | {row['auto_rate']:.2f} "
        f"| {row['ratio']:.2f}x |"
        for row in results["rows"]
    ]
    lines += [f"{row['device']}: {row['reason']}" for row in results["rows"]]
    return "\n".join(lines)


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
                mixed = training_rate(name, size, steps, "/GPU:0", "mixed_float16")
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
    parser.add_argument("--rounds", type=int, default=2, help="precision rows: alternated rounds")
    parser.add_argument("--precision-only", action="store_true", help="only the precision rows")
    arguments = parser.parse_args()
    if not arguments.precision_only:
        sizes = [int(size) for size in arguments.sizes.split(",")]
        names = [name for name in arguments.models.split(",") if name] or None
        sys.stdout.write(format_table(run(arguments.steps, sizes, names)) + "\n\n")
    sys.stdout.write(format_precision(precision_rows(arguments.steps, arguments.rounds)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
