"""``cocoseg export RUN``: a trained checkpoint -> ``models/<run>/`` served by ONNX Runtime.

Steps, all inside a hidden ``.partial-*`` folder that is renamed into place only at the
end (a failed export publishes nothing and keeps the previous version):

1. Keras checkpoint -> ONNX with tf2onnx (uint8 ``image`` input, dynamic batch), plus
   the cocoseg head (softmax ``probabilities`` and ArgMax ``mask``), ``onnx.checker``.
2. Parity on real validation images of the run's prepared set: Keras vs ORT
   probabilities within 1e-4 and identical argmax on >= 99.9 % of pixels, or no model.
3. Variants: INT8 (static QDQ, calibrated on training images) for CPUs and FP16 for
   GPUs, each evaluated against FP32 on the validation split at original resolution;
   a variant losing more than 1 mIoU point is marked not recommended.
4. The card ``model.json`` and the FP32/variant evaluations.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cocoseg.pipeline.core.cache import sha256_of
from cocoseg.pipeline.core.tf_runtime import tensorflow
from cocoseg.pipeline.core.workspace import Workspace, atomic_write_json, now_iso
from cocoseg.pipeline.inference.evaluate import EvaluationTarget, evaluate_entry, evaluation_file
from cocoseg.pipeline.inference.model_store import (
    CARD_FORMAT,
    VARIANT_FILES,
    ModelEntry,
    ModelError,
    partial_folder,
    publish,
)
from cocoseg.pipeline.inference.onnx_graph import (
    INPUT_NAME,
    add_segmentation_head,
    convert_fp16,
    head_node_names,
)
from cocoseg.pipeline.jobs.registry import RunError, get_run
from cocoseg.pipeline.prepare.sets import PrepareError, find_prepared

logger = logging.getLogger(__name__)

OPSET = 17
PARITY_TOLERANCE = 1e-4
PARITY_AGREEMENT = 0.999
RECOMMENDED_MAX_LOSS_POINTS = 1.0
CHECKPOINTS = ("best", "last")
ProgressCallback = Callable[[str], None]


class ExportError(ModelError):
    """The run cannot be exported, or its ONNX model failed a check (nothing was published)."""


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What to export and which checks and variants to make.

    Attributes:
        run: run folder name.
        checkpoint: ``best`` (highest validation mIoU) or ``last``.
        variants: any of ``int8``, ``fp16``.
        parity_images: validation images for the Keras/ORT parity check.
        calibration_images: training images that calibrate INT8 ranges.
        evaluation_limit: validation images for the variant deltas (None: all).
    """

    run: str
    checkpoint: str = "best"
    variants: tuple[str, ...] = ("int8", "fp16")
    parity_images: int = 16
    calibration_images: int = 32
    evaluation_limit: int | None = None

    def __post_init__(self) -> None:
        if self.checkpoint not in CHECKPOINTS:
            raise ExportError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {self.checkpoint!r}")
        unknown = sorted(set(self.variants) - {"int8", "fp16"})
        if unknown:
            raise ExportError(f"unknown variant(s) {', '.join(unknown)}; choose from int8, fp16")
        if self.parity_images < 1 or self.calibration_images < 1:
            raise ExportError("parity_images and calibration_images must be at least 1")


def _sample_images(prepared, split: str, count: int) -> np.ndarray:
    """The first ``count`` prepared images of a split (uint8, model size)."""
    from cocoseg.pipeline.training.input import evaluation_dataset

    batches = []
    for images, _masks in evaluation_dataset(prepared, split, batch_size=min(count, 16)):
        batches.append(images.numpy())
        if sum(len(batch) for batch in batches) >= count:
            break
    if not batches:
        raise ExportError(f"the prepared set {prepared.name} has no {split} images to check the export with")
    return np.concatenate(batches)[:count]


def to_onnx(keras_model, size: int, num_classes: int):
    """Convert a logits model to the cocoseg interface (``onnx.ModelProto``)."""
    import tf2onnx

    tf = tensorflow()
    signature = (tf.TensorSpec((None, size, size, 3), tf.uint8, name=INPUT_NAME),)
    model, _ = tf2onnx.convert.from_keras(keras_model, input_signature=signature, opset=OPSET)
    return add_segmentation_head(model, size, num_classes)


def _float32_policies(node):
    """A serialised model with every mixed dtype policy (``mixed_float16``, ``mixed_bfloat16``) made
    ``float32``; input dtypes (uint8) and float32 layers are left as they are."""
    if isinstance(node, list):
        return [_float32_policies(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") == "DTypePolicy" and str(node.get("config", {}).get("name", "")).startswith(
        "mixed_"
    ):
        return {**node, "config": {**node["config"], "name": "float32"}}
    return {
        key: "float32"
        if key == "dtype" and isinstance(value, str) and value.startswith("mixed_")
        else _float32_policies(value)
        for key, value in node.items()
    }


def float32_model(keras_model):
    """``keras_model`` computing in float32: itself when it already does, else a float32 rebuild of its
    architecture holding the same weights.

    A run trained under ``mixed_float16`` or ``mixed_bfloat16`` saves its layers with that policy
    (the variables are float32 either way), and converting it as is would put float16/bfloat16
    casts into the ONNX graph and miss the parity tolerance. The export is always float32; the
    parity check compares ORT against this float32 model.
    """
    import keras

    serialised = keras.saving.serialize_keras_object(keras_model)
    float32 = _float32_policies(serialised)
    if float32 == serialised:
        return keras_model
    copy = keras.saving.deserialize_keras_object(float32)
    copy.set_weights(keras_model.get_weights())
    return copy


def parity(keras_model, session, images: np.ndarray) -> dict:
    """Keras softmax vs ORT probabilities, and argmax agreement, on the same images."""
    tf = tensorflow()
    differences, agreeing, pixels = 0.0, 0, 0
    for start in range(0, len(images), 8):
        batch = images[start : start + 8]
        reference = tf.nn.softmax(keras_model(batch, training=False), axis=-1).numpy()
        mask, probabilities = session.run(["mask", "probabilities"], {INPUT_NAME: batch})
        differences = max(differences, float(np.abs(reference - probabilities).max()))
        agreeing += int((reference.argmax(axis=-1) == mask).sum())
        pixels += mask.size
    return {
        "images": int(len(images)),
        "max_abs_difference": differences,
        "argmax_agreement": agreeing / pixels,
        "tolerance": PARITY_TOLERANCE,
        "required_agreement": PARITY_AGREEMENT,
    }


def _cpu_session(path: Path):
    import onnxruntime

    from cocoseg.pipeline.inference.predictor import session_options

    return onnxruntime.InferenceSession(
        str(path), sess_options=session_options(), providers=["CPUExecutionProvider"]
    )


class _Calibration:
    """Feeds INT8 calibration one image at a time (``CalibrationDataReader`` protocol)."""

    def __init__(self, images: np.ndarray) -> None:
        self.items = iter([{INPUT_NAME: images[index : index + 1]} for index in range(len(images))])

    def get_next(self):
        return next(self.items, None)

    def rewind(self) -> None:  # not needed by MinMax calibration
        pass


def quantize_int8(source: Path, target: Path, calibration: np.ndarray) -> None:
    """Static QDQ INT8: per-channel int8 weights, uint8 activations; the head stays float."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = type("CalibrationReader", (_Calibration, CalibrationDataReader), {})(calibration)
    staged = target.with_name(".int8-staged.onnx")
    # Symbolic shape inference gives up on tf2onnx graphs and then dumps the model into
    # the current directory as a debugging aid, so it is skipped: ORT's own shape
    # inference and optimisation are enough for QDQ quantisation.
    quant_pre_process(str(source), str(staged), skip_symbolic_shape=True)
    try:
        quantize_static(
            str(staged),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=head_node_names(),
        )
    finally:
        staged.unlink(missing_ok=True)


def _validation_summary(run) -> dict:
    history = run.history()
    if not history:
        return {}
    best = max(history, key=lambda row: row["val_miou"])
    per_class = next(
        (
            event.get("per_class_iou")
            for event in reversed(run.events())
            if event.get("type") == "epoch" and event.get("epoch") == best["epoch"]
        ),
        None,
    )
    return {
        "split": "val",
        "resolution": "model input size (prepared set)",
        "best_epoch": int(best["epoch"]),
        "miou": float(best["val_miou"]),
        "val_loss": float(best["val_loss"]),
        "per_class_iou": per_class,
    }


def _base_card(name: str, run, config: dict, manifest: dict, checkpoint: str, onnx_path: Path) -> dict:
    training_keys = (
        "model",
        "model_options",
        "epochs",
        "batch_size",
        "learning_rate",
        "optimizer",
        "schedule",
        "loss",
        "sampling",
        "threshold",
        "augment",
        "seed",
        "init_from",
        "freeze_encoder_epochs",
        "precision",  # the policy the run trained in (the ONNX model is float32 whatever it was)
        "precision_reason",
    )
    return {
        "format": CARD_FORMAT,
        "kind": "exported",
        "name": name,
        "created": now_iso(),
        "file": onnx_path.name,
        "sha256": sha256_of(onnx_path),
        "bytes": onnx_path.stat().st_size,
        "opset": OPSET,
        "input": {
            "name": INPUT_NAME,
            "dtype": "uint8",
            "layout": "NHWC",
            "size": manifest["config"]["size"],
            "resize": manifest["config"]["resize"],
        },
        "outputs": {
            "mask": "uint8 (batch, size, size) class index",
            "probabilities": "float32 (batch, size, size, classes) softmax",
        },
        "label_map": manifest["label_map"],
        "source": {
            "run": run.name,
            "checkpoint": checkpoint,
            "prepared": config.get("prepared_folder"),
            "dataset": manifest["config"]["dataset"],
            "parent": (config.get("parent") or {}).get("run"),  # lineage of a fine-tuned run
        },
        "training": {key: config.get(key) for key in training_keys},
        "validation": _validation_summary(run),
        "variants": {},
    }


def _variant_record(folder: Path, variant: str, fp32: dict, result: dict, device: str) -> dict:
    path = folder / VARIANT_FILES[variant]
    loss = (
        (fp32["miou"] - result["miou"]) * 100
        if fp32["miou"] is not None and result["miou"] is not None
        else None
    )
    return {
        "file": path.name,
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
        "device": device,
        "miou": result["miou"],
        "fp32_miou": fp32["miou"],
        "miou_delta_points": None if loss is None else -loss,
        "recommended": loss is not None and loss <= RECOMMENDED_MAX_LOSS_POINTS,
        "evaluated_on": (
            f"{result['protocol']['dataset']}/{result['protocol']['split']}, "
            f"{result['protocol']['images']} images"
        ),
    }


def export_run(
    workspace: Workspace, config: ExportConfig, max_bytes: int, progress: ProgressCallback | None = None
) -> ModelEntry:
    """Export a run to ``models/<run>/`` (replacing an older export of it).

    Raises:
        ExportError: no checkpoint, prepared set gone, or a failed parity check.
    """
    report = progress or (lambda step: logger.info("%s", step))
    try:
        run = get_run(workspace, config.run)
    except RunError as error:
        raise ExportError(str(error)) from None
    checkpoint = run.best_checkpoint if config.checkpoint == "best" else run.last_checkpoint
    if not checkpoint.is_file():
        raise ExportError(
            f"run {run.name} has no {config.checkpoint} checkpoint yet; let it finish an epoch first"
        )
    run_config = run.config()
    try:
        prepared = find_prepared(workspace, run_config["prepared_folder"])
    except (PrepareError, KeyError) as error:
        raise ExportError(f"the run's prepared set is gone ({error}); prepare it again to export") from None
    manifest = prepared.manifest
    size, num_classes = manifest["config"]["size"], len(manifest["label_map"]["classes"])
    with workspace.exclusive(f"export-{run.name}", f"run {run.name} is being exported by another process"):
        folder = partial_folder(workspace.models_dir, run.name)
        try:
            entry = _build(
                workspace,
                config,
                run,
                run_config,
                prepared,
                checkpoint,
                folder,
                size,
                num_classes,
                max_bytes,
                report,
            )
            publish(folder, workspace.models_dir / run.name)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return ModelEntry(workspace.models_dir / run.name, entry.card)


def _build(
    workspace, config, run, run_config, prepared, checkpoint, folder, size, num_classes, max_bytes, report
) -> ModelEntry:
    import onnx

    tensorflow()
    import keras

    from cocoseg.models import registry  # noqa: F401 - registers the custom layers checkpoints refer to

    report(f"loading {run.name}/{checkpoint.name}")
    keras_model = float32_model(keras.models.load_model(checkpoint, compile=False))
    report("converting to ONNX")
    onnx_path = folder / VARIANT_FILES["fp32"]
    onnx.save(to_onnx(keras_model, size, num_classes), str(onnx_path))
    onnx.checker.check_model(str(onnx_path))
    report("checking Keras/ONNX Runtime parity")
    check = parity(
        keras_model, _cpu_session(onnx_path), _sample_images(prepared, "val", config.parity_images)
    )
    if check["max_abs_difference"] > PARITY_TOLERANCE or check["argmax_agreement"] < PARITY_AGREEMENT:
        raise ExportError(
            f"parity check failed: max probability difference {check['max_abs_difference']:.2e} "
            f"(limit {PARITY_TOLERANCE:.0e}), argmax agreement {check['argmax_agreement']:.5f} "
            f"(need {PARITY_AGREEMENT}); the model was not published"
        )
    card = {
        **_base_card(run.name, run, run_config, prepared.manifest, config.checkpoint, onnx_path),
        "parity": check,
    }
    atomic_write_json(folder / "model.json", card)
    entry = ModelEntry(folder, card)
    target = EvaluationTarget(card["source"]["dataset"], "val", config.evaluation_limit)
    report(f"evaluating FP32 on {target.dataset}/{target.split}")
    fp32 = _evaluate_into(workspace, entry, target, "fp32", run.name, max_bytes)
    if "int8" in config.variants:
        report("quantising to INT8")
        quantize_int8(
            onnx_path,
            folder / VARIANT_FILES["int8"],
            _sample_images(prepared, "train", config.calibration_images),
        )
        _add_variant(workspace, entry, target, "int8", fp32, "CPU", run.name, max_bytes)
    if "fp16" in config.variants:
        report("converting to FP16")
        convert_fp16(onnx_path, folder / VARIANT_FILES["fp16"])
        _add_variant(workspace, entry, target, "fp16", fp32, "GPU", run.name, max_bytes)
    atomic_write_json(folder / "model.json", entry.card)
    return entry


def _evaluate_into(workspace, entry: ModelEntry, target, variant: str, name: str, max_bytes: int) -> dict:
    result = evaluate_entry(workspace, entry, target, max_bytes, variant, save=False)
    result["model"] = name
    atomic_write_json(evaluation_file(entry, target, variant), result)
    return result


def _add_variant(
    workspace, entry: ModelEntry, target, variant: str, fp32: dict, device: str, name: str, max_bytes: int
) -> None:
    path = entry.folder / VARIANT_FILES[variant]
    entry.card["variants"][variant] = {"file": path.name, "sha256": sha256_of(path)}
    result = _evaluate_into(workspace, entry, target, variant, name, max_bytes)
    entry.card["variants"][variant] = _variant_record(entry.folder, variant, fp32, result, device)
