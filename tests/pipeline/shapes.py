"""A small COCO-format dataset of simple shapes, written by tests into a temp folder."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

CATEGORIES = [
    {"id": 1, "name": "circle", "supercategory": "shape"},
    {"id": 2, "name": "square", "supercategory": "shape"},
    {"id": 3, "name": "triangle", "supercategory": "shape"},
]
COLOURS = {1: (220, 60, 60), 2: (60, 200, 80), 3: (70, 90, 230)}


def _polygon(kind: int, centre: np.ndarray, radius: float) -> np.ndarray:
    if kind == 1:
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    elif kind == 2:
        angles = np.array([0.25, 0.75, 1.25, 1.75]) * np.pi
    else:
        angles = np.array([-0.5, 1 / 6, 5 / 6]) * np.pi
    return np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], axis=1)


def write_shapes_dataset(folder: Path, images: int, seed: int, size: int = 64) -> tuple[Path, Path]:
    """``images`` pictures with one or two shapes each; returns (annotation file, image folder)."""
    rng = np.random.default_rng(seed)
    image_folder = folder / "images"
    image_folder.mkdir(parents=True, exist_ok=True)
    coco = {"images": [], "annotations": [], "categories": CATEGORIES}
    for index in range(images):
        picture = rng.integers(90, 140, (size, size, 3)).astype(np.uint8)
        for _ in range(int(rng.integers(1, 3))):
            kind = int(rng.integers(1, 4))
            radius = float(rng.uniform(8, 16))
            centre = rng.uniform(radius, size - radius, 2)
            polygon = _polygon(kind, centre, radius)
            colour = np.clip(np.array(COLOURS[kind]) + rng.integers(-20, 21, 3), 0, 255)
            cv2.fillPoly(picture, [np.round(polygon).astype(np.int32)], tuple(int(value) for value in colour))
            flat = [round(float(value), 2) for value in polygon.ravel()]
            xs, ys = polygon[:, 0], polygon[:, 1]
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": index + 1,
                    "category_id": kind,
                    "iscrowd": 0,
                    "segmentation": [flat],
                    "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs)), float(np.ptp(ys))],
                    "area": float(0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))),
                }
            )
        name = f"shape_{index:04d}.png"
        cv2.imwrite(str(image_folder / name), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        coco["images"].append({"id": index + 1, "file_name": name, "width": size, "height": size})
    annotations = folder / "annotations.json"
    annotations.write_text(json.dumps(coco))
    return annotations, image_folder


def prepared_shapes(home: Path, counts: tuple[int, int], seeds: tuple[int, int], shards: int):
    """A workspace under ``home`` with the shapes dataset (``counts`` train / val images) prepared at 64 px.

    Returns:
        (workspace, prepared set name).
    """
    from cocoseg.pipeline.core.workspace import Workspace
    from cocoseg.pipeline.data.registry import add_dataset
    from cocoseg.pipeline.prepare.config import PrepareConfig
    from cocoseg.pipeline.prepare.writer import prepare
    from tests.conftest import LIMIT

    workspace = Workspace(home / "workspace").ensure()
    for split, count, seed in zip(("train", "val"), counts, seeds):
        annotations, images = write_shapes_dataset(home / split, count, seed)
        add_dataset(workspace, "shapes", annotations, images, split=split, max_bytes=LIMIT)
    prepared = prepare(workspace, PrepareConfig("shapes", size=64, shards=shards, workers=1), LIMIT)
    return workspace, prepared.name
