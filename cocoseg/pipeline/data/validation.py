"""COCO validator: every problem is reported, nothing is silently dropped.

Policy (documented in README "Validation"):
    * error: the item cannot be used and is left out of the loaded dataset
      (an annotation with a broken segmentation, an image whose file is missing...);
    * warning: the item is kept, something about it deserves a look
      (bad ``bbox``, missing ``area``, polygon outside the image...).

Checks that guard native code (pycocotools' C rasteriser) run in pure Python first:
NaN/Inf/huge coordinates, 4-number polygons (pycocotools mistakes them for boxes), and
RLE whose counts do not add up to height*width.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import operator
from collections.abc import Iterable
from typing import Any

ERROR = "error"
WARNING = "warning"
MAX_COORDINATE = 1e6
MAX_IMAGE_SIDE = 100_000
EXAMPLES_PER_CHECK = 5

# code -> (severity, what it means). The report and the docs are built from this table.
CHECKS: dict[str, tuple[str, str]] = {
    "missing-key": (ERROR, "top-level key missing or not a list"),
    "item-not-object": (ERROR, "list item is not a JSON object"),
    "missing-field": (ERROR, "required field missing"),
    "id-not-integer": (ERROR, "id is not an integer (string ids are refused)"),
    "name-not-text": (ERROR, "a category's name (or supercategory) is not a string"),
    "duplicate-image-id": (ERROR, "two images share an id (the later one is left out)"),
    "duplicate-file-name": (ERROR, "two images share a file_name (the later one is left out)"),
    "duplicate-annotation-id": (ERROR, "two annotations share an id (the later one is left out)"),
    "duplicate-category-id": (ERROR, "two categories share an id (the later one is left out)"),
    "duplicate-category-name": (WARNING, "two categories share a name"),
    "bad-image-size": (ERROR, "width/height missing, not a positive integer, or absurdly large"),
    "unsafe-file-name": (ERROR, "file_name is absolute, climbs out with '..', or leaves the image folder"),
    "missing-image-file": (ERROR, "image file not found"),
    "unreadable-image-file": (ERROR, "image file cannot be read as an image"),
    "image-size-mismatch": (ERROR, "width/height differ from the image file"),
    "exif-rotated": (WARNING, "EXIF orientation rotates the image; annotations refer to the stored pixels"),
    "annotation-image-missing": (WARNING, "annotation points to an image that is not in images (left out)"),
    "unknown-category": (ERROR, "category_id is not in categories"),
    "segmentation-missing": (ERROR, "segmentation missing or empty"),
    "segmentation-type": (ERROR, "segmentation is neither polygons nor RLE"),
    "polygon-not-list": (ERROR, "polygon is not a flat list of numbers"),
    "polygon-four-numbers": (ERROR, "polygon has 4 numbers (pycocotools would read it as a box)"),
    "polygon-too-short": (ERROR, "polygon has fewer than 6 numbers (3 points)"),
    "polygon-odd-length": (ERROR, "polygon has an odd count of numbers"),
    "coordinate-not-number": (ERROR, "coordinate is not a number"),
    "coordinate-not-finite": (ERROR, "coordinate is NaN, Infinity or huge"),
    "coordinate-far-outside": (
        ERROR,
        "coordinate more than four image sides outside the image (the rasteriser's memory grows with it)",
    ),
    "polygon-outside-image": (WARNING, "polygon lies entirely outside the image"),
    "polygon-zero-area": (WARNING, "polygon has zero area"),
    "polygon-self-intersecting": (
        WARNING,
        "polygon crosses itself (its signed area cancels out); its pixels still count",
    ),
    "rle-malformed": (ERROR, "RLE lacks counts/size or they have the wrong type"),
    "rle-size-mismatch": (ERROR, "RLE size differs from the image's height/width"),
    "rle-counts-sum": (ERROR, "RLE counts do not add up to height*width"),
    "bad-bbox": (WARNING, "bbox is not 4 finite numbers with positive width and height"),
    "bbox-outside-image": (WARNING, "bbox lies outside the image"),
    "area-missing": (WARNING, "area missing or invalid (recomputed from the segmentation)"),
    "bad-iscrowd": (ERROR, "iscrowd is not 0 or 1"),
    "crowd-polygon": (WARNING, "iscrowd=1 with polygons (accepted; treated as a crowd region)"),
    "ignore-flag": (WARNING, "'ignore' flag set (treated like a crowd region: ignore index in masks)"),
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem: its check code, a message and where it is (``annotations[12] id=5``)."""

    code: str
    message: str
    location: str = ""

    @property
    def severity(self) -> str:
        return CHECKS[self.code][0]


class ValidationReport:
    """Counts per check with the first few examples, and dataset totals."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, list[dict[str, str]]] = {}
        self.totals: dict[str, int] = {}

    def add(self, finding: Finding) -> None:
        self.counts[finding.code] += 1
        examples = self.examples.setdefault(finding.code, [])
        if len(examples) < EXAMPLES_PER_CHECK:
            examples.append({"message": finding.message, "location": finding.location})

    def extend(self, findings: Iterable[Finding], location: str) -> None:
        for finding in findings:
            self.add(dataclasses.replace(finding, location=location))

    def count(self, severity: str) -> int:
        return sum(count for code, count in self.counts.items() if CHECKS[code][0] == severity)

    @property
    def errors(self) -> int:
        return self.count(ERROR)

    @property
    def warnings(self) -> int:
        return self.count(WARNING)

    def codes(self) -> set[str]:
        return set(self.counts)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, ordered errors first then by count."""
        checks = [
            {
                "code": code,
                "severity": CHECKS[code][0],
                "title": CHECKS[code][1],
                "count": count,
                "examples": self.examples.get(code, []),
            }
            for code, count in self.counts.items()
        ]
        checks.sort(key=lambda check: (check["severity"] != ERROR, -check["count"], check["code"]))
        return {
            "errors": self.errors,
            "warnings": self.warnings,
            "totals": dict(self.totals),
            "checks": checks,
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> ValidationReport:
        report = cls()
        for check in payload.get("checks", []):
            report.counts[check["code"]] = check["count"]
            report.examples[check["code"]] = list(check.get("examples", []))
        report.totals = dict(payload.get("totals", {}))
        return report


def is_integer(value: Any) -> bool:
    """True for real integers (not bools, not strings of digits)."""
    return type(value) is int


_NUMBER_TYPES = {int, float}


def _number_problem(
    values: list, low: float = -MAX_COORDINATE, high: float = MAX_COORDINATE
) -> Finding | None:
    """First non-number, non-finite or out-of-[low, high] value; C-level passes on the common path."""
    if set(map(type, values)) <= _NUMBER_TYPES:
        total = sum(values)
        if total == total and abs(total) != float("inf") and max(values) <= high and min(values) >= low:
            return None
    for value in values:
        kind = type(value)
        if kind is not int and kind is not float:
            return Finding("coordinate-not-number", f"coordinate {str(value)[:40]!r} is not a number")
        if kind is float and not math.isfinite(value):
            return Finding("coordinate-not-finite", f"coordinate {value} is not finite")
        if abs(value) > MAX_COORDINATE:
            return Finding("coordinate-not-finite", f"coordinate {value:g} is beyond {MAX_COORDINATE:g}")
        if not low <= value <= high:
            return Finding("coordinate-far-outside", f"coordinate {value:g} is outside [{low:g}, {high:g}]")
    return None


def polygon_area(polygon: list) -> float:
    """Shoelace area of a flat ``[x0, y0, x1, y1, ...]`` polygon."""
    xs = polygon[0::2]
    ys = polygon[1::2]
    xs_next = xs[1:] + xs[:1]
    ys_next = ys[1:] + ys[:1]
    return abs(sum(map(operator.mul, xs, ys_next)) - sum(map(operator.mul, ys, xs_next))) / 2.0


def polygons_error(polygons: list, height: int, width: int) -> Finding | None:
    """The first reason pycocotools must not see these polygons, or None.

    Coordinates must lie within four image sides of the image: pycocotools allocates
    in proportion to the polygon's perimeter, so far-away vertices could cost gigabytes.
    """
    margin = 4 * max(height, width) + 16
    if not polygons:
        return Finding("segmentation-missing", "segmentation is an empty list")
    for polygon in polygons:
        if type(polygon) is not list:
            return Finding("polygon-not-list", f"expected a list of numbers, got {type(polygon).__name__}")
        length = len(polygon)
        if length == 4:
            return Finding("polygon-four-numbers", "polygon has 4 numbers")
        if length < 6:
            return Finding("polygon-too-short", f"polygon has {length} numbers")
        if length % 2:
            return Finding("polygon-odd-length", f"polygon has {length} numbers")
        problem = _number_problem(polygon, -margin, max(height, width) + margin)
        if problem:
            return problem
    return None


def polygons_warnings(polygons: list, height: int, width: int) -> list[Finding]:
    """Warnings for valid polygons: entirely outside the image, zero area, or crossing itself."""
    outside = True
    area = 0.0
    extent = 0.0
    for polygon in polygons:
        xs, ys = polygon[0::2], polygon[1::2]
        if max(xs) > 0 and min(xs) < width and max(ys) > 0 and min(ys) < height:
            outside = False
        area += polygon_area(polygon)
        extent = max(extent, (max(xs) - min(xs)) * (max(ys) - min(ys)))
    if outside:
        return [Finding("polygon-outside-image", f"all points outside the {width}x{height} image")]
    if area <= 1e-9 * max(extent, 1.0):  # float noise of collinear points is ~1e-16 of the extent
        if rasterised_polygon_area(polygons, height, width) > 0:
            return [Finding("polygon-self-intersecting", "the polygon's lobes cancel in the shoelace area")]
        return [Finding("polygon-zero-area", "polygon points are collinear or repeated")]
    return []


def rasterised_polygon_area(polygons: list, height: int, width: int) -> int:
    """Pixels pycocotools paints for validated polygons (exact for self-crossing ones too)."""
    from pycocotools import mask as mask_utils

    return int(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))))


def decode_rle_string(counts: str) -> list[int]:
    """Decode COCO's compressed RLE string (pycocotools' LEB128-like scheme) in pure Python.

    Raises:
        ValueError: on characters outside the alphabet or a value cut short.
    """
    values: list[int] = []
    position = 0
    length = len(counts)
    while position < length:
        value = 0
        shift = 0
        more = True
        while more:
            if position >= length:
                raise ValueError("RLE string ends in the middle of a value")
            code = ord(counts[position]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"character {counts[position]!r} is not in the RLE alphabet")
            value |= (code & 0x1F) << (5 * shift)
            more = bool(code & 0x20)
            position += 1
            shift += 1
            if not more and code & 0x10:
                value |= -1 << (5 * shift)
        if len(values) > 2:
            value += values[-2]
        values.append(value)
    return values


def check_rle(rle: dict, height: int, width: int) -> list[Finding]:
    """Problems of an RLE segmentation (list or string counts)."""
    counts = rle.get("counts")
    size = rle.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(is_integer(side) for side in size)):
        return [Finding("rle-malformed", "RLE size must be [height, width] integers")]
    if size != [height, width]:
        return [Finding("rle-size-mismatch", f"RLE size {size} but the image is [{height}, {width}]")]
    if isinstance(counts, list):
        if not all(is_integer(count) and count >= 0 for count in counts):
            return [Finding("rle-malformed", "RLE counts must be non-negative integers")]
        values = counts
    elif isinstance(counts, str):
        try:
            values = decode_rle_string(counts)
        except ValueError as error:
            return [Finding("rle-malformed", f"RLE string: {error}")]
        if any(value < 0 for value in values):
            return [Finding("rle-malformed", "RLE string decodes to a negative run")]
    else:
        return [Finding("rle-malformed", "RLE counts must be a list or a string")]
    total = sum(values)
    if total != height * width:
        return [
            Finding("rle-counts-sum", f"counts add up to {total}, expected {height}*{width}={height * width}")
        ]
    return []


def segmentation_error(segmentation: Any, height: int, width: int) -> Finding | None:
    """The reason a segmentation must not be rasterised, or None."""
    if segmentation is None:
        return Finding("segmentation-missing", "no segmentation")
    if isinstance(segmentation, list):
        return polygons_error(segmentation, height, width)
    if isinstance(segmentation, dict):
        problems = check_rle(segmentation, height, width)
        return problems[0] if problems else None
    return Finding("segmentation-type", f"segmentation is a {type(segmentation).__name__}")


def check_segmentation(segmentation: Any, height: int, width: int) -> list[Finding]:
    """Problems of any COCO segmentation; an ERROR finding means it must not be rasterised."""
    error = segmentation_error(segmentation, height, width)
    if error:
        return [error]
    return polygons_warnings(segmentation, height, width) if isinstance(segmentation, list) else []


def check_bbox(bbox: Any, height: int, width: int) -> list[Finding]:
    """bbox problems are warnings: semantic masks never use the box."""
    if not (isinstance(bbox, list) and len(bbox) == 4 and _number_problem(bbox) is None):
        return [Finding("bad-bbox", f"bbox {str(bbox)[:60]} is not 4 finite numbers")]
    x, y, box_width, box_height = bbox
    if box_width <= 0 or box_height <= 0:
        return [Finding("bad-bbox", f"bbox has width {box_width} and height {box_height}")]
    if x >= width or y >= height or x + box_width <= 0 or y + box_height <= 0:
        return [Finding("bbox-outside-image", f"bbox {bbox} is outside the {width}x{height} image")]
    return []


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(finding.severity == ERROR for finding in findings)


def report_lines(title: str, report: ValidationReport) -> list[str]:
    """Human-readable report lines: totals, then each check with its first examples (``data validate``
    prints them, the add-dataset form shows them)."""
    totals = report.totals
    lines = [
        f"{title}: {totals.get('images_valid', 0)}/{totals.get('images', 0)} images valid, "
        f"{totals.get('annotations_valid', 0)}/{totals.get('annotations', 0)} annotations valid, "
        f"{totals.get('categories', 0)} categories, {totals.get('crowd', 0)} crowd regions",
    ]
    if totals.get("unlabelled"):
        lines.append("  unlabelled: images without annotations (nothing to train on or evaluate against)")
    if not report.counts:
        lines.append("  no problems found")
        return lines
    lines.append(f"  {report.errors} errors, {report.warnings} warnings")
    for check in report.to_dict()["checks"]:
        lines.append(
            f"  {check['severity'].upper():<7} {check['code']:<26} {check['count']:>7}  {check['title']}"
        )
        for example in check["examples"][:3]:
            lines.append(f"          {example['location']}: {example['message']}")
    return lines
