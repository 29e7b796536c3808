"""Inference speed on CPU: ONNX Runtime (FP32, INT8) against Keras, same model, same images.

For each registered architecture (default options, randomly initialised: speed does not
depend on the weights; the MobileNetV2 encoder without ImageNet weights, so nothing is
downloaded) at 256 px with 21 classes, in one run on this machine:

- the Keras model is converted with ``cocoseg.pipeline.training.export.to_onnx`` (the cocoseg interface:
  uint8 ``image`` in, ``mask`` and ``probabilities`` out) and quantised to static QDQ
  INT8 with ``cocoseg.pipeline.training.export.quantize_int8``, calibrated on real demo training images;
- at batch 1 and 8, on real demo validation images resized like preparation does
  (``geometry.resize_image``, stretch), median of N timed calls after a warm-up, each
  engine timed in one block: Keras ``model.predict(batch, verbose=0)``, a
  ``tf.function(jit_compile=False)`` call of the model (``.numpy()`` of the logits), and
  ``InferenceSession.run`` with cocoseg's ``session_options()`` on the CPU provider for
  the FP32 and the INT8 file, fetching both outputs (mask and probabilities);
- forward FLOPs per image (``cocoseg.models.summary``), achieved GFLOP/s of ORT FP32 at batch 8
  and its fraction of this machine's float32 matmul rate (NumPy 2048^3, best of three);
- end-to-end latency of one 640x480 JPEG the way ``Predictor.predict`` serves it: decode
  the bytes, resize, ``session.run`` (mask), map the mask back, encode it as PNG.

INT8 accuracy is not measured here: ``cocoseg export`` evaluates the INT8 variant of a
trained model against FP32 on the validation split and records the mIoU delta in the
model card.

Usage: python -m benchmarks.inference [--architectures unet,transunet] [--size 256] [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.coco_scale import machine_description  # noqa: E402
from cocoseg.pipeline.core.devices import cpu_info  # noqa: E402
from cocoseg.pipeline.core.settings import DEMO_DATASET_DIR  # noqa: E402
from cocoseg.pipeline.core.tf_runtime import tensorflow  # noqa: E402
from cocoseg.pipeline.data.geometry import resize_image, undo_mask  # noqa: E402
from cocoseg.pipeline.data.images import decode_rgb, read_rgb  # noqa: E402
from cocoseg.pipeline.data.rendering import mask_png  # noqa: E402
from cocoseg.pipeline.inference.onnx_graph import INPUT_NAME, MASK_OUTPUT, PROBABILITIES_OUTPUT  # noqa: E402
from cocoseg.pipeline.inference.predictor import session_options, thread_count  # noqa: E402

logger = logging.getLogger("benchmarks.inference")

NUM_CLASSES = 21
SIZE = 256
BATCHES = (1, 8)
RESIZE = "stretch"
OUTPUTS = [MASK_OUTPUT, PROBABILITIES_OUTPUT]  # every ORT timing fetches both, FP32 and INT8 alike
END_TO_END_SIZE = (640, 480)
# Options that keep a build offline (the MobileNetV2 encoder would otherwise be asked for ImageNet weights).
OFFLINE_OPTIONS = {"pretrained_unet": {"encoder_weights": None}}
ENGINES = ("predict", "tf_function", "ort_fp32", "ort_int8")
ENGINE_LABELS = {
    "predict": "Keras predict",
    "tf_function": "tf.function",
    "ort_fp32": "ORT FP32",
    "ort_int8": "ORT INT8",
}

# Targets of the inference issue, checked by format_table.
TARGET_VS_PREDICT = 1.3  # ORT FP32 at batch 1, x faster than model.predict
TARGET_VS_TF_FUNCTION = 1.0  # ORT FP32 at batch 1, no slower than tf.function ...
NOISE = 0.05  # ... within this run-to-run noise
TARGET_INT8 = 2.0  # INT8 x faster than ORT FP32 (batch 1 and 8)
TARGET_FRACTION_DEFAULT = 0.75  # ORT FP32 at batch 8, of the matmul rate, default UNet
TARGET_FRACTION_OTHERS = 0.50  # every other architecture
DEFAULT_ARCHITECTURE = "unet"
INT8_ACCURACY_NOTE = (
    "INT8 accuracy is not measured by this script: `cocoseg export` evaluates the INT8 variant of a trained "
    "model against FP32 on the validation split and records the mIoU delta in the model card "
    "(variants.int8.miou_delta_points; more than 1 point lost = not recommended)."
)


# --- inputs --------------------------------------------------------------------------


def demo_images(split: str, count: int, size: int) -> np.ndarray:
    """The first ``count`` demo images of a split (sorted by name), resized like preparation: uint8
    (N, size, size, 3).
    """
    paths = sorted((DEMO_DATASET_DIR / split).glob("*.jpg"))
    if not paths:
        raise FileNotFoundError(f"no demo images in {DEMO_DATASET_DIR / split}")
    return np.stack(
        [resize_image(read_rgb(paths[index % len(paths)]), size, RESIZE) for index in range(count)]
    )


def demo_jpeg(width: int, height: int) -> bytes:
    """The first demo validation image resized to ``width`` x ``height``, JPEG-encoded in memory
    (quality 90).
    """
    path = sorted((DEMO_DATASET_DIR / "val2017").glob("*.jpg"))[0]
    picture = cv2.resize(read_rgb(path), (width, height), interpolation=cv2.INTER_AREA)
    encoded, data = cv2.imencode(
        ".jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
    )
    if not encoded:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


# --- timing --------------------------------------------------------------------------


def median_seconds(call: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median wall time of ``call`` over ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def matmul_rate(runs: int = 5, size: int = 2048) -> float:
    """GFLOP/s of a ``size``^3 float32 NumPy matmul, best of ``runs`` after one warm-up (2 n^3 FLOPs)."""
    rng = np.random.default_rng(0)
    left, right = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    product = np.empty_like(left)
    np.matmul(left, right, out=product)
    best = float("inf")
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        np.matmul(left, right, out=product)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def cpu_flags() -> str:
    """The SIMD extensions that decide FP32 and INT8 kernel speed (``core.devices``: AVX2 ... AMX)."""
    return ", ".join(cpu_info().named_flags) or "none of avx2/avx512/vnni"


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have been busy since boot (``/proc/stat``), None where unavailable."""
    try:
        with open("/proc/stat", encoding="utf-8") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


# --- per architecture ----------------------------------------------------------------


def _cpu_session(path: Path):
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(path), sess_options=session_options(), providers=["CPUExecutionProvider"]
    )
    if session.get_providers()[0] != "CPUExecutionProvider":
        raise RuntimeError(f"expected the CPU provider, got {session.get_providers()}")
    return session


def end_to_end_seconds(session, jpeg: bytes, size: int, repeats: int, warmup: int) -> float:
    """Median seconds for bytes -> decode -> resize -> session.run (mask) -> undo_mask -> PNG, as
    ``Predictor.predict``.
    """

    def serve() -> bytes:
        image = decode_rgb(jpeg, "upload.jpg")
        batch = resize_image(image, size, RESIZE)[None]
        mask = session.run([MASK_OUTPUT], {INPUT_NAME: batch})[0][0]
        return mask_png(undo_mask(mask, image.shape[1], image.shape[0], RESIZE))

    return median_seconds(serve, repeats, warmup)


def measure_architecture(
    name: str,
    size: int,
    images: np.ndarray,
    calibration: np.ndarray,
    jpeg: bytes,
    repeats: int,
    warmup: int,
    folder: Path,
) -> dict:
    """Build, convert, quantise and time one architecture; returns its row."""
    import onnx

    tf = tensorflow()
    import keras

    from cocoseg.models.registry import build_model
    from cocoseg.models.summary import summarise
    from cocoseg.pipeline.training.export import quantize_int8, to_onnx

    keras.utils.set_random_seed(0)
    model = build_model(name, num_classes=NUM_CLASSES, size=size, **OFFLINE_OPTIONS.get(name, {}))
    summary = summarise(model)
    fp32_path, int8_path = folder / f"{name}.onnx", folder / f"{name}.int8.onnx"
    started = time.perf_counter()
    onnx.save(to_onnx(model, size, NUM_CLASSES), str(fp32_path))
    logger.info("%s: converted to ONNX in %.0f s", name, time.perf_counter() - started)
    started = time.perf_counter()
    quantize_int8(fp32_path, int8_path, calibration)
    logger.info(
        "%s: quantised to INT8 on %d images in %.0f s", name, len(calibration), time.perf_counter() - started
    )
    sessions = {"ort_fp32": _cpu_session(fp32_path), "ort_int8": _cpu_session(int8_path)}
    function = tf.function(lambda batch: model(batch, training=False), jit_compile=False)

    timings: dict[int, dict[str, float]] = {}
    for batch_size in BATCHES:
        batch = np.ascontiguousarray(images[:batch_size])
        calls = {
            "predict": lambda batch=batch: model.predict(batch, verbose=0),
            "tf_function": lambda batch=batch: function(batch).numpy(),
            "ort_fp32": lambda batch=batch: sessions["ort_fp32"].run(OUTPUTS, {INPUT_NAME: batch}),
            "ort_int8": lambda batch=batch: sessions["ort_int8"].run(OUTPUTS, {INPUT_NAME: batch}),
        }
        timings[batch_size] = {engine: median_seconds(calls[engine], repeats, warmup) for engine in ENGINES}
        logger.info(
            "%s batch %d: %s",
            name,
            batch_size,
            ", ".join(
                f"{ENGINE_LABELS[engine]} {seconds * 1000:.1f} ms"
                for engine, seconds in timings[batch_size].items()
            ),
        )
    end_to_end = {
        variant: end_to_end_seconds(sessions[variant], jpeg, size, repeats, warmup)
        for variant in ("ort_fp32", "ort_int8")
    }

    largest = max(BATCHES)
    achieved = largest * summary.flops_per_image / timings[largest]["ort_fp32"] / 1e9
    row = {
        "name": name,
        "size": size,
        "parameters": summary.parameters,
        "flops_per_image": summary.flops_per_image,
        "gflops": summary.gflops,
        "fp32_bytes": fp32_path.stat().st_size,
        "int8_bytes": int8_path.stat().st_size,
        "batches": {
            batch_size: {
                engine: {"ms": seconds * 1000, "images_per_second": batch_size / seconds}
                for engine, seconds in engines.items()
            }
            for batch_size, engines in timings.items()
        },
        "ort_vs_predict_b1": timings[1]["predict"] / timings[1]["ort_fp32"],
        "ort_vs_tf_function_b1": timings[1]["tf_function"] / timings[1]["ort_fp32"],
        "int8_vs_fp32": {
            batch_size: timings[batch_size]["ort_fp32"] / timings[batch_size]["ort_int8"]
            for batch_size in BATCHES
        },
        "ort_fp32_gflops_per_second": achieved,
        "end_to_end_ms": {variant: seconds * 1000 for variant, seconds in end_to_end.items()},
    }
    return row


def run(
    architectures: list[str] | None = None,
    size: int = SIZE,
    repeats: int = 7,
    warmup: int = 2,
    calibration_images: int = 32,
    matmul_runs: int = 5,
) -> dict:
    """Measure every architecture (default: all registered, UNet first); returns rows and machine info."""
    import onnxruntime

    tf = tensorflow()
    import keras

    from cocoseg.models.registry import ARCHITECTURES

    names = list(architectures or ARCHITECTURES)
    unknown = [name for name in names if name not in ARCHITECTURES]
    if unknown:
        raise ValueError(f"unknown architecture(s) {', '.join(unknown)}; known: {', '.join(ARCHITECTURES)}")
    images = demo_images("val2017", max(BATCHES), size)
    calibration = demo_images("train2017", calibration_images, size)
    jpeg = demo_jpeg(*END_TO_END_SIZE)
    load_before = os.getloadavg()[0]
    started, busy_before, own_before = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    rate_before = matmul_rate(matmul_runs)
    logger.info("float32 matmul 2048^3 (NumPy): %.0f GFLOP/s", rate_before)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cocoseg-inference-bench-") as folder:
        for name in names:
            row = measure_architecture(name, size, images, calibration, jpeg, repeats, warmup, Path(folder))
            keras.backend.clear_session()  # the model and its sessions went out of scope with the call
            gc.collect()
            rows.append(row)
    rate_after = matmul_rate(matmul_runs)
    rate = max(rate_before, rate_after)  # the machine's rate: a neighbour's load can only lower a measurement
    for row in rows:
        row["fraction_of_matmul"] = row["ort_fp32_gflops_per_second"] / rate
    busy_after, wall = busy_cpu_seconds(), time.perf_counter() - started
    others = (
        None
        if busy_before is None or busy_after is None
        else max(0.0, (busy_after - busy_before) - (own_cpu_seconds() - own_before))
        / (wall * (os.cpu_count() or 1))
    )
    return {
        "machine": machine_description(),
        "cpu_flags": cpu_flags(),
        "cores_used": thread_count(),
        "onnxruntime": onnxruntime.__version__,
        "tensorflow": tf.__version__,
        "size": size,
        "repeats": repeats,
        "warmup": warmup,
        "calibration_images": calibration_images,
        "matmul_runs": matmul_runs,
        "matmul_gflops": rate,
        "matmul_gflops_before_after": (rate_before, rate_after),
        "rows": rows,
        "end_to_end_input": f"{END_TO_END_SIZE[0]}x{END_TO_END_SIZE[1]} JPEG ({len(jpeg) / 1024:.0f} KiB)",
        "load_average": (load_before, os.getloadavg()[0]),
        "other_processes_cpu_share": others,
        "wall_seconds": wall,
    }


# --- report --------------------------------------------------------------------------


def target_checks(results: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for the issue's targets, per architecture where they apply."""
    checks = []
    for row in results["rows"]:
        name = row["name"]
        checks.append(
            (
                f"{name}: ORT FP32 >= {TARGET_VS_PREDICT}x Keras predict at batch 1",
                f"{row['ort_vs_predict_b1']:.2f}x",
                row["ort_vs_predict_b1"] >= TARGET_VS_PREDICT,
            )
        )
        checks.append(
            (
                f"{name}: ORT FP32 no slower than tf.function at batch 1 "
                f"(>= {TARGET_VS_TF_FUNCTION - NOISE:.2f}x)",
                f"{row['ort_vs_tf_function_b1']:.2f}x",
                row["ort_vs_tf_function_b1"] >= TARGET_VS_TF_FUNCTION - NOISE,
            )
        )
        for batch_size, ratio in row["int8_vs_fp32"].items():
            checks.append(
                (
                    f"{name}: INT8 >= {TARGET_INT8}x ORT FP32 at batch {batch_size}",
                    f"{ratio:.2f}x",
                    ratio >= TARGET_INT8,
                )
            )
        target = TARGET_FRACTION_DEFAULT if name == DEFAULT_ARCHITECTURE else TARGET_FRACTION_OTHERS
        checks.append(
            (
                f"{name}: ORT FP32 at batch {max(BATCHES)} >= {target:.0%} of the matmul rate",
                f"{row['fraction_of_matmul']:.0%}",
                row["fraction_of_matmul"] >= target,
            )
        )
    return checks


def _share(value: float | None) -> str:
    return "an unknown share" if value is None else f"{value:.0%}"


def format_table(results: dict) -> str:
    """Markdown: machine line, per-batch timings, ratios and compute, targets, notes."""
    lines = [
        f"Machine: {results['machine']} ({results['cpu_flags']}); ORT on {results['cores_used']} threads; "
        f"onnxruntime {results['onnxruntime']}, TensorFlow {results['tensorflow']}. "
        f"float32 matmul 2048^3 (NumPy, best of {results['matmul_runs']} at the start and at the end): "
        f"{results['matmul_gflops']:.0f} GFLOP/s ({results['matmul_gflops_before_after'][0]:.0f} / "
        f"{results['matmul_gflops_before_after'][1]:.0f}).",
        f"{results['size']} px, 21 classes, median of {results['repeats']} calls after "
        f"{results['warmup']} warm-up; "
        f"INT8 calibrated on {results['calibration_images']} demo training images; "
        f"1-minute load average {results['load_average'][0]:.2f} before, "
        f"{results['load_average'][1]:.2f} after; "
        f"other processes used {_share(results['other_processes_cpu_share'])} of the CPUs during the "
        f"{results['wall_seconds']:.0f} s run.",
        "",
        "| model | batch | " + " | ".join(ENGINE_LABELS[engine] for engine in ENGINES) + " |",
        "|---|---:|" + "---:|" * len(ENGINES),
    ]
    for row in results["rows"]:
        for batch_size, engines in row["batches"].items():
            cells = [
                f"{engines[engine]['ms']:.1f} ms ({engines[engine]['images_per_second']:.1f} img/s)"
                for engine in ENGINES
            ]
            lines.append(f"| {row['name']} | {batch_size} | " + " | ".join(cells) + " |")
    largest, picture = max(BATCHES), results["end_to_end_input"].split(" ")[0]
    lines += [
        "",
        "| model | parameters | GFLOPs/image | ORT FP32 vs predict (b1) | ORT FP32 vs tf.function (b1) "
        "| INT8 vs FP32 (b1) "
        f"| INT8 vs FP32 (b{largest}) | ORT FP32 GFLOP/s (b{largest}) | of matmul rate "
        f"| end-to-end {picture} FP32 / INT8 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        int8 = row["int8_vs_fp32"]
        lines.append(
            f"| {row['name']} | {row['parameters'] / 1e6:.2f} M | {row['gflops']:.2f} "
            f"| {row['ort_vs_predict_b1']:.2f}x "
            f"| {row['ort_vs_tf_function_b1']:.2f}x | {int8[1]:.2f}x | {int8[largest]:.2f}x "
            f"| {row['ort_fp32_gflops_per_second']:.0f} "
            f"| {row['fraction_of_matmul']:.0%} | {row['end_to_end_ms']['ort_fp32']:.0f} / "
            f"{row['end_to_end_ms']['ort_int8']:.0f} ms |"
        )
    checks = target_checks(results)
    lines += [
        "",
        f"Targets: {sum(met for *_, met in checks)} of {len(checks)} met.",
        "",
        "| target | measured | met |",
        "|---|---:|---|",
    ]
    lines += [f"| {target} | {measured} | {'yes' if met else 'no'} |" for target, measured, met in checks]
    lines += [
        "",
        "Ratios are speed-ups (time of the other / time of the first named). "
        "ORT timings fetch both outputs (mask and "
        "probabilities); Keras returns logits only. End-to-end: "
        f"{results['end_to_end_input']} bytes -> decode -> resize -> session.run (mask) -> "
        "mask at 640x480 -> PNG bytes, median.",
        INT8_ACCURACY_NOTE,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--architectures", default=None, help="comma-separated names (default: all registered, UNet first)"
    )
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed calls per case, median reported (default 7, --quick 2)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 repeats, 1 warm-up, 4 calibration images: a smoke run"
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logger.setLevel(logging.INFO)
    names = (
        [name.strip() for name in arguments.architectures.split(",") if name.strip()]
        if arguments.architectures
        else None
    )
    repeats = arguments.repeats if arguments.repeats is not None else (2 if arguments.quick else 7)
    options = {"warmup": 1, "calibration_images": 4, "matmul_runs": 2} if arguments.quick else {}
    results = run(names, arguments.size, repeats, **options)
    sys.stdout.write(format_table(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
