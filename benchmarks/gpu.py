"""Inference speed on a CUDA GPU: ONNX Runtime (CUDA provider, IO binding) against TensorFlow.

Same models and images as ``benchmarks/inference.py`` (default options, randomly
initialised, 21 classes, real demo validation images resized to 256 px), on GPU:

- ORT with ``CUDAExecutionProvider`` (asserted to be the provider really in use), the
  input bound on the device (``OrtValue.ortvalue_from_numpy(x, "cuda", 0)``) and both
  outputs (mask, probabilities) bound to the device, so no host copies are timed;
  the FP32 file and its FP16 variant (``cocoseg.pipeline.inference.onnx_graph.convert_fp16``, float32/uint8
  interface kept);
- TensorFlow on ``/GPU:0``: a ``tf.function(jit_compile=False)`` call of the model on
  a device-resident input, synchronised with ``tf.test.experimental.sync_devices``;
  float32, and mixed float16 (the same weights under Keras' ``mixed_float16`` policy);
- batch 1 and 8, median of N timed calls after a warm-up.

- ORT on the CPU provider of the same machine (all its cores), the baseline a user
  without a GPU gets.

Without a usable CUDA provider (``cocoseg.pipeline.inference.predictor.usable_providers``) it says
"no CUDA GPU visible: skipped" and exits 0.

A GPU machine without TensorFlow (or where only a small upload can travel) runs from
a payload made here: ``--make-payload DIR`` writes each architecture's ONNX graph with
its weights left out ("skeletons": a few hundred KB instead of 30 MB each) and a
workspace with two tiny models trained and exported on the demo data and their mean
ensemble. There, ``--payload DIR`` fills the skeletons with seeded random weights
(speed does not depend on their values), measures as above with the TensorFlow
columns empty, and checks the product's own path on the GPU for each model and the
ensemble: ``Predictor`` and ``evaluate_entry`` pick CUDA, its masks agree with the CPU
provider's, and the mIoU on the demo val split equals the one saved on the CPU; Segment's
upload path (``predict_upload`` on demo JPEGs sent as data URLs) runs on CUDA and agrees
with the CPU; Label next's ranking of the val split (``rank_split``) orders the images as
the CPU provider's does.

Usage: python -m benchmarks.gpu [--architectures unet,transunet] [--size 256] [--repeats 20]
       python -m benchmarks.gpu --make-payload DIR     (here, with TensorFlow)
       python -m benchmarks.gpu --payload DIR          (on the GPU machine)
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.inference import (
    BATCHES,
    NUM_CLASSES,
    OFFLINE_OPTIONS,
    OUTPUTS,
    SIZE,
    demo_images,
    median_seconds,
)  # noqa: E402
from cocoseg.pipeline.core.settings import DEMO_DATASET_DIR  # noqa: E402
from cocoseg.pipeline.data.images import read_rgb  # noqa: E402
from cocoseg.pipeline.inference.onnx_graph import INPUT_NAME, convert_fp16  # noqa: E402
from cocoseg.pipeline.inference.predictor import session_options, usable_providers  # noqa: E402

LIMIT_BYTES = 1024**3

logger = logging.getLogger("benchmarks.gpu")

SKIPPED = "no CUDA GPU visible: skipped"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
ENGINES = ("ort_fp32", "ort_fp16", "ort_cpu", "tf_fp32", "tf_mixed16")
ENGINE_LABELS = {
    "ort_fp32": "ORT CUDA FP32",
    "ort_fp16": "ORT CUDA FP16",
    "ort_cpu": "ORT CPU FP32 (same machine)",
    "tf_fp32": "TF GPU float32",
    "tf_mixed16": "TF GPU mixed float16",
}
SKELETON_MARK = "cocoseg-benchmark-skeleton"
SKELETON_MIN_ELEMENTS = 64  # smaller float tensors (scalars, shape helpers) keep their values
PAYLOAD_MODEL_OPTIONS = {"base_filters": 8, "depth": 3}
PAYLOAD_SEEDS = (1, 2)  # two tiny models, so the payload also holds an ensemble of them
PAYLOAD_ENSEMBLE = "payload-mean"
UPLOADS_CHECKED = 5  # demo val JPEGs sent through Segment's upload path


def gpu_name() -> str | None:
    """The first GPU's name from ``nvidia-smi``, or None when it is not there."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        completed = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in completed.stdout.splitlines() if line.strip()]
    return names[0] if completed.returncode == 0 and names else None


def provider_session(path: Path, provider: str):
    """An ORT session on ``provider``; raises unless it is really the provider in use."""
    import onnxruntime

    providers = [provider] if provider == CPU else [provider, CPU]
    session = onnxruntime.InferenceSession(str(path), sess_options=session_options(), providers=providers)
    in_use = session.get_providers()
    assert in_use[0] == provider, f"ONNX Runtime fell back to {in_use}: {provider} is not the provider in use"
    return session


def ort_seconds(session, batch: np.ndarray, repeats: int, warmup: int, device: str = "cuda") -> float:
    """Median seconds of ``run_with_iobinding`` with the input and both outputs on ``device``."""
    import onnxruntime

    binding = session.io_binding()
    binding.bind_ortvalue_input(INPUT_NAME, onnxruntime.OrtValue.ortvalue_from_numpy(batch, device, 0))
    for output in OUTPUTS:
        binding.bind_output(output, device, 0)

    def call() -> None:
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return median_seconds(call, repeats, warmup)


def tf_seconds(model, batch: np.ndarray, repeats: int, warmup: int) -> float:
    """Median seconds of a ``tf.function`` call on ``/GPU:0``, input on the device, synchronised."""
    from cocoseg.pipeline.core.tf_runtime import tensorflow

    tf = tensorflow()
    with tf.device("/GPU:0"):
        inputs = tf.identity(tf.constant(batch))
        function = tf.function(lambda images: model(images, training=False), jit_compile=False)

        def call() -> None:
            function(inputs)
            tf.test.experimental.sync_devices()

        return median_seconds(call, repeats, warmup)


# --- ONNX files: exported here, or skeletons filled on the GPU machine ---------------------


def export_architecture(name: str, size: int, folder: Path, device: str = "/CPU:0"):
    """Build ``name`` (seed 0, random weights) and write ``<name>.onnx``; returns (path, Keras model)."""
    import onnx

    from cocoseg.pipeline.core.tf_runtime import tensorflow

    tf = tensorflow()
    import keras

    from cocoseg.models.registry import build_model
    from cocoseg.pipeline.training.export import to_onnx

    keras.utils.set_random_seed(0)
    with tf.device(device):
        model = build_model(name, num_classes=NUM_CLASSES, size=size, **OFFLINE_OPTIONS.get(name, {}))
    path = folder / f"{name}.onnx"
    onnx.save(to_onnx(model, size, NUM_CLASSES), str(path))
    return path, model


def strip_weights(model):
    """The graph without the values of its large float tensors (dims kept, marked)."""
    from onnx import TensorProto

    for tensor in model.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT and int(np.prod(tensor.dims)) >= SKELETON_MIN_ELEMENTS:
            tensor.ClearField("raw_data")
            tensor.ClearField("float_data")
            tensor.doc_string = SKELETON_MARK
    return model


def fill_weights(model, seed: int = 0):
    """Seeded He-normal values for every stripped tensor, so activations stay finite."""
    from onnx import numpy_helper

    generator = np.random.default_rng(seed)
    for tensor in model.graph.initializer:
        if tensor.doc_string != SKELETON_MARK:
            continue
        shape = tuple(tensor.dims)
        fan_in = max(1, int(np.prod(shape)) // max(1, shape[0])) if len(shape) > 1 else 1
        scale = np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.1
        values = generator.normal(0.0, scale, size=shape).astype(np.float32)
        tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
    return model


def filled_files(skeleton: Path, folder: Path) -> tuple[Path, Path]:
    """FP32 and FP16 files of a skeleton, with seeded weights."""
    import onnx

    name = skeleton.name.removesuffix(".skeleton.onnx")
    fp32_path, fp16_path = folder / f"{name}.onnx", folder / f"{name}.fp16.onnx"
    model = fill_weights(onnx.load(str(skeleton)))
    onnx.checker.check_model(model)
    onnx.save(model, str(fp32_path))
    convert_fp16(fp32_path, fp16_path)
    return fp32_path, fp16_path


# --- measuring --------------------------------------------------------------------------


def measure_files(
    name: str,
    fp32_path: Path,
    fp16_path: Path,
    images: np.ndarray,
    repeats: int,
    warmup: int,
    model=None,
    mixed=None,
) -> dict:
    """Every engine at each batch size; TensorFlow columns only when Keras models are given."""
    sessions = {
        "ort_fp32": provider_session(fp32_path, CUDA),
        "ort_fp16": provider_session(fp16_path, CUDA),
        "ort_cpu": provider_session(fp32_path, CPU),
    }
    timings: dict[int, dict[str, float | None]] = {}
    for batch_size in BATCHES:
        batch = np.ascontiguousarray(images[:batch_size])
        row = {
            engine: ort_seconds(sessions[engine], batch, repeats, warmup)
            for engine in ("ort_fp32", "ort_fp16")
        }
        row["ort_cpu"] = ort_seconds(sessions["ort_cpu"], batch, max(3, repeats // 4), 1, device="cpu")
        row["tf_fp32"] = tf_seconds(model, batch, repeats, warmup) if model is not None else None
        row["tf_mixed16"] = tf_seconds(mixed, batch, repeats, warmup) if mixed is not None else None
        timings[batch_size] = row
        logger.info(
            "%s batch %d: %s",
            name,
            batch_size,
            ", ".join(
                f"{ENGINE_LABELS[engine]} {seconds * 1000:.2f} ms"
                for engine, seconds in row.items()
                if seconds is not None
            ),
        )
    return {
        "name": name,
        "providers": sessions["ort_fp32"].get_providers(),
        "batches": {
            batch_size: {
                engine: None
                if seconds is None
                else {"ms": seconds * 1000, "images_per_second": batch_size / seconds}
                for engine, seconds in row.items()
            }
            for batch_size, row in timings.items()
        },
    }


def measure_with_tensorflow(
    name: str, size: int, images: np.ndarray, repeats: int, warmup: int, folder: Path, tf_gpu: bool
) -> dict:
    import keras

    from cocoseg.models.registry import build_model

    fp32_path, model = export_architecture(name, size, folder, "/GPU:0" if tf_gpu else "/CPU:0")
    fp16_path = folder / f"{name}.fp16.onnx"
    convert_fp16(fp32_path, fp16_path)
    mixed = None
    if tf_gpu:
        from cocoseg.pipeline.core.tf_runtime import tensorflow

        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            with tensorflow().device("/GPU:0"):
                mixed = build_model(name, num_classes=NUM_CLASSES, size=size, **OFFLINE_OPTIONS.get(name, {}))
            mixed.set_weights(model.get_weights())
        finally:
            keras.mixed_precision.set_global_policy("float32")
    return measure_files(
        name, fp32_path, fp16_path, images, repeats, warmup, model if tf_gpu else None, mixed
    )


def _base(size: int, repeats: int, warmup: int) -> tuple[dict, bool]:
    report = usable_providers()
    base = {
        "gpu": gpu_name(),
        "onnxruntime": report.version,
        "usable_providers": list(report.usable),
        "size": size,
        "repeats": repeats,
        "warmup": warmup,
        "tensorflow": None,
        "tensorflow_gpu": False,
        "pipeline": None,
    }
    if CUDA not in report.usable:
        logger.warning(
            "%s (onnxruntime %s usable providers: %s)", SKIPPED, report.version, ", ".join(report.usable)
        )
        return {**base, "skipped": SKIPPED, "rows": []}, False
    return {**base, "skipped": None}, True


def run(architectures: list[str] | None = None, size: int = SIZE, repeats: int = 20, warmup: int = 5) -> dict:
    """Measure on the GPU; ``{"skipped": SKIPPED, ...}`` when ONNX Runtime has no usable CUDA provider."""
    base, usable = _base(size, repeats, warmup)
    if not usable:
        return base
    from cocoseg.models.registry import ARCHITECTURES
    from cocoseg.pipeline.core.tf_runtime import tensorflow

    tf = tensorflow()
    import keras

    names = list(architectures or ["unet"])
    unknown = [name for name in names if name not in ARCHITECTURES]
    if unknown:
        raise ValueError(f"unknown architecture(s) {', '.join(unknown)}; known: {', '.join(ARCHITECTURES)}")
    tf_gpu = bool(tf.config.list_physical_devices("GPU"))
    if not tf_gpu:
        logger.warning(
            "TensorFlow sees no GPU (CPU-only build or missing CUDA libraries): TensorFlow columns left empty"
        )
    images = demo_images("val2017", max(BATCHES), size)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cocoseg-gpu-bench-") as folder:
        for name in names:
            rows.append(measure_with_tensorflow(name, size, images, repeats, warmup, Path(folder), tf_gpu))
            keras.backend.clear_session()
            gc.collect()
    return {**base, "tensorflow": tf.__version__, "tensorflow_gpu": tf_gpu, "rows": rows}


# --- payload for a GPU machine without TensorFlow ----------------------------------------


def make_payload(folder: Path, architectures: list[str], size: int = SIZE) -> None:
    """Skeletons of ``architectures`` and a workspace with one tiny exported model (needs TensorFlow)."""
    import onnx

    from cocoseg.pipeline.core.workspace import Workspace
    from cocoseg.pipeline.inference.ensembles import create_ensemble
    from cocoseg.pipeline.inference.evaluate import EvaluationTarget, evaluate_entry
    from cocoseg.pipeline.prepare.config import PrepareConfig
    from cocoseg.pipeline.prepare.writer import prepare
    from cocoseg.pipeline.training.config import TrainConfig
    from cocoseg.pipeline.training.export import ExportConfig, export_run
    from cocoseg.pipeline.training.loop import run as train

    skeletons = folder / "skeletons"
    skeletons.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cocoseg-gpu-payload-") as scratch:
        for name in architectures:
            path, _ = export_architecture(name, size, Path(scratch))
            onnx.save(strip_weights(onnx.load(str(path))), str(skeletons / f"{name}.skeleton.onnx"))
    workspace = Workspace(folder / "workspace").ensure()
    prepared = prepare(
        workspace, PrepareConfig("demo", labels="voc21", size=128, shards=2, workers=2), LIMIT_BYTES
    )
    exported = []
    for seed in PAYLOAD_SEEDS:
        config = TrainConfig(
            prepared.name,
            model="unet",
            model_options=PAYLOAD_MODEL_OPTIONS,
            epochs=2,
            batch_size=8,
            learning_rate=3e-3,
            augment=False,
            seed=seed,
        )
        run_name = train(workspace, config).folder.name
        exported.append(export_run(workspace, ExportConfig(run_name), LIMIT_BYTES).name)
    ensemble = create_ensemble(workspace, PAYLOAD_ENSEMBLE, exported, "mean", LIMIT_BYTES)
    target = EvaluationTarget(ensemble.card["source"]["dataset"], "val", None)
    # The ensemble's CPU figure, saved as export saves each model's, for the GPU run to compare against.
    evaluate_entry(workspace, ensemble, target, LIMIT_BYTES)
    for bulky in ("prepared", "runs", "cache"):
        shutil.rmtree(workspace.root / bulky, ignore_errors=True)


def cpu_predictor(entry, variant: str = "fp32"):
    """The product's ``Predictor`` for ``entry``, its session opened on the CPU provider (the baseline)."""
    from cocoseg.pipeline.inference.predictor import Predictor, load_session

    predictor = Predictor(entry, variant)
    path, digest = entry.file_of(variant)
    predictor.session = load_session(path, digest, [CPU])
    return predictor


def pipeline_check(workspace_root: Path) -> list[dict]:
    """The product's path on the GPU for every model in the payload's workspace."""
    from benchmarks.inference import END_TO_END_SIZE, demo_jpeg
    from cocoseg.pipeline.core.workspace import Workspace
    from cocoseg.pipeline.data.images import decode_rgb
    from cocoseg.pipeline.data.rendering import mask_png
    from cocoseg.pipeline.inference.evaluate import EvaluationTarget, evaluate_entry, saved_evaluations
    from cocoseg.pipeline.inference.model_store import list_entries
    from cocoseg.pipeline.inference.predictor import Predictor

    workspace = Workspace(workspace_root)
    jpeg = demo_jpeg(*END_TO_END_SIZE)
    paths = sorted((DEMO_DATASET_DIR / "val2017").glob("*.jpg"))
    images = [read_rgb(path) for path in paths]
    checks = []
    for entry in list_entries(workspace):
        for variant in [name for name in entry.variants() if name != "int8"]:  # INT8 is CPU-first by design
            gpu, cpu = Predictor(entry, variant), cpu_predictor(entry, variant)
            agreement = [
                float(np.mean(a.mask == b.mask))
                for a, b in zip(gpu.predict_many(images), cpu.predict_many(images))
            ]

            def end_to_end(predictor) -> float:
                return median_seconds(lambda: mask_png(predictor.predict(decode_rgb(jpeg)).mask), 20, 3)

            saved = next(
                (
                    result
                    for result in saved_evaluations(entry)
                    if result.get("variant") == variant
                    and result.get("protocol", {}).get("images") == len(paths)
                ),
                None,
            )
            target = EvaluationTarget(entry.card["source"]["dataset"], "val", None)
            result = evaluate_entry(workspace, entry, target, LIMIT_BYTES, variant, save=False)
            checks.append(
                {
                    "model": entry.name,
                    "variant": variant,
                    "provider": gpu.provider,
                    "cpu_provider": cpu.provider,
                    "images": len(images),
                    "mean_pixel_agreement": float(np.mean(agreement)),
                    "min_pixel_agreement": float(min(agreement)),
                    "end_to_end_ms_gpu": end_to_end(gpu) * 1000,
                    "end_to_end_ms_cpu": end_to_end(cpu) * 1000,
                    "evaluation_provider": result["provider"],
                    "miou_gpu": result["miou"],
                    "miou_saved_cpu": None if saved is None else saved["miou"],
                }
            )
            logger.info("pipeline check %s", checks[-1])
    return checks


def upload_check(workspace_root: Path) -> list[dict]:
    """Segment's server path for each model's FP32 (the data URL decoded, the upload kept, the prediction
    and its layer PNG: ``predict_upload``), against the CPU provider on the same decoded pictures."""
    import base64

    from cocoseg.pipeline.core.settings import get_settings
    from cocoseg.pipeline.core.workspace import Workspace
    from cocoseg.pipeline.data.images import decode_upload
    from cocoseg.pipeline.inference.model_store import list_entries
    from cocoseg.pipeline.inference.upload_predictions import predict_upload
    from cocoseg.pipeline.inference.uploads import store_upload

    workspace, settings = Workspace(workspace_root), get_settings()
    uploads = []
    for path in sorted((DEMO_DATASET_DIR / "val2017").glob("*.jpg"))[:UPLOADS_CHECKED]:
        contents = "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()
        upload = decode_upload(contents, path.name, settings.max_upload_bytes, settings.max_upload_pixels)
        uploads.append((store_upload(workspace, upload), upload.image))
    checks = []
    for entry in list_entries(workspace):
        cpu = cpu_predictor(entry)
        shown = [predict_upload(workspace, key, entry.name) for key, _image in uploads]
        agreement = [
            float(np.mean(result.mask == cpu.predict(image).mask))
            for result, (_key, image) in zip(shown, uploads)
        ]
        checks.append(
            {
                "model": entry.name,
                "providers": sorted({result.provider for result in shown}),
                "uploads": len(shown),
                "mean_pixel_agreement": float(np.mean(agreement)),
                "median_total_ms": float(np.median([result.total_seconds for result in shown])) * 1000,
                "median_inference_ms": float(np.median([result.inference_seconds for result in shown]))
                * 1000,
            }
        )
        logger.info("upload check %s", checks[-1])
    return checks


def ranking_check(workspace_root: Path) -> list[dict]:
    """Label next's scoring (``rank_split``: batched probabilities; an ensemble's members one by one) on the
    GPU and on the CPU provider, each in its own copy of the workspace."""
    from cocoseg.pipeline.core.workspace import Workspace
    from cocoseg.pipeline.inference import predictor as predictor_module
    from cocoseg.pipeline.inference.model_store import list_entries
    from cocoseg.pipeline.inference.ranking import rank_split

    checks = []
    with tempfile.TemporaryDirectory(prefix="cocoseg-gpu-ranking-") as scratch:
        roots = {}
        for device in ("gpu", "cpu"):  # each its own copy without score caches, so both really score
            roots[device] = Path(scratch) / device
            shutil.copytree(workspace_root, roots[device], ignore=shutil.ignore_patterns("cache"))
        for entry in list_entries(Workspace(workspace_root)):
            by = "disagreement" if entry.kind == "ensemble" else "entropy"
            dataset = entry.card["source"]["dataset"]
            rankings, seconds = {}, {}
            for device, root in roots.items():
                chosen = predictor_module.choose_providers
                if device == "cpu":  # benchmark-only: every Predictor the ranking makes opens on the CPU
                    predictor_module.choose_providers = lambda variant="fp32": [CPU]
                try:
                    started = time.perf_counter()
                    rankings[device] = rank_split(
                        Workspace(root), entry.name, dataset, "val", LIMIT_BYTES, by
                    )
                    seconds[device] = time.perf_counter() - started
                finally:
                    predictor_module.choose_providers = chosen
            gpu_order = [row.file_name for row in rankings["gpu"].ordered()]
            cpu_order = [row.file_name for row in rankings["cpu"].ordered()]
            cpu_scores = {row.file_name: row.score(by) for row in rankings["cpu"].rows}
            checks.append(
                {
                    "model": entry.name,
                    "by": by,
                    "images": len(gpu_order),
                    "gpu_seconds": seconds["gpu"],
                    "cpu_seconds": seconds["cpu"],
                    "same_order": gpu_order == cpu_order,
                    "top10_shared": len(set(gpu_order[:10]) & set(cpu_order[:10])),
                    "max_score_difference": max(
                        abs(row.score(by) - cpu_scores[row.file_name]) for row in rankings["gpu"].rows
                    ),
                }
            )
            logger.info("ranking check %s", checks[-1])
    return checks


def run_payload(folder: Path, repeats: int = 20, warmup: int = 5) -> dict:
    """Measure the payload's skeletons on the GPU and run the pipeline check."""
    base, usable = _base(SIZE, repeats, warmup)
    if not usable:
        return base
    images = demo_images("val2017", max(BATCHES), SIZE)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cocoseg-gpu-bench-") as scratch:
        for skeleton in sorted((folder / "skeletons").glob("*.skeleton.onnx")):
            fp32_path, fp16_path = filled_files(skeleton, Path(scratch))
            rows.append(
                measure_files(
                    skeleton.name.removesuffix(".skeleton.onnx"),
                    fp32_path,
                    fp16_path,
                    images,
                    repeats,
                    warmup,
                )
            )
            gc.collect()
    workspace = folder / "workspace"
    return {
        **base,
        "rows": rows,
        "pipeline": pipeline_check(workspace),
        "uploads": upload_check(workspace),
        "ranking": ranking_check(workspace),
    }


# --- report -----------------------------------------------------------------------------


def format_table(results: dict) -> str:
    gpu = results["gpu"] or "no nvidia-smi"
    if results["skipped"]:
        hint = (
            (
                f" nvidia-smi sees {results['gpu']}, but ONNX Runtime's CUDA provider did not load: "
                "check that the "
                "onnxruntime-gpu wheel's CUDA and cuDNN libraries are installed."
            )
            if results["gpu"]
            else ""
        )
        return (
            f"{results['skipped']} (GPU: {gpu}; onnxruntime {results['onnxruntime']} usable providers: "
            f"{', '.join(results['usable_providers']) or 'none'}).{hint}"
        )
    tensorflow = (
        f"TensorFlow {results['tensorflow']}{'' if results['tensorflow_gpu'] else ' (sees no GPU)'}"
        if results["tensorflow"]
        else "TensorFlow not installed here (columns n/a)"
    )
    lines = [
        f"GPU: {gpu}; onnxruntime {results['onnxruntime']} "
        f"usable providers {', '.join(results['usable_providers'])}; "
        f"CUDA asserted in use; {tensorflow}.",
        f"{results['size']} px, 21 classes, median of {results['repeats']} calls after "
        f"{results['warmup']} warm-up; ORT with IO "
        "binding (input and both outputs on the device), "
        "TensorFlow tf.function on a device-resident input, synchronised.",
        "",
        "| model | batch | "
        + " | ".join(ENGINE_LABELS[engine] for engine in ENGINES)
        + " | CUDA FP32 vs CPU | CUDA FP32 vs TF float32 | FP16 vs FP32 (CUDA) |",
        "|---|---:|" + "---:|" * (len(ENGINES) + 3),
    ]
    for row in results["rows"]:
        for batch_size, engines in row["batches"].items():
            cells = [
                "n/a"
                if engines[engine] is None
                else f"{engines[engine]['ms']:.2f} ms ({engines[engine]['images_per_second']:.0f} img/s)"
                for engine in ENGINES
            ]
            versus_cpu = f"{engines['ort_cpu']['ms'] / engines['ort_fp32']['ms']:.1f}x"
            versus_tf = (
                "n/a"
                if engines["tf_fp32"] is None
                else f"{engines['tf_fp32']['ms'] / engines['ort_fp32']['ms']:.2f}x"
            )
            fp16 = f"{engines['ort_fp32']['ms'] / engines['ort_fp16']['ms']:.2f}x"
            lines.append(
                f"| {row['name']} | {batch_size} | "
                + " | ".join(cells)
                + f" | {versus_cpu} | {versus_tf} | {fp16} |"
            )
    if results.get("pipeline"):
        lines += [
            "",
            "Product path (Predictor / evaluate_entry) on the demo val split:",
            "",
            "| model | variant | provider | pixels agreeing with CPU (mean / min) "
            "| 640x480 JPEG -> mask PNG, GPU / CPU "
            "| val mIoU on GPU | saved at export (CPU) |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for check in results["pipeline"]:
            saved = "n/a" if check["miou_saved_cpu"] is None else f"{check['miou_saved_cpu']:.6f}"
            lines.append(
                f"| {check['model']} | {check['variant']} | {check['provider']} "
                f"(evaluation: {check['evaluation_provider']}) "
                f"| {check['mean_pixel_agreement'] * 100:.3f} % / {check['min_pixel_agreement'] * 100:.3f} % "
                f"| {check['end_to_end_ms_gpu']:.1f} / {check['end_to_end_ms_cpu']:.1f} ms "
                f"| {check['miou_gpu']:.6f} | {saved} |"
            )
    if results.get("uploads"):
        lines += [
            "",
            f"Segment's upload path (predict_upload), {results['uploads'][0]['uploads']} demo val JPEGs, "
            "FP32:",
            "",
            "| model | provider | pixels agreeing with CPU (mean) | request ms (median) "
            "| inference ms (median) |",
            "|---|---|---:|---:|---:|",
        ]
        for check in results["uploads"]:
            lines.append(
                f"| {check['model']} | {', '.join(check['providers'])} "
                f"| {check['mean_pixel_agreement'] * 100:.3f} % "
                f"| {check['median_total_ms']:.1f} | {check['median_inference_ms']:.1f} |"
            )
    if results.get("ranking"):
        lines += [
            "",
            "Label next's ranking (rank_split) of the demo val split, GPU against the CPU provider:",
            "",
            "| model | score | images | GPU s | CPU s | same order | top 10 shared "
            "| largest score difference |",
            "|---|---|---:|---:|---:|---|---:|---:|",
        ]
        for check in results["ranking"]:
            lines.append(
                f"| {check['model']} | {check['by']} | {check['images']} | {check['gpu_seconds']:.2f} "
                f"| {check['cpu_seconds']:.2f} | {'yes' if check['same_order'] else 'no'} "
                f"| {check['top10_shared']} | {check['max_score_difference']:.2e} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architectures", default=None, help="comma-separated names (default: unet)")
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--make-payload", type=Path, default=None, help="write skeletons and a tiny workspace here"
    )
    parser.add_argument(
        "--payload", type=Path, default=None, help="measure from a payload made by --make-payload"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logger.setLevel(logging.INFO)
    names = (
        [name.strip() for name in arguments.architectures.split(",") if name.strip()]
        if arguments.architectures
        else None
    )
    if arguments.make_payload:
        make_payload(arguments.make_payload, names or ["unet"], arguments.size)
        return 0
    results = (
        run_payload(arguments.payload, arguments.repeats)
        if arguments.payload
        else run(names, arguments.size, arguments.repeats)
    )
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2, default=str))
    sys.stdout.write(format_table(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
