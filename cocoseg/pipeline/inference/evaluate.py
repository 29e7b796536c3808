"""Evaluation through the exported ONNX model, from one confusion matrix, with its protocol.

Protocol (saved with every result): the ground truth is the label map's semantic mask of
each image at its original resolution (crowd and overlap rules of the label map; 255 =
ignore, excluded); the prediction is the model's mask mapped back to that resolution
with nearest-neighbour. Pixels the model did not cover (``shorter-crop`` cuts the
sides off) count as misses of their true class. Classes absent from both truth and
prediction have no IoU or Dice (reported as n/a, left out of the means).

The matrix has one extra column, "no prediction", so rows always sum to the truth.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np

from cocoseg.models.metrics import (
    accumulate,
    empty_matrix,
    frequency_weighted_iou,
    mean_dice,
    mean_iou,
    or_none,
    per_class_dice,
    per_class_iou,
    pixel_accuracy,
)
from cocoseg.pipeline.core.workspace import Workspace, atomic_write_json, check_name, now_iso, read_json
from cocoseg.pipeline.data.coco import CocoDataset
from cocoseg.pipeline.data.images import ImageError, read_rgb
from cocoseg.pipeline.data.labels import IGNORE_INDEX, LabelMap
from cocoseg.pipeline.data.masks import semantic_mask
from cocoseg.pipeline.data.registry import get_dataset, is_unlabelled, load_split
from cocoseg.pipeline.inference.model_store import ModelEntry, ModelError, get_entry, list_entries
from cocoseg.pipeline.inference.predictor import Predictor

logger = logging.getLogger(__name__)

BATCH_SIZE = 8
ProgressCallback = Callable[[int, int], None]


class EvaluationError(ValueError):
    """Evaluation cannot run (unknown dataset/split, label map does not fit the data)."""


def metrics_from_matrix(matrix: np.ndarray, class_names: list[str] | tuple[str, ...]) -> dict:
    """Every metric of a (C, C+1) confusion matrix (``cocoseg.models.metrics``); undefined: None."""
    matrix = np.asarray(matrix)
    return {
        "classes": list(class_names),
        "miou": mean_iou(matrix),
        "mean_dice": mean_dice(matrix),
        "pixel_accuracy": pixel_accuracy(matrix),
        "frequency_weighted_iou": frequency_weighted_iou(matrix),
        "per_class_iou": or_none(per_class_iou(matrix)),
        "per_class_dice": or_none(per_class_dice(matrix)),
        "pixels": int(matrix.sum()),
        "confusion_matrix": matrix.astype(np.int64).tolist(),
    }


@dataclasses.dataclass(frozen=True)
class EvaluationTarget:
    """What to evaluate on: a registered dataset split."""

    dataset: str
    split: str = "val"
    limit: int | None = None


def ground_truth_images(
    workspace: Workspace, target: EvaluationTarget, max_bytes: int
) -> tuple[CocoDataset, list[dict]]:
    """The split to score against and its images (the first ``target.limit``).

    Raises:
        EvaluationError: unknown dataset or split, unreadable file, or an unlabelled split
            (with no annotations every image would count as all background, and the mIoU
            would measure nothing).
    """
    try:
        entry = get_dataset(workspace, target.dataset)
        coco = load_split(entry, target.split, max_bytes)
    except (KeyError, ValueError) as error:
        raise EvaluationError(str(error)) from None
    if is_unlabelled(coco):
        raise EvaluationError(
            f"{target.dataset}/{target.split} is unlabelled: it has no annotations to evaluate against; "
            "pick an annotated split"
        )
    images = coco.images[: target.limit] if target.limit else coco.images
    return coco, images


def confusion_over_split(
    predictor: Predictor,
    label_map: LabelMap,
    coco: CocoDataset,
    images: list[dict],
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, int, int]:
    """Accumulate the matrix over ``images`` of ``coco`` (see ``ground_truth_images``); returns
    (matrix, images used, images skipped)."""
    matrix = empty_matrix(label_map.num_classes)
    used = skipped = 0
    for start in range(0, len(images), BATCH_SIZE):
        chunk, pictures = [], []
        for image in images[start : start + BATCH_SIZE]:
            try:
                pictures.append(read_rgb(coco.image_path(image)))
                chunk.append(image)
            except ImageError as error:
                logger.warning("evaluation skips %s", error)
                skipped += 1
        if chunk:
            for image, picture, prediction in zip(chunk, pictures, predictor.predict_many(pictures)):
                truth = semantic_mask(
                    coco.annotations_by_image[image["id"]], picture.shape[0], picture.shape[1], label_map
                )
                accumulate(matrix, truth, prediction.mask)
                used += 1
        if progress:
            progress(min(start + BATCH_SIZE, len(images)), len(images))
    return matrix, used, skipped


def protocol(entry: ModelEntry, variant: str, target: EvaluationTarget, used: int, skipped: int) -> dict:
    label_map = entry.card["label_map"]
    path, digest = entry.file_of(variant)
    return {
        "dataset": target.dataset,
        "split": target.split,
        "images": used,
        "images_skipped": skipped,
        "image_limit": target.limit,
        "resolution": "original image size (prediction resized back with nearest-neighbour)",
        "label_map": label_map["name"],
        "classes": len(label_map["classes"]),
        "ignore": f"truth pixels {IGNORE_INDEX} (crowd={label_map['crowd']}, "
        f"overlap={label_map['overlap']}) excluded; "
        "uncovered pixels count as misses; classes absent from truth and prediction are n/a",
        "model_file": path.name,
        "model_sha256": digest,
        "input_size": entry.size,
        "resize": entry.resize,
    }


def evaluation_file(entry: ModelEntry, target: EvaluationTarget, variant: str):
    check_name(target.dataset, "dataset")
    check_name(target.split, "split")
    suffix = "" if target.limit is None else f".first{target.limit}"
    return entry.evaluations_dir / f"{target.dataset}.{target.split}.{variant}{suffix}.json"


def evaluate_entry(
    workspace: Workspace,
    entry: ModelEntry,
    target: EvaluationTarget,
    max_bytes: int,
    variant: str = "fp32",
    progress: ProgressCallback | None = None,
    save: bool = True,
) -> dict:
    """Evaluate one model/ensemble variant on a split and (by default) save the result.

    The split is loaded and checked before the model, so a split that cannot be scored is
    refused without starting an inference session.
    """
    coco, images = ground_truth_images(workspace, target, max_bytes)
    predictor = Predictor(entry, variant)
    label_map = entry.label_map()
    matrix, used, skipped = confusion_over_split(predictor, label_map, coco, images, progress)
    if used == 0:
        raise EvaluationError(f"no readable images in {target.dataset}/{target.split}")
    result = {
        "model": entry.name,
        "kind": entry.kind,
        "variant": variant,
        "evaluated": now_iso(),
        "provider": predictor.provider,
        "protocol": protocol(entry, variant, target, used, skipped),
        **metrics_from_matrix(matrix, entry.label_map().class_names),
    }
    if save:
        atomic_write_json(evaluation_file(entry, target, variant), result)
    return result


def evaluate(
    workspace: Workspace,
    name: str,
    max_bytes: int,
    dataset: str | None = None,
    split: str = "val",
    variant: str = "fp32",
    limit: int | None = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """``cocoseg evaluate``: by name, on the model's own dataset unless another is given."""
    entry = get_entry(workspace, name)
    dataset = dataset or entry.dataset
    if not dataset:
        raise EvaluationError(f"{name} does not record its dataset; pass --dataset")
    return evaluate_entry(
        workspace, entry, EvaluationTarget(dataset, split, limit), max_bytes, variant, progress
    )


def saved_evaluations(entry: ModelEntry) -> list[dict]:
    if not entry.evaluations_dir.is_dir():
        return []
    results = []
    for path in sorted(entry.evaluations_dir.glob("*.json")):
        result = read_json(path)
        if isinstance(result, dict) and "miou" in result and "protocol" in result:
            results.append(result)
    return results


def leaderboard(workspace: Workspace, dataset: str | None = None, split: str | None = None) -> list[dict]:
    """Saved evaluations of every model and ensemble, best mIoU first within each dataset/split.

    Results from a model file that was replaced since (hash differs) are marked stale.
    """
    rows = []
    for entry in list_entries(workspace):
        for result in saved_evaluations(entry):
            where = result["protocol"]
            if (dataset and where["dataset"] != dataset) or (split and where["split"] != split):
                continue
            try:
                current = entry.file_of(result["variant"])[1]
            except ValueError:
                current = None
            rows.append(
                {
                    "model": entry.name,
                    "kind": entry.kind,
                    "variant": result["variant"],
                    "dataset": where["dataset"],
                    "split": where["split"],
                    "images": where["images"],
                    "image_limit": where.get("image_limit"),
                    "label_map": where["label_map"],
                    "miou": result["miou"],
                    "mean_dice": result["mean_dice"],
                    "pixel_accuracy": result["pixel_accuracy"],
                    "frequency_weighted_iou": result["frequency_weighted_iou"],
                    "evaluated": result["evaluated"],
                    "stale": current != where["model_sha256"],
                    "members": entry.card.get("members"),
                }
            )
    return sorted(rows, key=lambda row: (row["dataset"], row["split"], -(row["miou"] or 0.0), row["model"]))


def result_key(model: str, variant: str, image_limit: int | None) -> str:
    """A saved evaluation's key among one split's (model names cannot contain '|')."""
    return f"{model}|{variant}|{image_limit or ''}"


def split_results(workspace: Workspace, dataset: str, split: str) -> dict[str, dict]:
    """Every saved evaluation on one split, by ``result_key`` (each model's files read once)."""
    results = {}
    for entry in list_entries(workspace):
        for result in saved_evaluations(entry):
            where = result["protocol"]
            if (where["dataset"], where["split"]) == (dataset, split):
                results[result_key(entry.name, result["variant"], where.get("image_limit"))] = result
    return results


def is_reference(variant: str, image_limit: int | None) -> bool:
    """FP32 on the whole split: the result that compares models fairly (and that ensembles weigh by)."""
    return variant == "fp32" and not image_limit


def reference_evaluations(workspace: Workspace, names: list[str]) -> list[tuple[ModelEntry, dict]]:
    """(entry, result) of every reference result (``is_reference``) of the named models, on any
    split; a name that is not a model (any more) is skipped."""
    found = []
    for name in names:
        try:
            entry = get_entry(workspace, name)
        except ModelError:
            continue
        for result in saved_evaluations(entry):
            if is_reference(result["variant"], result["protocol"].get("image_limit")):
                found.append((entry, result))
    return found


def unevaluated(workspace: Workspace, rows: list[dict]) -> list[ModelEntry]:
    """The models and ensembles that have no reference result among ``rows`` (one split's leaderboard)."""
    done = {row["model"] for row in rows if is_reference(row["variant"], row["image_limit"])}
    return [entry for entry in list_entries(workspace) if entry.name not in done]


@dataclasses.dataclass
class IouTable:
    """Per-class IoU of several results, one row each, for a heatmap.

    The first result fixes the classes; a later one with other classes (another label map)
    is left out, since its columns would not line up.
    """

    labels: list[str] = dataclasses.field(default_factory=list)
    classes: list[str] = dataclasses.field(default_factory=list)
    values: list[list[float | None]] = dataclasses.field(default_factory=list)

    def add(self, label: str, result: dict) -> None:
        self.classes = self.classes or list(result["classes"])
        if list(result["classes"]) == self.classes:
            self.labels.append(label)
            self.values.append(result["per_class_iou"])


def leaderboard_ious(rows: list[dict], results: dict[str, dict]) -> IouTable:
    """The per-class IoU of one split's leaderboard ``rows`` (``results`` from ``split_results``)."""
    table = IouTable()
    for row in rows:
        result = results.get(result_key(row["model"], row["variant"], row["image_limit"]))
        if result:
            table.add(f"{row['model']} ({row['variant']})", result)
    return table


def protocol_text(result: dict | None) -> str:
    """One paragraph that says how a result was measured (empty without a result)."""
    if not result:
        return ""
    where = result["protocol"]
    return (
        f"Protocol: {where['dataset']}/{where['split']}, {where['images']} images at {where['resolution']}; "
        f"label map {where['label_map']} ({where['classes']} classes); {where['ignore']}. "
        f"Model file {where['model_file']} sha256 {where['model_sha256'][:12]}…, "
        f"input {where['input_size']} px {where['resize']}."
    )
