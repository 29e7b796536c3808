"""Many images through one model: masks, overlays and one COCO results file.

``CocoPredictions`` is the one builder of a predictions COCO JSON: ``cocoseg predict``
fills it image by image (``predict_folder``) and the Segment page's download builds it for
its one image, so both write the same categories and RLE annotations.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cocoseg.pipeline.core.workspace import atomic_write_bytes, atomic_write_json
from cocoseg.pipeline.data.images import IMAGE_SUFFIXES, ImageError, read_rgb
from cocoseg.pipeline.data.labels import LabelMap
from cocoseg.pipeline.data.mask_export import mask_file_name
from cocoseg.pipeline.data.rendering import (
    coco_annotations,
    coco_categories,
    image_png,
    mask_png,
    overlay,
)
from cocoseg.pipeline.inference.model_store import ModelEntry, ModelError


class CocoPredictions:
    """A COCO results file built one image at a time (ids are consecutive from 1)."""

    def __init__(self, label_map: LabelMap) -> None:
        self.label_map = label_map
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add(self, file_name: str, mask: np.ndarray) -> CocoPredictions:
        """Record one image and an RLE annotation per class its mask holds."""
        image_id = len(self.images) + 1
        height, width = mask.shape[:2]
        self.images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        self.annotations += coco_annotations(mask, self.label_map, image_id, len(self.annotations) + 1)
        return self

    def to_dict(self) -> dict:
        return {
            "images": self.images,
            "annotations": self.annotations,
            "categories": coco_categories(self.label_map),
        }


@dataclasses.dataclass
class FolderPrediction:
    """What ``predict_folder`` wrote and what it could not read."""

    images: int
    annotations: int
    provider: str
    skipped: list[str]


def input_images(folder: Path) -> list[Path]:
    """The images under ``folder`` (recursively, by suffix), in a stable order."""
    if not folder.is_dir():
        raise ModelError(f"{folder} is not a folder of images")
    return sorted(
        path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )


def predict_folder(
    entry: ModelEntry,
    source: Path,
    output: Path,
    variant: str = "fp32",
    overlays: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> FolderPrediction:
    """Segment every image under ``source`` into ``output``: ``masks/``, ``overlays/``, COCO JSON.

    An unreadable image is skipped and named in the result; everything else is written.

    Raises:
        ModelError: ``output`` inside ``source``, no images, or two images that would share an
            output name.
    """
    from cocoseg.pipeline.inference.predictor import Predictor

    source, output = Path(source).resolve(), Path(output).resolve()
    if output == source or source in output.parents:
        raise ModelError(
            "--out must not be inside the input folder (outputs would be read as inputs next time)"
        )
    images = input_images(source)
    if not images:
        raise ModelError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {source}")
    names = [mask_file_name(str(path.relative_to(source))) for path in images]
    clashes = sorted(name for name, count in collections.Counter(names).items() if count > 1)
    if clashes:
        raise ModelError(f"images would share output names: {', '.join(clashes[:5])}")
    predictor = Predictor(entry, variant)
    label_map = entry.label_map()
    predictions, skipped = CocoPredictions(label_map), []
    for done, (path, name) in enumerate(zip(images, names), start=1):
        try:
            picture = read_rgb(path)
        except ImageError as error:
            skipped.append(str(error))
        else:
            mask = predictor.predict(picture).mask
            atomic_write_bytes(output / "masks" / name, mask_png(mask))
            if overlays:
                atomic_write_bytes(output / "overlays" / name, image_png(overlay(picture, mask, label_map)))
            predictions.add(str(path.relative_to(source)), mask)
        if progress:
            progress(done, len(images))
    atomic_write_json(output / "predictions.json", predictions.to_dict())
    atomic_write_json(output / "classes.json", label_map.to_dict())
    return FolderPrediction(
        len(predictions.images), len(predictions.annotations), predictor.provider, skipped
    )
