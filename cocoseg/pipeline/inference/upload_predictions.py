"""One upload through one model or ensemble, and the files a user downloads of the result.

The Segment page's work without its layout. The upload is read back by its key
(``uploads``), the mask is kept there beside it, and every download is built from that
kept mask, so what is downloaded is what was shown. The class layer is scaled to the size
the page shows the upload at (``uploads.display_size``, nearest-neighbour, so no class
is blended into another); the shares are counted on the full-size mask.
"""

from __future__ import annotations

import dataclasses
import json
import time

import cv2
import numpy as np

from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.data.images import UploadedImage
from cocoseg.pipeline.data.rendering import image_png, mask_layer_png, mask_png, overlay, pixel_shares
from cocoseg.pipeline.inference.batch import CocoPredictions
from cocoseg.pipeline.inference.model_store import ModelEntry, get_entry
from cocoseg.pipeline.inference.predictor import Predictor
from cocoseg.pipeline.inference.uploads import display_size, load_result, load_upload, store_result

DOWNLOADS = ("mask", "overlay", "coco")
STEM_LENGTH = 60


@dataclasses.dataclass(frozen=True)
class UploadPrediction:
    """What the Segment page shows of one prediction.

    Attributes:
        upload: the decoded upload.
        entry: the model or ensemble that ran, and ``variant`` the variant of it.
        mask: class indices at the upload's own size.
        layer_png: the transparent class layer at display size, as PNG.
        shares: per class present, largest first (``rendering.pixel_shares``).
        inference_seconds, provider: what the predictor reports.
        total_seconds: the whole request, reading the upload and counting shares included.
    """

    upload: UploadedImage
    entry: ModelEntry
    variant: str
    mask: np.ndarray
    layer_png: bytes
    shares: list[dict]
    inference_seconds: float
    provider: str
    total_seconds: float


def predict_upload(
    workspace: Workspace, key: str, model: str, variant: str = "fp32"
) -> UploadPrediction | None:
    """Run ``model`` on the upload kept under ``key`` and keep its mask for the downloads.

    Returns None when the upload expired (or never existed).

    Raises:
        ModelError: unknown model or variant, or a model file that fails its check.
        InferenceInputError: the image cannot be fed to the model.
    """
    upload = load_upload(workspace, key)
    if upload is None:
        return None
    started = time.perf_counter()
    entry = get_entry(workspace, model)
    prediction = Predictor(entry, variant).predict(upload.image)
    store_result(workspace, key, model, variant, prediction.mask)
    label_map = entry.label_map()
    layer = cv2.resize(
        prediction.mask, display_size(upload.width, upload.height), interpolation=cv2.INTER_NEAREST
    )
    shares = pixel_shares(prediction.mask, label_map)
    layer_png = mask_layer_png(layer, label_map)
    return UploadPrediction(
        upload,
        entry,
        variant,
        prediction.mask,
        layer_png,
        shares,
        prediction.seconds,
        prediction.provider,
        time.perf_counter() - started,
    )


@dataclasses.dataclass(frozen=True)
class Download:
    """A file for the browser: bytes, or text (the COCO JSON), and the name it is saved under."""

    content: bytes | str
    file_name: str


def file_stem(name: str) -> str:
    """A download's name from the upload's: its stem with only letters, digits, - and _ kept."""
    stem = name.rsplit(".", 1)[0]
    safe = "".join(character if character.isalnum() or character in "-_" else "_" for character in stem)
    return safe[:STEM_LENGTH] or "upload"


def result_download(
    workspace: Workspace, key: str, model: str, variant: str, kind: str, opacity: float
) -> Download | None:
    """The kept result as a class-index PNG (``mask``), an overlay PNG (``overlay``, at
    ``opacity``) or a COCO JSON with one RLE annotation per class (``coco``).

    Returns None when the upload or its result expired.
    """
    if kind not in DOWNLOADS:
        raise ValueError(f"unknown download {kind!r}; choose one of {', '.join(DOWNLOADS)}")
    upload = load_upload(workspace, key)
    mask = load_result(workspace, key, model, variant)
    if upload is None or mask is None:
        return None
    stem = file_stem(upload.name)
    label_map = get_entry(workspace, model).label_map()
    if kind == "mask":
        return Download(mask_png(mask), f"{stem}.mask.png")
    if kind == "overlay":
        return Download(image_png(overlay(upload.image, mask, label_map, opacity)), f"{stem}.overlay.png")
    coco = CocoPredictions(label_map).add(upload.name, mask).to_dict()
    return Download(json.dumps(coco), f"{stem}.coco.json")
