"""Compare members and their ensemble on one image: masks, per-image mIoU, disagreement.

The members run on the same pre-processed square (they share input size and resize
mode, as ensembles require); the ensemble is ``ensembles.combine`` of their
probabilities, so the Compare page shows exactly what a saved ensemble would predict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from cocoseg.models.metrics import accumulate, empty_matrix, mean_iou
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.data.geometry import undo_mask
from cocoseg.pipeline.data.images import read_rgb
from cocoseg.pipeline.data.labels import LabelMap
from cocoseg.pipeline.data.masks import semantic_mask
from cocoseg.pipeline.data.registry import cached_split
from cocoseg.pipeline.inference.ensembles import check_members, combine, member_weights
from cocoseg.pipeline.inference.predictor import Predictor
from cocoseg.pipeline.inference.uploads import load_upload


@dataclasses.dataclass
class Comparison:
    """Everything the Compare page shows for one image.

    Attributes:
        masks: title -> class-index mask at the image's size (members, then ``ensemble``).
        ious: title -> mIoU against the truth on this image (None without truth).
        disagreement: True where the members do not all predict the same class.
        truth: the ground-truth mask, when the image comes from a dataset.
    """

    masks: dict[str, np.ndarray]
    ious: dict[str, float | None]
    disagreement: np.ndarray
    truth: np.ndarray | None
    label_map: LabelMap
    weights: list[float]


def image_miou(truth: np.ndarray, mask: np.ndarray, num_classes: int) -> float | None:
    """mIoU of one mask against its truth (classes absent from both left out)."""
    matrix = empty_matrix(num_classes)
    accumulate(matrix, truth, mask)
    return mean_iou(matrix)


def compare(
    workspace: Workspace,
    members: Sequence[str],
    strategy: str,
    image: np.ndarray,
    truth: np.ndarray | None = None,
) -> Comparison:
    """Run each member and their ``strategy`` ensemble on ``image``.

    Raises:
        EnsembleError: incompatible members or a bad strategy (as when creating an ensemble).
    """
    entries = check_members(workspace, members)
    weights = member_weights(entries, strategy)
    predictors = [Predictor(entry) for entry in entries]
    square = predictors[0].prepare(image)[None]
    height, width = image.shape[:2]
    resize = entries[0].resize
    probabilities, masks = [], {}
    for entry, predictor in zip(entries, predictors):
        mask, member_probabilities = predictor.run_batch(square, probabilities=True)
        probabilities.append(member_probabilities)
        masks[entry.name] = undo_mask(mask[0], width, height, resize)
    combined, _scores = combine(probabilities, strategy, weights)
    masks["ensemble"] = undo_mask(combined[0], width, height, resize)
    member_masks = np.stack([masks[entry.name] for entry in entries])
    disagreement = (member_masks != member_masks[0]).any(axis=0)
    label_map = entries[0].label_map()
    ious = {
        title: (image_miou(truth, mask, label_map.num_classes) if truth is not None else None)
        for title, mask in masks.items()
    }
    return Comparison(masks, ious, disagreement, truth, label_map, weights)


def dataset_image(
    workspace: Workspace, dataset: str, split: str, image_id: int, max_bytes: int, label_map: LabelMap
):
    """(RGB image, truth mask, file name) of one image of a registered split."""
    coco = cached_split(workspace, dataset, split, max_bytes)
    record = coco.image_by_id.get(image_id)
    if record is None:
        raise ValueError(f"no image with id {image_id} in {dataset}/{split}")
    picture = read_rgb(coco.image_path(record))
    truth = semantic_mask(coco.annotations_by_image[image_id], picture.shape[0], picture.shape[1], label_map)
    return picture, truth, record["file_name"]


def upload_image(workspace: Workspace, key) -> tuple[np.ndarray, None, str]:
    """(RGB image, no truth, display name) of an upload kept by ``uploads.store_upload``.

    Raises:
        ValueError: no upload under ``key`` (never uploaded, or expired).
    """
    upload = load_upload(workspace, key)
    if upload is None:
        raise ValueError("upload an image first (or it expired: upload it again)")
    return upload.image, None, upload.name


def split_images(workspace: Workspace, dataset: str, split: str, max_bytes: int) -> list[tuple[int, str]]:
    """(id, file name) of a split's valid images, for a picker."""
    coco = cached_split(workspace, dataset, split, max_bytes)
    return [(image["id"], image["file_name"]) for image in coco.images]


def disagreement_picture(image: np.ndarray, disagreement: np.ndarray) -> np.ndarray:
    """The image greyed out, with disagreeing pixels in red."""
    grey = image.mean(axis=2, keepdims=True).astype(np.uint8).repeat(3, axis=2) // 2 + 64
    grey[disagreement] = (230, 40, 40)
    return grey
