"""Ensembles: several models combined into one, saved as a spec and as one fused ONNX graph.

Strategies (on each member's softmax probabilities at the shared input size):
    mean      equal weights.
    weighted  weights proportional to each member's validation mIoU (its saved FP32
              evaluation on the dataset's val split, else the mIoU in its card).
    vote      majority of the members' argmax; ties go to the lowest class index.

``ensembles/<name>/`` holds ``ensemble.json`` (the spec), ``model.onnx`` (all members
fused into one graph, so it runs as a single session) and a ``model.json`` card like a
model's. Creation checks that the fused graph gives the same masks as running the
members one by one on real validation images, or publishes nothing.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence

import numpy as np

from cocoseg.pipeline.core.cache import sha256_of
from cocoseg.pipeline.core.workspace import (
    UnsafePathError,
    Workspace,
    atomic_write_json,
    check_name,
    now_iso,
    read_json,
)
from cocoseg.pipeline.data.images import ImageError, read_rgb
from cocoseg.pipeline.data.registry import get_dataset, load_split
from cocoseg.pipeline.inference.evaluate import EvaluationTarget, evaluation_file
from cocoseg.pipeline.inference.model_store import (
    CARD_FORMAT,
    ModelEntry,
    ModelError,
    get_entry,
    name_is_taken,
    partial_folder,
    publish,
)
from cocoseg.pipeline.inference.onnx_graph import STRATEGIES, default_opset, fuse_ensemble
from cocoseg.pipeline.inference.predictor import Predictor

logger = logging.getLogger(__name__)

CHECK_IMAGES = 8
REQUIRED_AGREEMENT = 0.9999


class EnsembleError(ModelError):
    """An ensemble that cannot be made (unknown or incompatible members, bad strategy)."""


def combine(
    probabilities: Sequence[np.ndarray], strategy: str, weights: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reference combination of member probabilities (..., C) -> (mask uint8, scores float32).

    The fused ONNX graph computes the same thing; tests hold the two together.
    """
    if strategy not in STRATEGIES:
        raise EnsembleError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not probabilities:
        raise EnsembleError("an ensemble needs members")
    if strategy == "vote":
        num_classes = probabilities[0].shape[-1]
        votes = sum(np.eye(num_classes, dtype=np.float32)[member.argmax(axis=-1)] for member in probabilities)
        scores = (votes / np.float32(len(probabilities))).astype(np.float32)
    else:
        weights = normalised_weights(
            [1.0] * len(probabilities) if strategy == "mean" or weights is None else weights
        )
        scores = sum(
            np.float32(weight) * member.astype(np.float32) for weight, member in zip(weights, probabilities)
        )
    return scores.argmax(axis=-1).astype(np.uint8), scores


def normalised_weights(values: Sequence[float]) -> list[float]:
    values = [float(value) for value in values]
    if any(not np.isfinite(value) or value < 0 for value in values) or sum(values) <= 0:
        raise EnsembleError(f"weights must be non-negative with a positive sum, got {values}")
    total = sum(values)
    return [value / total for value in values]


def _member_miou(entry: ModelEntry) -> float | None:
    """The member's FP32 mIoU on its dataset's whole val split (saved evaluation, else card)."""
    dataset = entry.card.get("source", {}).get("dataset")
    saved = read_json(evaluation_file(entry, EvaluationTarget(dataset, "val"), "fp32")) if dataset else None
    if isinstance(saved, dict) and saved.get("miou") is not None:
        return float(saved["miou"])
    value = entry.card.get("validation", {}).get("miou")
    return None if value is None else float(value)


def check_members(workspace: Workspace, names: Sequence[str]) -> list[ModelEntry]:
    """Members exist and agree on classes, input size and resize mode.

    Raises:
        EnsembleError: naming the member that differs and how.
    """
    if len(names) < 2:
        raise EnsembleError("an ensemble needs at least two members")
    if len(set(names)) != len(names):
        raise EnsembleError("each member may appear only once")
    entries = [get_entry(workspace, name) for name in names]
    first = entries[0]
    for entry in entries[1:]:
        if not entry.label_map().same_classes(first.label_map()):
            raise EnsembleError(
                f"{entry.name} predicts other classes than {first.name} "
                f"(label maps {entry.card['label_map']['name']} vs {first.card['label_map']['name']}); "
                "members must share one label map"
            )
        if (entry.size, entry.resize) != (first.size, first.resize):
            raise EnsembleError(
                f"{entry.name} takes {entry.size} px ({entry.resize}) but {first.name} takes {first.size} px "
                f"({first.resize}); members must share input size and resize mode"
            )
    return entries


def member_weights(entries: Sequence[ModelEntry], strategy: str) -> list[float]:
    if strategy != "weighted":
        return [1.0 / len(entries)] * len(entries)
    scores = []
    for entry in entries:
        score = _member_miou(entry)
        if score is None or score <= 0:
            raise EnsembleError(
                f"{entry.name} has no validation mIoU to weight by; "
                f"evaluate it first: cocoseg evaluate {entry.name}"
            )
        scores.append(score)
    return normalised_weights(scores)


def _load_members(entries: Sequence[ModelEntry]):
    import onnx
    from onnx import version_converter

    models = [onnx.load(str(entry.file_of("fp32")[0])) for entry in entries]
    target = max(default_opset(model) for model in models)
    for index, model in enumerate(models):
        if default_opset(model) != target:
            try:
                models[index] = version_converter.convert_version(model, target)
            except Exception as error:  # noqa: BLE001 - the converter raises many types
                raise EnsembleError(
                    f"{entries[index].name} uses ONNX opset {default_opset(model)} "
                    f"and cannot be converted to {target}: {error}"
                ) from None
    return models


def _check_images(workspace: Workspace, entry: ModelEntry, max_bytes: int) -> list[np.ndarray]:
    """A few real validation images of the first member's dataset, at full size."""
    dataset = entry.card.get("source", {}).get("dataset", "demo")
    try:
        coco = load_split(get_dataset(workspace, dataset), "val", max_bytes)
    except ValueError as error:
        raise EnsembleError(
            f"cannot read validation images of {dataset} to check the fused graph: {error}"
        ) from None
    images = []
    for image in coco.images:
        try:
            images.append(read_rgb(coco.image_path(image)))
        except ImageError:
            continue
        if len(images) == CHECK_IMAGES:
            break
    return images


def fused_agreement(
    fused: Predictor, members: Sequence[Predictor], strategy: str, weights: Sequence[float], images
) -> dict:
    """Compare the fused graph with the members run one by one (same squares, same weights)."""
    batch = np.stack([fused.prepare(image) for image in images])
    fused_mask = fused.run_batch(batch)
    member_probabilities = [member.run_batch(batch, probabilities=True)[1] for member in members]
    reference, _scores = combine(member_probabilities, strategy, weights)
    return {
        "images": len(images),
        "pixel_agreement": float((fused_mask == reference).mean()),
        "identical": bool(np.array_equal(fused_mask, reference)),
    }


def check_ensemble_request(
    workspace: Workspace, name: str, members: Sequence[str], strategy: str
) -> list[ModelEntry]:
    """The checks that need no graph (name, strategy, members' cards), so a page answers at once
    before it starts the job that fuses; the members' entries.

    Raises:
        EnsembleError: bad name or strategy, or incompatible members.
    """
    try:
        check_name(name, "ensemble name")
    except UnsafePathError as error:
        raise EnsembleError(str(error)) from None
    if strategy not in STRATEGIES:
        raise EnsembleError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if name in members:
        raise EnsembleError("an ensemble cannot be its own member")
    entries = check_members(workspace, members)
    if name_is_taken(workspace, name) and not (workspace.ensembles_dir / name).exists():
        raise EnsembleError(f"{name} is already a model's name; choose another")
    return entries


def create_ensemble(
    workspace: Workspace, name: str, members: Sequence[str], strategy: str, max_bytes: int
) -> ModelEntry:
    """Check members, fuse them, verify the fused graph and publish ``ensembles/<name>/``.

    Raises:
        EnsembleError: bad name or strategy, incompatible members, or a failed check.
    """
    import onnx

    entries = check_ensemble_request(workspace, name, members, strategy)
    weights = member_weights(entries, strategy)
    with workspace.exclusive(f"ensemble-{name}", f"ensemble {name} is being created by another process"):
        folder = partial_folder(workspace.ensembles_dir, name)
        try:
            fused_path = folder / "model.onnx"
            onnx.save(fuse_ensemble(_load_members(entries), strategy, weights), str(fused_path))
            onnx.checker.check_model(str(fused_path))
            first = entries[0]
            spec = {
                "name": name,
                "members": list(members),
                "strategy": strategy,
                "weights": weights,
                "created": now_iso(),
            }
            card = {
                "format": CARD_FORMAT,
                "kind": "ensemble",
                "name": name,
                "created": spec["created"],
                "file": fused_path.name,
                "sha256": sha256_of(fused_path),
                "bytes": fused_path.stat().st_size,
                "input": dict(first.card["input"]),
                "outputs": first.card["outputs"],
                "label_map": first.card["label_map"],
                "source": {"dataset": first.card.get("source", {}).get("dataset"), "members": list(members)},
                "members": list(members),
                "strategy": strategy,
                "weights": weights,
                "member_sha256": {entry.name: entry.card["sha256"] for entry in entries},
                "validation": {},
                "variants": {},
            }
            entry = ModelEntry(folder, card)
            check = fused_agreement(
                Predictor(entry),
                [Predictor(member) for member in entries],
                strategy,
                weights,
                _check_images(workspace, first, max_bytes),
            )
            if check["pixel_agreement"] < REQUIRED_AGREEMENT:
                raise EnsembleError(
                    f"the fused graph disagrees with its members on {1 - check['pixel_agreement']:.4%} "
                    "of pixels; not published"
                )
            card["fused_check"] = check
            atomic_write_json(folder / "ensemble.json", spec)
            atomic_write_json(folder / "model.json", card)
            publish(folder, workspace.ensembles_dir / name)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    logger.info("ensemble %s (%s of %s) published", name, strategy, ", ".join(members))
    return ModelEntry(workspace.ensembles_dir / name, card)
