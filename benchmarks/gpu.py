"""Inference speed on a CUDA GPU: ONNX Runtime (CUDA provider, IO binding) against TensorFlow.

Same models and images as ``benchmarks/inference.py`` (default options, randomly
initialised, 21 classes, real demo validation images resized to 256 px), on GPU:

- ORT with ``CUDAExecutionProvider`` (asserted to be the provider really in use), the
  input bound on the device (``OrtValue.ortvalue_from_numpy(x, "cuda", 0)``) and both
  outputs (mask, probabilities) bound to the device, so no host copies are timed;
  the FP32 file and its FP16 variant (``pipeline.export.convert_fp16``, float32/uint8
  interface kept);
- TensorFlow on ``/GPU:0``: a ``tf.function(jit_compile=False)`` call of the model on
  a device-resident input, synchronised with ``tf.test.experimental.sync_devices``;
  float32, and mixed float16 (the same weights under Keras' ``mixed_float16`` policy);
- batch 1 and 8, median of N timed calls after a warm-up.

Without a usable CUDA provider (``pipeline.inference.usable_providers``) it says
"no CUDA GPU visible: skipped" and exits 0.

Usage: python -m benchmarks.gpu [--architectures unet,transunet] [--size 256] [--repeats 20]
"""

from __future__ import annotations

import argparse
import gc
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.inference import BATCHES, NUM_CLASSES, OFFLINE_OPTIONS, OUTPUTS, SIZE, demo_images, median_seconds  # noqa: E402
from pipeline.inference import session_options, usable_providers  # noqa: E402
from pipeline.onnx_graph import INPUT_NAME  # noqa: E402

logger = logging.getLogger("benchmarks.gpu")

SKIPPED = "no CUDA GPU visible: skipped"
CUDA = "CUDAExecutionProvider"
ENGINES = ("ort_fp32", "ort_fp16", "tf_fp32", "tf_mixed16")
ENGINE_LABELS = {"ort_fp32": "ORT CUDA FP32", "ort_fp16": "ORT CUDA FP16", "tf_fp32": "TF GPU float32", "tf_mixed16": "TF GPU mixed float16"}


def gpu_name() -> str | None:
    """The first GPU's name from ``nvidia-smi``, or None when it is not there."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        completed = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in completed.stdout.splitlines() if line.strip()]
    return names[0] if completed.returncode == 0 and names else None


def cuda_session(path: Path):
    """An ORT session on the CUDA provider; raises unless CUDA is really the provider in use."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), sess_options=session_options(), providers=[CUDA, "CPUExecutionProvider"])
    providers = session.get_providers()
    assert providers[0] == CUDA, f"ONNX Runtime fell back to {providers}: CUDA is not the provider in use"
    return session


def ort_seconds(session, batch: np.ndarray, repeats: int, warmup: int) -> float:
    """Median seconds of ``run_with_iobinding`` with the input and both outputs on the device."""
    import onnxruntime

    binding = session.io_binding()
    binding.bind_ortvalue_input(INPUT_NAME, onnxruntime.OrtValue.ortvalue_from_numpy(batch, "cuda", 0))
    for output in OUTPUTS:
        binding.bind_output(output, "cuda", 0)

    def call() -> None:
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return median_seconds(call, repeats, warmup)


def tf_seconds(model, batch: np.ndarray, repeats: int, warmup: int) -> float:
    """Median seconds of a ``tf.function`` call on ``/GPU:0``, input on the device, synchronised."""
    from pipeline.tf_runtime import tensorflow

    tf = tensorflow()
    with tf.device("/GPU:0"):
        inputs = tf.identity(tf.constant(batch))
        function = tf.function(lambda images: model(images, training=False), jit_compile=False)

        def call() -> None:
            function(inputs)
            tf.test.experimental.sync_devices()

        return median_seconds(call, repeats, warmup)


def measure_architecture(name: str, size: int, images: np.ndarray, repeats: int, warmup: int, folder: Path, tf_gpu: bool) -> dict:
    import onnx

    from pipeline.tf_runtime import tensorflow

    tf = tensorflow()
    import keras

    from models.registry import build_model
    from pipeline.export import convert_fp16, to_onnx

    options = OFFLINE_OPTIONS.get(name, {})
    keras.utils.set_random_seed(0)
    with tf.device("/GPU:0" if tf_gpu else "/CPU:0"):
        model = build_model(name, num_classes=NUM_CLASSES, size=size, **options)
    fp32_path, fp16_path = folder / f"{name}.onnx", folder / f"{name}.fp16.onnx"
    onnx.save(to_onnx(model, size, NUM_CLASSES), str(fp32_path))
    convert_fp16(fp32_path, fp16_path)
    sessions = {"ort_fp32": cuda_session(fp32_path), "ort_fp16": cuda_session(fp16_path)}
    mixed = None
    if tf_gpu:
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            with tf.device("/GPU:0"):
                mixed = build_model(name, num_classes=NUM_CLASSES, size=size, **options)
            mixed.set_weights(model.get_weights())
        finally:
            keras.mixed_precision.set_global_policy("float32")
    timings: dict[int, dict[str, float | None]] = {}
    for batch_size in BATCHES:
        batch = np.ascontiguousarray(images[:batch_size])
        row = {engine: ort_seconds(sessions[engine], batch, repeats, warmup) for engine in ("ort_fp32", "ort_fp16")}
        row["tf_fp32"] = tf_seconds(model, batch, repeats, warmup) if tf_gpu else None
        row["tf_mixed16"] = tf_seconds(mixed, batch, repeats, warmup) if tf_gpu else None
        timings[batch_size] = row
        logger.info("%s batch %d: %s", name, batch_size, ", ".join(
            f"{ENGINE_LABELS[engine]} {seconds * 1000:.2f} ms" for engine, seconds in row.items() if seconds is not None))
    result = {
        "name": name, "size": size, "providers": sessions["ort_fp32"].get_providers(),
        "batches": {batch_size: {engine: None if seconds is None else {"ms": seconds * 1000, "images_per_second": batch_size / seconds}
                                 for engine, seconds in row.items()} for batch_size, row in timings.items()},
    }
    return result


def run(architectures: list[str] | None = None, size: int = SIZE, repeats: int = 20, warmup: int = 5) -> dict:
    """Measure on the GPU; ``{"skipped": SKIPPED, ...}`` when ONNX Runtime has no usable CUDA provider."""
    report = usable_providers()
    base = {"gpu": gpu_name(), "onnxruntime": report.version, "usable_providers": list(report.usable), "size": size,
            "repeats": repeats, "warmup": warmup}
    if CUDA not in report.usable:
        logger.warning("%s (onnxruntime %s usable providers: %s)", SKIPPED, report.version, ", ".join(report.usable))
        return {**base, "skipped": SKIPPED, "rows": []}
    from pipeline.tf_runtime import tensorflow

    from models.registry import ARCHITECTURES

    tf = tensorflow()
    import keras

    names = list(architectures or ["unet"])
    unknown = [name for name in names if name not in ARCHITECTURES]
    if unknown:
        raise ValueError(f"unknown architecture(s) {', '.join(unknown)}; known: {', '.join(ARCHITECTURES)}")
    tf_gpu = bool(tf.config.list_physical_devices("GPU"))
    if not tf_gpu:
        logger.warning("TensorFlow sees no GPU (CPU-only build or missing CUDA libraries): TensorFlow columns left empty")
    images = demo_images("val2017", max(BATCHES), size)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cocoseg-gpu-bench-") as folder:
        for name in names:
            rows.append(measure_architecture(name, size, images, repeats, warmup, Path(folder), tf_gpu))
            keras.backend.clear_session()
            gc.collect()
    return {**base, "skipped": None, "tensorflow": tf.__version__, "tensorflow_gpu": tf_gpu, "rows": rows}


def format_table(results: dict) -> str:
    gpu = results["gpu"] or "no nvidia-smi"
    if results["skipped"]:
        hint = (f" nvidia-smi sees {results['gpu']}, but ONNX Runtime's CUDA provider did not load: check that the "
                "onnxruntime-gpu wheel's CUDA and cuDNN libraries are installed.") if results["gpu"] else ""
        return (f"{results['skipped']} (GPU: {gpu}; onnxruntime {results['onnxruntime']} usable providers: "
                f"{', '.join(results['usable_providers']) or 'none'}).{hint}")
    lines = [
        f"GPU: {gpu}; onnxruntime {results['onnxruntime']} on {results['rows'][0]['providers'][0] if results['rows'] else 'CUDA'} "
        f"(asserted), TensorFlow {results['tensorflow']}{'' if results['tensorflow_gpu'] else ' (sees no GPU)'}.",
        f"{results['size']} px, 21 classes, median of {results['repeats']} calls after {results['warmup']} warm-up; ORT with IO "
        "binding (input and both outputs on the device), TensorFlow tf.function on a device-resident input, synchronised.",
        "",
        "| model | batch | " + " | ".join(ENGINE_LABELS[engine] for engine in ENGINES) + " | ORT FP32 vs TF float32 | ORT FP16 vs ORT FP32 |",
        "|---|---:|" + "---:|" * (len(ENGINES) + 2),
    ]
    for row in results["rows"]:
        for batch_size, engines in row["batches"].items():
            cells = ["n/a" if engines[engine] is None else f"{engines[engine]['ms']:.2f} ms ({engines[engine]['images_per_second']:.0f} img/s)"
                     for engine in ENGINES]
            versus_tf = "n/a" if engines["tf_fp32"] is None else f"{engines['tf_fp32']['ms'] / engines['ort_fp32']['ms']:.2f}x"
            fp16 = f"{engines['ort_fp32']['ms'] / engines['ort_fp16']['ms']:.2f}x"
            lines.append(f"| {row['name']} | {batch_size} | " + " | ".join(cells) + f" | {versus_tf} | {fp16} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architectures", default=None, help="comma-separated names (default: unet)")
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--repeats", type=int, default=20)
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logger.setLevel(logging.INFO)
    names = [name.strip() for name in arguments.architectures.split(",") if name.strip()] if arguments.architectures else None
    sys.stdout.write(format_table(run(names, arguments.size, arguments.repeats)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
