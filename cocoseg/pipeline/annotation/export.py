"""Saved corrections put to use: exported as COCO or PNG masks, or registered as a dataset.

Reads the file ``cocoseg.pipeline.annotation.store`` keeps (``<workspace>/annotations/<dataset>.json``)
and never changes it. Registering makes the corrections a dataset ready for
``cocoseg prepare``: the corrected images alone, or every split of the source dataset with
the corrected images' annotations laid over the originals.
"""

from __future__ import annotations

import contextlib
import dataclasses
import filecmp
import logging
import os
import posixpath
import shutil
import uuid
from pathlib import Path

from cocoseg.pipeline.annotation.store import encode_coco, open_annotations, stored_label_map
from cocoseg.pipeline.annotation.strokes import AnnotationError, annotations_to_mask
from cocoseg.pipeline.core.settings import ASSETS_DIR
from cocoseg.pipeline.core.workspace import (
    UnsafePathError,
    Workspace,
    atomic_write_bytes,
    atomic_write_json,
    check_name,
    resolve_inside,
)
from cocoseg.pipeline.data.coco import CocoFileError, read_coco_json, validate_coco
from cocoseg.pipeline.data.labels import LabelMap
from cocoseg.pipeline.data.mask_export import mask_file_name
from cocoseg.pipeline.data.registry import RegistryError, add_dataset, get_dataset, list_datasets
from cocoseg.pipeline.data.rendering import mask_png

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("coco", "png-masks")
REGISTER_MODES = ("dataset", "overlay")
REGISTERED_FOLDER = "registered"


@dataclasses.dataclass(frozen=True)
class Registration:
    """What ``register_corrections`` registered.

    Attributes:
        name: the new dataset.
        mode: ``dataset`` or ``overlay``.
        splits: split name -> its annotation file.
        images: corrected images it contains.
        left_out: corrected images that could not be used (overlay: not in the source dataset).
    """

    name: str
    mode: str
    splits: dict[str, Path]
    images: int
    left_out: tuple[str, ...] = ()


def _saved_or_refuse(workspace: Workspace, dataset: str) -> tuple[dict, LabelMap]:
    data, _version_token = open_annotations(workspace, dataset)
    label_map = stored_label_map(data)
    if not data["images"] or label_map is None:
        raise AnnotationError(
            f"no saved annotations for {dataset} yet: correct an image on the Annotate page and save it"
        )
    return data, label_map


def _check_output(out: Path) -> Path:
    out = Path(out).expanduser().resolve()
    assets = ASSETS_DIR.resolve()
    if out == assets or assets in out.parents:
        raise AnnotationError(
            f"{out} is inside the app's assets folder (served to browsers); write the export elsewhere"
        )
    return out


def export_annotations(workspace: Workspace, dataset: str, out: Path, format: str) -> list[Path]:
    """Write the saved annotations into folder ``out``; returns the files written.

    ``coco``: ``<out>/<dataset>.json``. ``png-masks``: one class-index PNG per image named
    after it (``<stem>.png``, 0 = background) plus ``classes.json`` with the label map.
    """
    if format not in EXPORT_FORMATS:
        raise AnnotationError(f"unknown export format {format!r}; choose {' or '.join(EXPORT_FORMATS)}")
    out = _check_output(out)
    data, label_map = _saved_or_refuse(workspace, dataset)
    written: list[Path] = []
    try:
        if format == "coco":
            atomic_write_bytes(out / f"{dataset}.json", encode_coco(data))
            return [out / f"{dataset}.json"]
        names = [mask_file_name(image["file_name"]) for image in data["images"]]
        if len(set(names)) != len(names):
            raise AnnotationError(
                "two saved images would share a mask file name (e.g. a.jpg and a.png); export as coco instead"
            )
        for image, name in zip(data["images"], names):
            annotations = [item for item in data["annotations"] if item.get("image_id") == image["id"]]
            atomic_write_bytes(
                out / name,
                mask_png(annotations_to_mask(annotations, label_map, image["height"], image["width"])),
            )
            written.append(out / name)
        atomic_write_json(out / "classes.json", label_map.to_dict())
    except OSError as error:
        raise AnnotationError(f"cannot write the export into {out}: {error.strerror or error}") from None
    logger.info("exported %d masks of %s to %s", len(written), dataset, out)
    return written + [out / "classes.json"]


# --- feeding corrections back into training ----------------------------------------------------


def _place_image(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` (hard link, else copy), atomically; same content is left alone."""
    if target.exists() and (os.path.samefile(source, target) or filecmp.cmp(source, target, shallow=False)):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:
            os.link(source, temporary)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _registered_file(workspace: Workspace, name: str, split: str) -> Path:
    return workspace.annotations_dir / REGISTERED_FOLDER / name / f"{split}.json"


def _register_as_dataset(
    workspace: Workspace, dataset: str, name: str, split: str, data: dict, max_bytes: int
) -> Registration:
    """Copy or link the corrected pictures into ``<dataset>-images`` and register them with their annotations."""
    images_dir = workspace.annotations_dir / f"{dataset}-images"
    for image in data["images"]:
        source = Path(image.get("source", ""))
        if not source.is_absolute() or not source.is_file():
            raise AnnotationError(
                f"the picture of {image['file_name']} is gone ({source}); reopen and save it again, or leave it out"
            )
        _place_image(source, resolve_inside(images_dir, image["file_name"]))
    checked = validate_coco(data, images_dir).report
    if checked.errors:
        raise AnnotationError(
            f"the corrected images do not form a valid dataset: {checked.to_dict()['checks'][0]['title']}"
        )
    annotation_path = _registered_file(workspace, name, split)
    atomic_write_bytes(annotation_path, encode_coco(data))
    add_dataset(workspace, name, annotation_path, images_dir, split=split, max_bytes=max_bytes)
    return Registration(name, "dataset", {split: annotation_path}, len(data["images"]))


def _overlay_split(
    raw: dict, corrected: list[tuple[dict, list[dict]]], label_map: LabelMap, where: str
) -> dict:
    """``raw`` with the corrected images' annotations of the label map's classes replaced.

    Annotations of categories the label map does not cover are kept: the correction says
    nothing about them.
    """
    category_ids = {
        category.get("id") for category in raw.get("categories", []) if isinstance(category, dict)
    }
    replaced_images = {split_image["id"] for split_image, _corrections in corrected}
    kept = [
        annotation
        for annotation in raw.get("annotations", [])
        if not (
            isinstance(annotation, dict)
            and annotation.get("image_id") in replaced_images
            and label_map.class_of(annotation.get("category_id")) > 0
        )
    ]
    next_id = (
        max(
            [
                0,
                *(
                    item["id"]
                    for item in raw.get("annotations", [])
                    if isinstance(item, dict) and type(item.get("id")) is int
                ),
            ]
        )
        + 1
    )
    added = []
    for split_image, corrections in corrected:
        for annotation in corrections:
            if annotation["category_id"] not in category_ids:
                raise AnnotationError(
                    f"category {annotation['category_id']} of the corrections is not in {where}'s categories"
                )
            added.append({**annotation, "id": next_id, "image_id": split_image["id"]})
            next_id += 1
    return {**raw, "annotations": kept + added}


def _register_as_overlay(
    workspace: Workspace, dataset: str, name: str, data: dict, max_bytes: int
) -> Registration:
    """A new dataset: every split of ``dataset``, with the corrected images' annotations replaced."""
    try:
        entry = get_dataset(workspace, dataset)
    except RegistryError:
        raise AnnotationError(
            f"an overlay needs corrections of a registered dataset; {dataset!r} is not one: "
            "register the corrections as a dataset of their own instead"
        ) from None
    used: set[int] = set()
    plans: dict[str, tuple[dict, list]] = {}
    for split_name, split in entry.splits.items():
        try:
            raw = read_coco_json(split.annotations, max_bytes)
        except CocoFileError as error:
            raise AnnotationError(str(error)) from None
        images_root = split.images.resolve()
        by_file = {
            posixpath.normpath(image["file_name"]): image
            for image in raw.get("images", [])
            if isinstance(image, dict)
            and isinstance(image.get("file_name"), str)
            and type(image.get("id")) is int
        }
        corrected = []
        for image in data["images"]:
            split_image = by_file.get(posixpath.normpath(image["file_name"]))
            if (
                split_image is None
                or Path(image.get("source", "")) != (images_root / image["file_name"]).resolve()
            ):
                continue
            if (split_image.get("width"), split_image.get("height")) != (image["width"], image["height"]):
                continue
            corrected.append(
                (split_image, [item for item in data["annotations"] if item.get("image_id") == image["id"]])
            )
            used.add(image["id"])
        plans[split_name] = (raw, corrected)
    if not used:
        raise AnnotationError(
            f"none of the {len(data['images'])} corrected images belongs to {dataset}'s splits; "
            "register them as a dataset of their own instead"
        )
    label_map = stored_label_map(data)
    splits: dict[str, Path] = {}
    for split_name, (raw, corrected) in plans.items():
        if corrected:
            overlaid = _overlay_split(raw, corrected, label_map, f"{dataset}/{split_name}")
            splits[split_name] = _registered_file(workspace, name, split_name)
            atomic_write_json(splits[split_name], overlaid)
        else:
            splits[split_name] = entry.splits[split_name].annotations
    for split_name, annotation_path in splits.items():
        add_dataset(
            workspace,
            name,
            annotation_path,
            entry.splits[split_name].images,
            split=split_name,
            max_bytes=max_bytes,
        )
    left_out = tuple(image["file_name"] for image in data["images"] if image["id"] not in used)
    return Registration(name, "overlay", splits, len(used), left_out)


def register_corrections(
    workspace: Workspace, dataset: str, name: str, mode: str, max_bytes: int, split: str = "train"
) -> Registration:
    """Register the saved corrections of ``dataset`` as the new dataset ``name``, ready for ``cocoseg prepare``.

    Args:
        mode: ``dataset``: the corrected images alone, as split ``split``, their pictures
            linked or copied into ``<workspace>/annotations/<dataset>-images/``.
            ``overlay``: every split of the (registered) source dataset, with the corrected
            images' annotations replacing the originals; same image folders.

    Raises:
        AnnotationError: unknown mode, bad or taken name, nothing saved, pictures gone,
            or (overlay) corrections that belong to no split of the source dataset.
    """
    if mode not in REGISTER_MODES:
        raise AnnotationError(f"unknown mode {mode!r}; choose {' or '.join(REGISTER_MODES)}")
    try:
        check_name(name, "dataset name")
        check_name(split, "split name")
    except UnsafePathError as error:
        raise AnnotationError(str(error)) from None
    try:
        taken = [entry.name for entry in list_datasets(workspace)]
    except RegistryError as error:
        raise AnnotationError(str(error)) from None
    if name in taken:
        raise AnnotationError(f"a dataset called {name!r} exists already; choose another name")
    data, _label_map = _saved_or_refuse(workspace, dataset)
    try:
        if mode == "dataset":
            registration = _register_as_dataset(workspace, dataset, name, split, data, max_bytes)
        else:
            registration = _register_as_overlay(workspace, dataset, name, data, max_bytes)
    except RegistryError as error:
        raise AnnotationError(str(error)) from None
    except OSError as error:
        raise AnnotationError(f"cannot write the new dataset's files: {error.strerror or error}") from None
    logger.info("registered %s corrections of %s as dataset %s", mode, dataset, name)
    return registration
