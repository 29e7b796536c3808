"""Masks and pictures in the forms people and tools take away: the one home for pixels out.

Coloured overlay (for eyes), RGBA mask layers (laid over a picture in the browser),
per-class pixel share (for tables), PNG and JPEG encoding (every ``cv2.imencode`` in the
project is here), and COCO RLE annotations (for COCO tooling and the annotator). A mask
is a class-index ``uint8`` array; 255 marks pixels without a prediction (or ignored).
"""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools import mask as coco_mask

from cocoseg.pipeline.data.labels import COCO_CATEGORIES, COCO_PRESETS, IGNORE_INDEX, LabelMap
from cocoseg.pipeline.data.masks import colorize


def overlay(image: np.ndarray, mask: np.ndarray, label_map: LabelMap, opacity: float = 0.5) -> np.ndarray:
    """Blend class colours over ``image``; background and unpredicted pixels stay as they are."""
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} sizes differ")
    opacity = float(np.clip(opacity, 0.0, 1.0))
    colours = colorize(mask, label_map).astype(np.float32)
    blended = image.astype(np.float32) * (1.0 - opacity) + colours * opacity
    painted = (mask > 0) & (mask != IGNORE_INDEX)
    result = image.copy()
    result[painted] = np.rint(blended[painted]).astype(np.uint8)
    return result


def pixel_shares(mask: np.ndarray, label_map: LabelMap) -> list[dict]:
    """Classes present in ``mask`` with pixel count and share of the predicted pixels, largest first."""
    counts = np.bincount(mask.ravel(), minlength=256)[: label_map.num_classes]
    total = int(counts.sum())
    rows = [
        {
            "index": index,
            "name": label_map.class_names[index],
            "color": list(label_map.palette[index]),
            "pixels": int(count),
            "share": float(count) / total if total else 0.0,
        }
        for index, count in enumerate(counts)
        if count
    ]
    return sorted(rows, key=lambda row: row["pixels"], reverse=True)


def category_of(label_map: LabelMap, class_index: int) -> int:
    """The COCO category id a class is saved as: its first source category, else its index."""
    sources = label_map.class_to_categories.get(class_index, ())
    return int(sources[0]) if sources else int(class_index)


def coco_annotations(
    mask: np.ndarray, label_map: LabelMap, image_id: int = 1, first_id: int = 1
) -> list[dict]:
    """One COCO annotation (compressed RLE) per foreground class present in ``mask``.

    Area and bbox come from pycocotools, so they agree with what COCO tools compute.
    """
    annotations = []
    for class_index in np.unique(mask):
        if class_index == 0 or class_index == IGNORE_INDEX or class_index >= label_map.num_classes:
            continue
        region = np.asfortranarray((mask == class_index).astype(np.uint8))
        rle = coco_mask.encode(region)
        annotations.append(
            {
                "id": first_id + len(annotations),
                "image_id": image_id,
                "category_id": category_of(label_map, int(class_index)),
                "segmentation": {
                    "size": [int(value) for value in rle["size"]],
                    "counts": rle["counts"].decode("ascii"),
                },
                "area": float(coco_mask.area(rle)),
                "bbox": [float(value) for value in coco_mask.toBbox(rle)],
                "iscrowd": 0,
            }
        )
    return annotations


def coco_categories(label_map: LabelMap) -> list[dict]:
    """COCO ``categories`` for the classes of a label map (background left out), by COCO id.

    COCO-based presets keep COCO's own name and supercategory for the id, so a saved file
    (predictions, corrections) is again a COCO-compatible dataset that voc21 and coco80
    accept; other maps use the class name, with the map's name as supercategory.
    """
    coco_names = {category_id: (name, supercategory) for category_id, name, supercategory in COCO_CATEGORIES}
    categories = []
    for index, class_name in enumerate(label_map.class_names[1:], start=1):
        category_id = category_of(label_map, index)
        if label_map.name in COCO_PRESETS and category_id in coco_names:
            name, supercategory = coco_names[category_id]
        else:
            name, supercategory = class_name, label_map.name
        categories.append({"id": category_id, "name": name, "supercategory": supercategory})
    return categories


def mask_layer(mask: np.ndarray, label_map: LabelMap, show_ignored: bool = False) -> np.ndarray:
    """RGBA class colours, transparent on background.

    Ignored pixels (255) are transparent too, unless ``show_ignored`` (Explore shows a
    dataset's ignore regions, such as crowds, so the mask protocol is visible).
    """
    colours = colorize(mask, label_map)
    painted = mask > 0 if show_ignored else (mask > 0) & (mask != IGNORE_INDEX)
    return np.dstack([colours, np.where(painted, 255, 0).astype(np.uint8)])


def encode_png(pixels: np.ndarray, compression: int | None = None) -> bytes:
    """A ``uint8`` array as PNG: one channel as is (class indices stay exact), RGB or RGBA in that order."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim == 3:
        conversion = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
        pixels = cv2.cvtColor(pixels, conversion)
    options = [cv2.IMWRITE_PNG_COMPRESSION, compression] if compression is not None else []
    encoded, data = cv2.imencode(".png", pixels, options)
    if not encoded:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def encode_jpeg(image: np.ndarray, quality: int = 90, full_chroma: bool = False) -> bytes:
    """An RGB ``uint8`` image as JPEG; ``full_chroma`` keeps 4:4:4 colour (training data, small images)."""
    options = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if full_chroma:
        options += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    encoded, data = cv2.imencode(
        ".jpg", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR), options
    )
    if not encoded:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def mask_png(mask: np.ndarray) -> bytes:
    """The class-index mask as a single-channel 8-bit PNG (lossless; what other tools read)."""
    return encode_png(mask)


def image_png(image: np.ndarray) -> bytes:
    """An RGB image as PNG (lossless)."""
    return encode_png(image)


def image_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """An RGB image as JPEG (for display: smaller than PNG for photos)."""
    return encode_jpeg(image, quality)


def mask_layer_png(mask: np.ndarray, label_map: LabelMap) -> bytes:
    """A prediction's RGBA layer as PNG: laid over the picture, its opacity changes without a round trip."""
    return encode_png(mask_layer(mask, label_map))
