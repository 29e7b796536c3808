"""Load and validate COCO JSON; hand the valid part to pycocotools.

``load_coco`` reads the file with a size limit and clean one-line errors, runs the
validator (``cocoseg.pipeline.data.validation``) over every image, category and annotation, and
returns a ``CocoDataset`` holding only the valid part plus the report. pycocotools is
used for what it is good at (the index and its RLE rasteriser) and only ever sees
annotations that passed the pure-Python checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import logging
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cocoseg.pipeline.core.workspace import (
    UnsafePathError,
    atomic_write_json,
    check_relative_path,
    resolve_inside,
)
from cocoseg.pipeline.data.validation import (
    MAX_IMAGE_SIDE,
    Finding,
    ValidationReport,
    check_bbox,
    has_errors,
    is_integer,
    polygon_area,
    polygons_warnings,
    rasterised_polygon_area,
    segmentation_error,
)

logger = logging.getLogger(__name__)

TOP_LEVEL_KEYS = ("images", "annotations", "categories")
MEGABYTE = 1024 * 1024

ProgressCallback = Callable[[int, int], None]


class CocoFileError(ValueError):
    """The annotation file cannot be used at all; the message is one actionable line."""


def shown_path(path: Path) -> str:
    """A path for a one-line message: control characters (newlines...) escaped."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in str(path))


def check_annotation_file(path: Path, max_bytes: int) -> int:
    """Refuse a missing, empty, folder or over-limit annotation file; return its size.

    Only ``stat`` is used, so a 2 GB file costs nothing.
    """
    path = Path(path)
    try:
        status = path.stat()
    except FileNotFoundError:
        raise CocoFileError(f"annotation file not found: {shown_path(path)}") from None
    except OSError as error:
        raise CocoFileError(f"cannot open annotation file {shown_path(path)}: {error.strerror}") from None
    if path.is_dir():
        raise CocoFileError(f"{shown_path(path)} is a folder; give the COCO annotation JSON file")
    if status.st_size == 0:
        raise CocoFileError(f"annotation file {shown_path(path)} is empty")
    if status.st_size > max_bytes:
        raise CocoFileError(
            f"annotation file {shown_path(path)} is {status.st_size / MEGABYTE:,.0f} MB, above the "
            f"{max_bytes / MEGABYTE:,.0f} MB limit (raise COCOSEG_MAX_ANNOTATION_MB if this is intended)"
        )
    return status.st_size


def read_annotation_text(path: Path, max_bytes: int) -> str:
    """Read an annotation file as text after ``check_annotation_file``; refuse non-UTF-8."""
    check_annotation_file(path, max_bytes)
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CocoFileError(
            f"annotation file {shown_path(path)} is not UTF-8 text (byte {error.start})"
        ) from None
    except OSError as error:
        raise CocoFileError(f"cannot read annotation file {shown_path(path)}: {error.strerror}") from None


def parse_annotation_text(text: str, path: Path) -> dict[str, Any]:
    """Parse COCO JSON text into a dict, mapping every parser failure to one line."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        # an unterminated string can only run into the end of the file (raw newlines are invalid)
        truncated = not error.msg.startswith("Extra data") and (
            error.pos >= len(text.rstrip()) - 1 or error.msg.startswith("Unterminated string")
        )
        raise CocoFileError(
            f"annotation file {shown_path(path)} is not valid JSON: {error.msg} "
            f"(line {error.lineno} column {error.colno})"
            + (": the file looks truncated" if truncated else "")
        ) from None
    except RecursionError:
        raise CocoFileError(
            f"annotation file {shown_path(path)} is nested too deeply to be COCO JSON"
        ) from None
    except ValueError as error:  # e.g. an integer literal beyond Python's digit limit
        raise CocoFileError(
            f"annotation file {shown_path(path)} holds a value JSON parsing refuses: {str(error)[:120]}"
        ) from None
    if not isinstance(data, dict):
        raise CocoFileError(
            f"annotation file {shown_path(path)} holds a JSON {type(data).__name__}; "
            "COCO needs an object with "
            "'images', 'annotations' and 'categories'"
        )
    return data


_ANNOTATION_PROGRESS_EVERY = 5_000
STRUCTURE_MESSAGE_BELOW_BYTES = 64 * MEGABYTE  # a broken file smaller than this gets json's own message
_STRUCTURE_PROGRESS_EVERY = 5_000


def check_structure(path: Path, max_bytes: int, progress: ProgressCallback | None = None) -> dict[str, int]:
    """One streaming pass: the file is a JSON object whose ``images``, ``annotations`` and
    ``categories`` are lists, and every category has a name. Returns their counts.

    Only one item exists as Python objects at a time, so a COCO-train file costs its text
    and no more. ``progress(bytes_done, bytes_total)`` is called every few thousand items.
    A file that is not JSON gets the one line ``read_coco_json`` (``data validate``) gives
    (for files above ``STRUCTURE_MESSAGE_BELOW_BYTES`` the stream's own line, with the
    same prefix, so a broken 400 MB file is never parsed whole just for its message).

    Raises:
        CocoFileError: unreadable, not JSON, not a JSON object, a required list missing,
            or a category without a name.
    """
    from cocoseg.pipeline.data.jsonstream import JsonStreamError, ObjectStream

    path = Path(path)
    text = read_annotation_text(path, max_bytes)
    total = len(text)
    counts: dict[str, int] = {}
    categories: list = []
    stream = ObjectStream(text)
    try:
        for key in stream.members():
            if key in ("images", "annotations") and text.startswith("[", stream.position):
                count = 0
                for count, _item in enumerate(stream.iter_array(), start=1):
                    if progress and count % _STRUCTURE_PROGRESS_EVERY == 0:
                        progress(stream.position, total)
                counts[key] = count
            elif key == "categories":
                value = stream.read_value()
                if isinstance(value, list):
                    categories = value
                    counts[key] = len(value)
                else:
                    counts.pop(key, None)
    except JsonStreamError as error:
        if total < STRUCTURE_MESSAGE_BELOW_BYTES:
            parse_annotation_text(text, path)  # raises the same line data validate gives
        raise CocoFileError(f"annotation file {shown_path(path)} is not valid JSON: {error}") from None
    finally:
        del text
    missing = [key for key in TOP_LEVEL_KEYS if key not in counts]
    if missing:
        raise CocoFileError(
            f"annotation file {shown_path(path)} is not COCO: top-level "
            + ", ".join(f"'{key}'" for key in missing)
            + f" {'is' if len(missing) == 1 else 'are'} missing or not a list (missing-key)"
        )
    for index, category in enumerate(categories):
        name = category.get("name") if isinstance(category, dict) else None
        if not isinstance(name, str) or not name.strip():
            where = f"id {category.get('id')}" if isinstance(category, dict) else f"item {index}"
            raise CocoFileError(
                f"annotation file {shown_path(path)}: category {where} has no name; "
                "every category needs one (the class names come from them)"
            )
    if progress:
        progress(total, total)
    return counts


def read_coco_json(path: Path, max_bytes: int) -> dict[str, Any]:
    """Read and parse a COCO annotation file (see ``read_annotation_text``)."""
    return parse_annotation_text(read_annotation_text(path, max_bytes), Path(path))


@dataclasses.dataclass
class CocoDataset:
    """The valid part of a COCO file, its report, and where its images are.

    Attributes:
        images, annotations, categories: the items that passed validation, unchanged
            (original ids kept); annotations may gain a recomputed ``area``.
        report: what was found, including what was left out and why.
        extra: other top-level keys (``info``, ``licenses``...) kept for saving back.
    """

    images: list[dict]
    annotations: list[dict]
    categories: list[dict]
    report: ValidationReport
    images_dir: Path | None = None
    source: Path | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def image_by_id(self) -> dict[int, dict]:
        return {image["id"]: image for image in self.images}

    @functools.cached_property
    def annotations_by_image(self) -> dict[int, list[dict]]:
        grouped: dict[int, list[dict]] = {image["id"]: [] for image in self.images}
        for annotation in self.annotations:
            grouped[annotation["image_id"]].append(annotation)
        return grouped

    def image_path(self, image: dict) -> Path:
        """Absolute path of an image's file (file_name already checked by the validator)."""
        if self.images_dir is None:
            raise ValueError("this dataset has no image folder")
        return resolve_inside(self.images_dir, image["file_name"])

    def to_dict(self) -> dict[str, Any]:
        """COCO JSON form with the original ids (``save_coco`` writes it)."""
        return {
            **self.extra,
            "images": self.images,
            "annotations": self.annotations,
            "categories": self.categories,
        }

    @functools.cached_property
    def pycocotools(self):
        """A pycocotools ``COCO`` index over the valid part (its chatter silenced)."""
        from pycocotools.coco import COCO

        coco = COCO()
        coco.dataset = self.to_dict()
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        return coco


def _as_list(data: dict, key: str, report: ValidationReport) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        state = "missing" if key not in data else f"a {type(value).__name__}, not a list"
        report.add(Finding("missing-key", f"top-level '{key}' is {state}", key))
        return []
    return value


def validate_categories(items: list, report: ValidationReport) -> list[dict]:
    """The categories every reader keeps (an integer id seen once, a string name), refusals in ``report``."""
    valid: list[dict] = []
    seen_ids: set[int] = set()
    seen_names: set[str] = set()
    for index, category in enumerate(items):
        where = f"categories[{index}]"
        if not isinstance(category, dict):
            report.add(Finding("item-not-object", "category is not an object", where))
            continue
        if "id" not in category or "name" not in category:
            report.add(Finding("missing-field", "category needs 'id' and 'name'", where))
            continue
        if not is_integer(category["id"]):
            report.add(Finding("id-not-integer", f"category id {category['id']!r}", where))
            continue
        if not isinstance(category["name"], str) or not isinstance(category.get("supercategory", ""), str):
            report.add(Finding("name-not-text", "category name and supercategory must be strings", where))
            continue
        if category["id"] in seen_ids:
            report.add(Finding("duplicate-category-id", f"category id {category['id']} repeated", where))
            continue
        if category["name"] in seen_names:
            report.add(
                Finding("duplicate-category-name", f"category name {category['name']!r} repeated", where)
            )
        seen_ids.add(category["id"])
        seen_names.add(category["name"])
        valid.append(category)
    return valid


def image_problem(image: dict) -> Finding | None:
    if "id" not in image or "file_name" not in image:
        return Finding("missing-field", "image needs 'id', 'file_name', 'width' and 'height'")
    if not is_integer(image["id"]):
        return Finding("id-not-integer", f"image id {image['id']!r}")
    width, height = image.get("width"), image.get("height")
    if not (
        is_integer(width)
        and is_integer(height)
        and 0 < width <= MAX_IMAGE_SIDE
        and 0 < height <= MAX_IMAGE_SIDE
    ):
        return Finding("bad-image-size", f"width={width!r} height={height!r}")
    file_name = image["file_name"]
    if not isinstance(file_name, str) or not file_name:
        return Finding("missing-field", "file_name must be a non-empty string")
    try:
        check_relative_path(file_name)
    except UnsafePathError as error:
        return Finding("unsafe-file-name", str(error))
    return None


def _validate_images(items: list, report: ValidationReport) -> list[dict]:
    valid: list[dict] = []
    seen_ids: set[int] = set()
    seen_files: set[str] = set()
    for index, image in enumerate(items):
        where = f"images[{index}]"
        if not isinstance(image, dict):
            report.add(Finding("item-not-object", "image is not an object", where))
            continue
        problem = image_problem(image)
        if problem:
            report.add(dataclasses.replace(problem, location=where))
            continue
        if image["id"] in seen_ids:
            report.add(Finding("duplicate-image-id", f"image id {image['id']} repeated", where))
            continue
        file_key = posixpath.normpath(check_relative_path(image["file_name"]))
        if file_key in seen_files:
            report.add(
                Finding(
                    "duplicate-file-name",
                    f"file_name {image['file_name']!r} names a file already listed",
                    where,
                )
            )
            continue
        seen_ids.add(image["id"])
        seen_files.add(file_key)
        valid.append(image)
    return valid


def annotation_error(annotation: dict, images: dict[int, dict], category_ids: set[int]) -> Finding | None:
    """Why an annotation must be left out (``annotation-image-missing`` included), or None.

    Only the checks that decide inclusion; ``annotation_findings`` adds the warnings.
    """
    for field in ("id", "image_id", "category_id"):
        if field not in annotation:
            return Finding("missing-field", f"annotation has no '{field}'")
        if type(annotation[field]) is not int:
            return Finding("id-not-integer", f"{field} {annotation[field]!r}")
    image = images.get(annotation["image_id"])
    if image is None:
        return Finding("annotation-image-missing", f"image_id {annotation['image_id']} not in images")
    if annotation["category_id"] not in category_ids:
        return Finding("unknown-category", f"category_id {annotation['category_id']} not in categories")
    crowd = annotation.get("iscrowd", 0)
    if crowd not in (0, 1) or isinstance(crowd, bool):
        return Finding("bad-iscrowd", f"iscrowd={crowd!r}")
    return segmentation_error(annotation.get("segmentation"), image["height"], image["width"])


def annotation_findings(annotation: dict, images: dict[int, dict], category_ids: set[int]) -> list[Finding]:
    """All findings for one annotation, given the valid images and category ids."""
    error = annotation_error(annotation, images, category_ids)
    if error:
        return [error]
    image = images[annotation["image_id"]]
    segmentation = annotation["segmentation"]
    findings: list[Finding] = []
    if isinstance(segmentation, list):
        findings.extend(polygons_warnings(segmentation, image["height"], image["width"]))
        if annotation.get("iscrowd", 0) == 1:
            findings.append(Finding("crowd-polygon", "crowd region given as polygons"))
    if annotation.get("ignore"):
        findings.append(Finding("ignore-flag", "annotation has ignore=1"))
    findings.extend(check_bbox(annotation.get("bbox"), image["height"], image["width"]))
    if not valid_area(annotation.get("area")):
        findings.append(Finding("area-missing", f"area={annotation.get('area')!r}"))
    return findings


def valid_area(area: Any) -> bool:
    """A usable ``area``: a finite, non-negative number."""
    return type(area) in (int, float) and 0 <= area < float("inf")


def segmentation_area(segmentation: Any, height: int, width: int) -> float:
    """Area of a validated segmentation, used where ``area`` is missing.

    Polygons follow COCO's convention (the polygon's own area, not a pixel count);
    when the lobes of a self-crossing polygon cancel out, the rasterised count is used.
    """
    if isinstance(segmentation, list):
        area = float(sum(polygon_area(polygon) for polygon in segmentation))
        return area if area > 1e-9 else float(rasterised_polygon_area(segmentation, height, width))
    from pycocotools import mask as mask_utils

    if isinstance(segmentation["counts"], list):
        segmentation = mask_utils.frPyObjects(segmentation, height, width)
    return float(mask_utils.area(segmentation))


def _validate_annotations(
    items: list,
    images: list[dict],
    categories: list[dict],
    report: ValidationReport,
    left_out: set,
    progress: ProgressCallback | None = None,
) -> list[dict]:
    """Valid annotations; those of images that validation left out are counted as
    ``annotation-image-missing`` with a message pointing at the image's own problem."""
    images_by_id = {image["id"]: image for image in images}
    category_ids = {category["id"] for category in categories}
    valid: list[dict] = []
    seen_ids: set[int] = set()
    for index, annotation in enumerate(items):
        if progress and index % _ANNOTATION_PROGRESS_EVERY == 0:
            progress(index, len(items))
        if not isinstance(annotation, dict):
            report.add(Finding("item-not-object", "annotation is not an object", f"annotations[{index}]"))
            continue
        where = f"annotations[{index}] id={annotation.get('id')!r}"
        findings = annotation_findings(annotation, images_by_id, category_ids)
        if (
            findings
            and findings[0].code == "annotation-image-missing"
            and is_integer(annotation.get("image_id"))
            and annotation["image_id"] in left_out
        ):
            findings = [
                Finding(
                    "annotation-image-missing",
                    f"image_id {annotation['image_id']} was left out by validation (see its image's problem)",
                )
            ]
        if not has_errors(findings) and annotation["id"] in seen_ids:
            findings.append(Finding("duplicate-annotation-id", f"annotation id {annotation['id']} repeated"))
        report.extend(findings, where)
        if has_errors(findings) or any(finding.code == "annotation-image-missing" for finding in findings):
            continue
        seen_ids.add(annotation["id"])
        if any(finding.code == "area-missing" for finding in findings):
            image = images_by_id[annotation["image_id"]]
            annotation = {
                **annotation,
                "area": segmentation_area(annotation["segmentation"], image["height"], image["width"]),
            }
        valid.append(annotation)
    return valid


def _check_image_files(
    images: list[dict], images_dir: Path, report: ValidationReport, progress: ProgressCallback | None
) -> list[dict]:
    """Keep images whose file exists inside ``images_dir`` and matches width/height."""
    from PIL import Image, UnidentifiedImageError

    valid: list[dict] = []
    for index, image in enumerate(images):
        where = f"images id={image['id']} {image['file_name']!r}"
        if progress:
            progress(index + 1, len(images))
        try:
            path = resolve_inside(images_dir, image["file_name"])
        except UnsafePathError as error:
            report.add(Finding("unsafe-file-name", str(error), where))
            continue
        if not path.is_file():
            report.add(Finding("missing-image-file", f"{path.name} not found in {images_dir}", where))
            continue
        try:
            with Image.open(path) as handle:  # reads the header only
                stored_size = handle.size
                orientation = handle.getexif().get(0x0112, 1)
        except (UnidentifiedImageError, OSError) as error:
            report.add(Finding("unreadable-image-file", f"{path.name}: {error}", where))
            continue
        except Image.DecompressionBombError:
            report.add(
                Finding(
                    "unreadable-image-file",
                    f"{path.name}: more pixels than Pillow's safety limit ({Image.MAX_IMAGE_PIXELS:,})",
                    where,
                )
            )
            continue
        declared = (image["width"], image["height"])
        if stored_size != declared:
            report.add(
                Finding(
                    "image-size-mismatch",
                    f"declared {declared[0]}x{declared[1]}, file is {stored_size[0]}x{stored_size[1]}",
                    where,
                )
            )
            continue
        if orientation in (5, 6, 7, 8):
            report.add(
                Finding(
                    "exif-rotated",
                    f"EXIF orientation {orientation} would show it as {stored_size[1]}x{stored_size[0]}",
                    where,
                )
            )
        valid.append(image)
    return valid


def validate_coco(
    data: dict[str, Any],
    images_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    annotation_progress: ProgressCallback | None = None,
) -> CocoDataset:
    """Validate parsed COCO JSON and return its valid part with the report.

    Args:
        data: the parsed JSON object.
        images_dir: when given, every image file is checked (exists, inside the folder,
            size matches); images failing that are left out with their annotations.
        progress: called as ``progress(done, total)`` while image files are checked.
        annotation_progress: the same while annotations are checked (every few thousand).
    """
    report = ValidationReport()
    raw_images = _as_list(data, "images", report)
    raw_annotations = _as_list(data, "annotations", report)
    raw_categories = _as_list(data, "categories", report)
    categories = validate_categories(raw_categories, report)
    images = _validate_images(raw_images, report)
    if images_dir is not None:
        images = _check_image_files(images, Path(images_dir), report, progress)
    kept_ids = {image["id"] for image in images}
    left_out = {
        image["id"]
        for image in raw_images
        if isinstance(image, dict) and is_integer(image.get("id")) and image["id"] not in kept_ids
    }
    annotations = _validate_annotations(
        raw_annotations, images, categories, report, left_out - kept_ids, annotation_progress
    )
    if annotation_progress:
        annotation_progress(len(raw_annotations), len(raw_annotations))
    report.totals = {
        "images": len(raw_images),
        "images_valid": len(images),
        "annotations": len(raw_annotations),
        "annotations_valid": len(annotations),
        "categories": len(raw_categories),
        "crowd": sum(1 for annotation in annotations if annotation.get("iscrowd", 0) == 1),
    }
    extra = {key: value for key, value in data.items() if key not in TOP_LEVEL_KEYS}
    return CocoDataset(
        images, annotations, categories, report, Path(images_dir) if images_dir else None, extra=extra
    )


def load_coco(
    annotations_path: Path,
    images_dir: Path | None,
    max_bytes: int,
    progress: ProgressCallback | None = None,
    annotation_progress: ProgressCallback | None = None,
) -> CocoDataset:
    """Read, parse and validate a COCO file (see ``validate_coco``).

    Raises:
        CocoFileError: when the file cannot be read as a COCO JSON object at all.
    """
    data = read_coco_json(annotations_path, max_bytes)
    dataset = validate_coco(data, images_dir, progress, annotation_progress)
    dataset.source = Path(annotations_path)
    logger.info(
        "loaded %s: %d/%d images, %d/%d annotations valid, %d errors, %d warnings",
        annotations_path,
        len(dataset.images),
        dataset.report.totals["images"],
        len(dataset.annotations),
        dataset.report.totals["annotations"],
        dataset.report.errors,
        dataset.report.warnings,
    )
    return dataset


def save_coco(path: Path, dataset: CocoDataset) -> None:
    """Write the dataset as COCO JSON atomically, original ids preserved."""
    atomic_write_json(path, dataset.to_dict())
