"""Corrected masks saved as one COCO file per dataset, safely: open, save, list, reload.

``<workspace>/annotations/<dataset>.json`` is a plain COCO file (compressed RLE, one
annotation per class per image) plus a ``cocoseg`` block with the label map and id
counters. Every save happens under the dataset's lock, checks that the file is still the
version the page opened (else ``VersionConflict``: two tabs never overwrite each other
silently), validates the whole result with the project's COCO validator and replaces the
file atomically; on any error nothing is written and the previous file stays intact.

Images are identified by ``file_name``; each keeps ``source``, the absolute path of its
picture (an image of a registered dataset, or an upload kept in the workspace), so the
corrections can be exported, registered as a dataset of their own, or laid over the
source dataset's split (``cocoseg.pipeline.annotation.export``).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import posixpath
from pathlib import Path

import filelock
import numpy as np

from cocoseg.pipeline.annotation.strokes import (
    AnnotationError,
    annotations_to_mask,
    check_mask,
    mask_to_annotations,
)
from cocoseg.pipeline.core.workspace import (
    UnsafePathError,
    Workspace,
    atomic_write_bytes,
    check_name,
    check_relative_path,
)
from cocoseg.pipeline.data.coco import validate_coco
from cocoseg.pipeline.data.labels import LabelMap, label_map_from_dict
from cocoseg.pipeline.data.registry import RegistryError, list_datasets
from cocoseg.pipeline.data.rendering import coco_categories
from cocoseg.pipeline.data.validation import MAX_IMAGE_SIDE

logger = logging.getLogger(__name__)

STORE_FORMAT = 1


class VersionConflict(AnnotationError):
    """The file changed since the page opened it (another tab or process saved)."""

    def __init__(self, message: str = "changed since you opened it: reload") -> None:
        super().__init__(message)


def annotations_file(workspace: Workspace, dataset: str) -> Path:
    """``<workspace>/annotations/<dataset>.json`` for a checked dataset name."""
    try:
        check_name(dataset, "dataset name")
    except UnsafePathError as error:
        raise AnnotationError(str(error)) from None
    return workspace.annotations_dir / f"{dataset}.json"


def _version(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest() if data is not None else ""


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise AnnotationError(f"cannot read {path}: {error.strerror}") from None


def _parse(data: bytes, path: Path) -> dict:
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, RecursionError, ValueError) as error:
        raise AnnotationError(
            f"{path} is damaged ({str(error)[:80]}); move it aside to start a new file"
        ) from None
    if not isinstance(parsed, dict) or not all(
        isinstance(parsed.get(key), list) for key in ("images", "annotations", "categories")
    ):
        raise AnnotationError(
            f"{path} is not a COCO file with images, annotations and categories; move it aside to start a new file"
        )
    return parsed


def open_annotations(workspace: Workspace, dataset: str) -> tuple[dict, str]:
    """The dataset's COCO dict and its version token ("" and an empty dict before the first save)."""
    path = annotations_file(workspace, dataset)
    data = _read_bytes(path)
    if data is None:
        return {"images": [], "annotations": [], "categories": []}, ""
    return _parse(data, path), _version(data)


def stored_label_map(data: dict) -> LabelMap | None:
    """The label map a saved file was drawn with (None before the first save)."""
    block = data.get("cocoseg")
    if not isinstance(block, dict) or not isinstance(block.get("label_map"), dict):
        return None
    try:
        return label_map_from_dict(block["label_map"])
    except (KeyError, TypeError, ValueError) as error:
        raise AnnotationError(f"the saved label map is damaged ({str(error)[:80]})") from None


def _check_label_map(data: dict, label_map: LabelMap, dataset: str) -> None:
    stored = stored_label_map(data)
    if stored is not None and not stored.same_classes(label_map):
        raise AnnotationError(
            f"the annotations of {dataset} use label map {stored.name} ({stored.num_classes} classes), not {label_map.name} "
            f"({label_map.num_classes} classes): switch back to {stored.name}, or save into another dataset"
        )


def _allowed_roots(workspace: Workspace) -> list[Path]:
    """Where a saved image's picture may live: the workspace's annotation folder and registered image folders."""
    try:
        entries = list_datasets(workspace)
    except RegistryError as error:
        raise AnnotationError(str(error)) from None
    return [workspace.annotations_dir.resolve()] + [
        split.images.resolve() for entry in entries for split in entry.splits.values()
    ]


def _image_record(workspace: Workspace, image: dict) -> dict:
    """Checked ``file_name``, ``width``, ``height`` and ``source`` of the image being saved."""
    if not isinstance(image, dict):
        raise AnnotationError("the image to save must be described by file_name, width, height and source")
    try:
        file_name = check_relative_path(image.get("file_name"))
    except UnsafePathError as error:
        raise AnnotationError(f"file_name: {error}") from None
    width, height = image.get("width"), image.get("height")
    if not all(type(side) is int and 0 < side <= MAX_IMAGE_SIDE for side in (width, height)):
        raise AnnotationError(
            f"image width and height must be whole numbers of pixels, got {width!r} x {height!r}"
        )
    source = image.get("source")
    if not isinstance(source, (str, Path)) or not str(source) or not Path(source).is_absolute():
        raise AnnotationError(
            f"image source must be the absolute path of the picture, got {str(source)[:120]!r}"
        )
    resolved = Path(source).resolve()
    if not resolved.is_file():
        raise AnnotationError(f"the picture {source} does not exist (any more)")
    if not any(root == resolved or root in resolved.parents for root in _allowed_roots(workspace)):
        raise AnnotationError(
            f"the picture {source} is neither an image of a registered dataset nor an upload kept in the workspace"
        )
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(resolved) as handle:
            stored_size = handle.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise AnnotationError(f"the picture {resolved.name} cannot be read ({error})") from None
    if stored_size != (width, height):
        raise AnnotationError(
            f"the picture {resolved.name} is {stored_size[0]}x{stored_size[1]}, not {width}x{height}"
        )
    return {"file_name": file_name, "width": width, "height": height, "source": str(resolved)}


def _same_file_name(first: str, second: str) -> bool:
    return posixpath.normpath(first) == posixpath.normpath(second)


def _with_image(data: dict, record: dict, annotations: list[dict], label_map: LabelMap, dataset: str) -> dict:
    """A new COCO dict: ``data`` with the image's previous annotations replaced by ``annotations``.

    Ids come from counters kept in the file, so an id is never handed out twice, even after
    an image was re-saved (its old ids are not reused).
    """
    block = data.get("cocoseg") if isinstance(data.get("cocoseg"), dict) else {}

    def next_free(key: str) -> int:
        counter = block.get(f"next_{key[:-1]}_id")
        used = [
            item["id"] + 1 for item in data[key] if isinstance(item, dict) and type(item.get("id")) is int
        ]
        return max([counter if type(counter) is int else 1, *used])

    next_image_id, next_annotation_id = next_free("images"), next_free("annotations")
    replaced = {
        image["id"]
        for image in data["images"]
        if isinstance(image, dict)
        and isinstance(image.get("file_name"), str)
        and _same_file_name(image["file_name"], record["file_name"])
    }
    image = {
        "id": next_image_id,
        **record,
        "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
    }
    renumbered = [
        {**annotation, "id": next_annotation_id + offset, "image_id": next_image_id}
        for offset, annotation in enumerate(annotations)
    ]
    extra = {
        key: value
        for key, value in data.items()
        if key not in ("images", "annotations", "categories", "cocoseg")
    }
    extra.setdefault("info", {"description": f"cocoseg corrections of {dataset}"})
    return {
        **extra,
        "images": [
            item for item in data["images"] if not (isinstance(item, dict) and item.get("id") in replaced)
        ]
        + [image],
        "annotations": [
            item
            for item in data["annotations"]
            if not (isinstance(item, dict) and item.get("image_id") in replaced)
        ]
        + renumbered,
        "categories": coco_categories(label_map),
        "cocoseg": {
            "format": STORE_FORMAT,
            "label_map": label_map.to_dict(),
            "next_image_id": next_image_id + 1,
            "next_annotation_id": next_annotation_id + len(renumbered),
        },
    }


def _check_valid(data: dict, what: str) -> None:
    """Refuse ``data`` unless the project's COCO validator keeps every item of it."""
    report = validate_coco(data).report
    if report.errors:
        check = report.to_dict()["checks"][0]
        example = check["examples"][0] if check["examples"] else {"location": "", "message": ""}
        raise AnnotationError(
            f"{what} would not be valid COCO ({check['code']}: {example['message']} at {example['location']}); nothing was saved"
        )


def encode_coco(data: dict) -> bytes:
    """The bytes a COCO dict is written as (here and by its exports): UTF-8, indented, no NaN."""
    return (json.dumps(data, allow_nan=False, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def _remove_stale_temporaries(path: Path) -> None:
    """Temp files of writers killed before their rename (only called under the file's lock)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
            logger.info("removed %s left by an interrupted save", stale.name)


def save_image(
    workspace: Workspace,
    dataset: str,
    image: dict,
    mask: np.ndarray,
    label_map: LabelMap,
    expected_version: str,
    max_bytes: int,
) -> str:
    """Save one image's mask into ``<workspace>/annotations/<dataset>.json``; returns the new version.

    The image's earlier annotations (same ``file_name``) are replaced. Nothing is written
    when anything fails; the previous file stays intact.

    Raises:
        VersionConflict: the file changed since ``expected_version`` was read.
        AnnotationError: bad image or mask, another label map than the file's, an invalid
            result, a file above ``max_bytes``, or a folder that cannot be written.
    """
    path = annotations_file(workspace, dataset)
    record = _image_record(workspace, image)
    check_mask(mask, label_map)
    if mask.shape != (record["height"], record["width"]):
        raise AnnotationError(
            f"the mask is {mask.shape[1]}x{mask.shape[0]} but the picture is {record['width']}x{record['height']}"
        )
    annotations = mask_to_annotations(mask, label_map, image_id=0, first_id=0)
    try:
        with workspace.lock(f"annotations-{dataset}"):
            current = _read_bytes(path)
            if _version(current) != expected_version:
                raise VersionConflict()
            data = (
                _parse(current, path)
                if current is not None
                else {"images": [], "annotations": [], "categories": []}
            )
            _check_label_map(data, label_map, dataset)
            updated = _with_image(data, record, annotations, label_map, dataset)
            _check_valid(updated, f"the annotations of {dataset}")
            payload = encode_coco(updated)
            if len(payload) > max_bytes:
                raise AnnotationError(
                    f"the annotations of {dataset} would take {len(payload) / 1e6:,.1f} MB, above the "
                    f"{max_bytes / 1e6:,.1f} MB limit; nothing was saved"
                )
            _remove_stale_temporaries(path)
            atomic_write_bytes(path, payload)
    except filelock.Timeout:
        raise AnnotationError(
            f"another save of {dataset} is taking too long; try again in a moment"
        ) from None
    except OSError as error:
        raise AnnotationError(
            f"cannot save the annotations in {path.parent}: {error.strerror or error}; "
            "the previous annotations are unchanged"
        ) from None
    logger.info("saved %d annotations of %s into %s", len(annotations), record["file_name"], path)
    return _version(payload)


def saved_images(workspace: Workspace, dataset: str) -> list[dict]:
    """Saved images, newest first: file_name, image_id, saved, classes (names), width, height, source."""
    data, _version_token = open_annotations(workspace, dataset)
    label_map = stored_label_map(data)
    names_by_category = {
        category.get("id"): category.get("name")
        for category in data["categories"]
        if isinstance(category, dict)
    }
    classes: dict[int, set[int]] = {}
    for annotation in data["annotations"]:
        if isinstance(annotation, dict):
            classes.setdefault(annotation.get("image_id"), set()).add(annotation.get("category_id"))
    rows = []
    for image in data["images"]:
        if not isinstance(image, dict):
            continue
        present = classes.get(image.get("id"), set())
        if label_map is not None:
            names = [
                label_map.class_names[index]
                for index in sorted({label_map.class_of(category) for category in present} - {0})
            ]
        else:
            names = sorted(str(names_by_category.get(category, category)) for category in present)
        rows.append(
            {
                "file_name": image.get("file_name"),
                "image_id": image.get("id"),
                "saved": image.get("saved", ""),
                "classes": names,
                "width": image.get("width"),
                "height": image.get("height"),
                "source": image.get("source", ""),
            }
        )
    return sorted(
        rows,
        key=lambda row: (str(row["saved"]), row["image_id"] if type(row["image_id"]) is int else 0),
        reverse=True,
    )


def corrected_files(workspace: Workspace, dataset: str) -> list[str]:
    """The file names saved into ``dataset``'s corrections; none (logged) when that file cannot be read,
    so pages that only mark corrected images keep working."""
    try:
        return [row["file_name"] for row in saved_images(workspace, dataset)]
    except (AnnotationError, OSError) as error:
        logger.warning("cannot read the corrections of %s: %s", dataset, error)
        return []


def load_saved(workspace: Workspace, dataset: str, file_name: str, label_map: LabelMap) -> np.ndarray | None:
    """The saved mask of one image (for reopening it), or None when it was never saved."""
    data, _version_token = open_annotations(workspace, dataset)
    image = next(
        (
            item
            for item in data["images"]
            if isinstance(item, dict)
            and isinstance(item.get("file_name"), str)
            and isinstance(file_name, str)
            and _same_file_name(item["file_name"], file_name)
        ),
        None,
    )
    if image is None:
        return None
    _check_label_map(data, label_map, dataset)
    annotations = [
        item for item in data["annotations"] if isinstance(item, dict) and item.get("image_id") == image["id"]
    ]
    return annotations_to_mask(annotations, label_map, image["height"], image["width"])
