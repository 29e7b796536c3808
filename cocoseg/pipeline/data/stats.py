"""Dataset statistics, computed once per annotation file and label map, then cached.

Built to run on COCO-train scale (118k images, 860k annotations) in less time and
memory than pycocotools' own ``COCO(path)``:

* the JSON is streamed (``cocoseg.pipeline.data.jsonstream``): one annotation exists as Python
  objects at a time, every one passes the same validator as ``load_coco``;
* pixel shares come from semantic masks rasterised at ``RESOLUTION`` x ``RESOLUTION``
  per image (the image stretched to a square) by ``cocoseg.pipeline.data.lowres``, each
  low-resolution pixel weighted by the number of full-resolution pixels it stands
  for. Pixel-centre sampling keeps class totals unbiased. Crowd and overlap rules are
  the label map's (``larger-first`` is counted as ``ignore-different`` here, since it
  needs all of an image's instances at once);
* the result is cached by the file's SHA-256 and the label map, so a second request
  is a cache read.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cocoseg.pipeline.core.cache import CACHE_EXPIRE_SECONDS, file_sha256, known_sha256, open_cache
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.data.coco import (
    CocoFileError,
    annotation_error,
    image_problem,
    read_annotation_text,
    segmentation_area,
    valid_area,
    validate_categories,
)
from cocoseg.pipeline.data.jsonstream import JsonStreamError, ObjectStream
from cocoseg.pipeline.data.labels import (
    IGNORE_INDEX,
    LabelMap,
    build_label_map,
    default_label_map,
    default_preset,
)
from cocoseg.pipeline.data.lowres import LowResolutionCanvases
from cocoseg.pipeline.data.masks import is_crowd
from cocoseg.pipeline.data.registry import get_dataset, split_report
from cocoseg.pipeline.data.validation import ValidationReport, decode_rle_string

logger = logging.getLogger(__name__)

RESOLUTION = 64
STATS_VERSION = 2
SMALL_AREA = 32**2
MEDIUM_AREA = 96**2
_PROGRESS_EVERY = 20_000

ProgressCallback = Callable[[int, int], None]


def _rle_region(segmentation: dict, height: int, width: int, resolution: int) -> np.ndarray:
    """Sample an RLE at the centres of a ``resolution`` grid without decoding it whole."""
    counts = segmentation["counts"]
    runs = np.asarray(counts if isinstance(counts, list) else decode_rle_string(counts), dtype=np.int64)
    ends = np.cumsum(runs)
    rows = ((np.arange(resolution) + 0.5) * height / resolution).astype(np.int64)
    cols = ((np.arange(resolution) + 0.5) * width / resolution).astype(np.int64)
    flat = cols[None, :] * height + rows[:, None]  # column-major, as COCO RLE is
    run_index = np.searchsorted(ends, flat, side="right")
    return (run_index % 2) == 1


class _Accumulator:
    """Per-image low-resolution masks and per-class counters for one pass."""

    def __init__(self, images: list[dict], label_map: LabelMap, resolution: int) -> None:
        self.label_map = label_map
        self.resolution = resolution
        self.index_of = {image["id"]: index for index, image in enumerate(images)}
        self.images_by_id = {image["id"]: image for image in images}
        self.category_ids: set[int] = set()
        self.sizes = np.array(
            [(image["width"], image["height"]) for image in images], dtype=np.int64
        ).reshape(-1, 2)
        self.classes = label_map.num_classes
        self.canvases = LowResolutionCanvases(
            len(images), resolution, label_map.crowd == "ignore", label_map.overlap
        )
        # plain Python containers: item updates on NumPy arrays cost ~10x more per annotation
        self.presence = bytearray(len(images) * self.classes)
        self.objects = [0] * len(images)
        self.instances = [0] * self.classes
        self.crowd = [0] * self.classes
        self.buckets = [[0, 0, 0] for _ in range(self.classes)]
        self.skipped: collections.Counter[str] = collections.Counter()
        self.annotations = 0
        self.used = 0
        self.crowd_total = 0
        self.seen_ids: set[int] = set()

    def add(self, annotation: Any) -> None:
        self.annotations += 1
        if not isinstance(annotation, dict):
            self.skipped["item-not-object"] += 1
            return
        error = annotation_error(annotation, self.images_by_id, self.category_ids)
        if error is not None:
            self.skipped[error.code] += 1
            return
        if annotation["id"] in self.seen_ids:
            self.skipped["duplicate-annotation-id"] += 1
            return
        self.seen_ids.add(annotation["id"])
        self.used += 1
        image = self.images_by_id[annotation["image_id"]]
        index = self.index_of[annotation["image_id"]]
        crowd = is_crowd(annotation)
        self.crowd_total += crowd
        self.objects[index] += not crowd
        class_index = self.label_map.class_of(annotation["category_id"])
        if class_index == 0:
            return
        self.presence[index * self.classes + class_index] = 1
        segmentation = annotation["segmentation"]
        if crowd:
            self.crowd[class_index] += 1
        else:
            self.instances[class_index] += 1
            area = annotation.get("area")
            if not valid_area(area):
                area = segmentation_area(segmentation, image["height"], image["width"])
            self.buckets[class_index][0 if area < SMALL_AREA else 1 if area < MEDIUM_AREA else 2] += 1
        if isinstance(segmentation, list):
            self.canvases.add_polygons(
                index, class_index, crowd, segmentation, image["width"], image["height"]
            )
        else:
            region = _rle_region(segmentation, image["height"], image["width"], self.resolution)
            self.canvases.add_region(index, class_index, crowd, region)

    def pixel_counts(self) -> np.ndarray:
        """Full-resolution pixel count per mask value (0..255), from weighted low-res pixels.

        Images are grouped by size (COCO has a few hundred distinct sizes), so each
        group is one ``bincount`` over its canvases.
        """
        canvases = self.canvases.finish()
        totals = np.zeros(256, dtype=np.float64)
        if not len(self.sizes):
            return totals
        sizes, group_of = np.unique(self.sizes, axis=0, return_inverse=True)
        group_of = group_of.ravel()
        order = np.argsort(group_of, kind="stable")
        boundaries = np.searchsorted(group_of[order], np.arange(len(sizes) + 1))
        for group, (width, height) in enumerate(sizes):
            members = order[boundaries[group] : boundaries[group + 1]]
            histogram = np.zeros(256, dtype=np.int64)
            for start in range(0, len(members), 2048):
                histogram += np.bincount(canvases[members[start : start + 2048]].ravel(), minlength=256)
            totals += histogram * (width * height / float(self.resolution**2))
        return totals


def _guess_categories(text: str) -> list | None:
    """Find the top-level ``categories`` array without parsing what comes before it.

    COCO files usually put ``categories`` last, after the big ``annotations`` array.
    The guess (the last ``"categories"`` key in the text) is verified against the real
    value once the stream reaches it; a wrong guess only costs a second pass.
    """
    position = text.rfind('"categories"')
    while position != -1:
        stream = ObjectStream(text)
        after = stream.skip_whitespace(position + len('"categories"'))
        if text.startswith(":", after):
            stream.position = stream.skip_whitespace(after + 1)
            try:
                value = stream.read_value()
            except JsonStreamError:
                value = None
            if isinstance(value, list):
                return value
        position = text.rfind('"categories"', 0, position)
    return None


def _valid_categories(raw: list) -> list[dict]:
    """The categories the validator keeps (``coco.validate_categories``: a repeated id is dropped), so a
    label map built from them has the classes of the one a prepared set and its models were built with."""
    return validate_categories(raw, ValidationReport())


def _stream_pass(
    text: str,
    categories: list,
    label_map_for: Callable[[list[dict]], LabelMap],
    progress: ProgressCallback | None,
) -> tuple[_Accumulator, list]:
    """One pass over the text; returns the accumulator and the real categories value."""
    stream = ObjectStream(text)
    images: list[dict] | None = None
    accumulator: _Accumulator | None = None
    deferred_annotations: int | None = None
    real_categories: list | None = None
    valid_categories = _valid_categories(categories)
    for key in stream.members():
        if key == "images":
            images = _read_images(stream)
            accumulator = _Accumulator(images, label_map_for(valid_categories), RESOLUTION)
            accumulator.category_ids = {category["id"] for category in valid_categories}
        elif key == "annotations":
            if accumulator is None:
                deferred_annotations = stream.position
                for _item in stream.iter_array():
                    pass
            else:
                _consume(stream.iter_array(), accumulator, stream, len(text), progress)
        elif key == "categories":
            real_categories = stream.read_value()
    if accumulator is None:
        raise CocoFileError("the file has no top-level 'images' list")
    if deferred_annotations is not None:
        _consume(stream.iter_array_at(deferred_annotations), accumulator, None, len(text), progress)
    return accumulator, real_categories if isinstance(real_categories, list) else []


def _read_images(stream: ObjectStream) -> list[dict]:
    images: list[dict] = []
    seen_ids: set[int] = set()
    for image in stream.iter_array():
        if isinstance(image, dict) and image_problem(image) is None and image["id"] not in seen_ids:
            seen_ids.add(image["id"])
            images.append(
                {
                    "id": image["id"],
                    "width": image["width"],
                    "height": image["height"],
                    "file_name": str(image.get("file_name", "")),
                }
            )
    return images


def _consume(
    items,
    accumulator: _Accumulator,
    stream: ObjectStream | None,
    total: int,
    progress: ProgressCallback | None,
) -> None:
    for count, annotation in enumerate(items, start=1):
        accumulator.add(annotation)
        if progress and count % _PROGRESS_EVERY == 0 and stream is not None:
            progress(stream.position, total)


def compute_stats(
    annotations_path: Path,
    max_bytes: int,
    label_preset: str | None = None,
    custom_names: tuple[str, ...] = (),
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Statistics of one COCO annotation file (uncached; see ``dataset_stats``).

    Args:
        label_preset: a ``labels.PRESETS`` name; None picks the dataset's default.
        custom_names: category names for the ``custom`` preset.
        progress: called as ``progress(bytes_done, bytes_total)``.

    Raises:
        CocoFileError: unreadable file, not a JSON object, or no ``images`` list.
        LabelMapError: a preset that does not fit the categories.
    """
    started = time.perf_counter()
    text = read_annotation_text(annotations_path, max_bytes)

    def label_map_for(categories: list[dict]) -> LabelMap:
        if label_preset is None:
            return default_label_map(categories)
        return build_label_map(label_preset, categories, custom_names)

    try:
        guess = _guess_categories(text) or []
        accumulator, real = _stream_pass(text, guess, label_map_for, progress)
        if real != guess:
            logger.info("categories guess missed in %s; second pass", annotations_path)
            accumulator, real = _stream_pass(text, real, label_map_for, progress)
    except JsonStreamError as error:
        raise CocoFileError(f"annotation file {annotations_path} is not valid COCO JSON: {error}") from None
    del text
    result = _summarise(accumulator, len(_valid_categories(real)))
    result["categories_seen"] = _valid_categories(real)  # dataset_stats caches them apart
    result["seconds"] = round(time.perf_counter() - started, 3)
    if progress:
        progress(1, 1)
    return result


def _summarise(accumulator: _Accumulator, category_count: int) -> dict[str, Any]:
    label_map = accumulator.label_map
    pixels = accumulator.pixel_counts()
    total_pixels = float(pixels.sum()) or 1.0
    presence_matrix = np.frombuffer(bytes(accumulator.presence), dtype=np.uint8).reshape(
        -1, accumulator.classes
    )
    images_with = presence_matrix.sum(axis=0)
    presence = presence_matrix[:, 1:].astype(np.float32)
    cooccurrence = np.rint(presence.T @ presence).astype(np.int64)
    classes = []
    for index, name in enumerate(label_map.class_names):
        classes.append(
            {
                "index": index,
                "name": name,
                "color": list(label_map.palette[index]),
                "instances": int(accumulator.instances[index]),
                "crowd": int(accumulator.crowd[index]),
                "images": int(images_with[index]),
                "pixel_share": float(pixels[index] / total_pixels),
                "small": accumulator.buckets[index][0],
                "medium": accumulator.buckets[index][1],
                "large": accumulator.buckets[index][2],
            }
        )
    sizes, size_counts = (
        np.unique(accumulator.sizes, axis=0, return_counts=True)
        if len(accumulator.sizes)
        else (np.zeros((0, 2)), [])
    )
    widths, heights = accumulator.sizes[:, 0], accumulator.sizes[:, 1]
    return {
        "version": STATS_VERSION,
        "resolution": accumulator.resolution,
        "label_map": label_map.to_dict(),
        "totals": {
            "images": int(len(accumulator.sizes)),
            "annotations": accumulator.annotations,
            "annotations_used": accumulator.used,
            "crowd": int(accumulator.crowd_total),
            "categories": category_count,
            "skipped": dict(accumulator.skipped),
        },
        "classes": classes,
        "ignore_share": float(pixels[IGNORE_INDEX] / total_pixels),
        "image_sizes": {
            "sizes": [
                [int(width), int(height), int(count)] for (width, height), count in zip(sizes, size_counts)
            ],
            "width": _describe(widths),
            "height": _describe(heights),
        },
        "objects_per_image": np.bincount(accumulator.objects).tolist() if accumulator.objects else [],
        "image_index": _image_index(accumulator, presence_matrix),
        "cooccurrence": cooccurrence.tolist(),
    }


def _image_index(accumulator: _Accumulator, presence_matrix: np.ndarray) -> dict[str, list]:
    """Per image, in file order: id, file name, size, objects and the classes present.

    Lets the Explore page filter and page through images by class without parsing the
    annotation file (a few MB for COCO-train, stored with the cached statistics).
    """
    images = sorted(accumulator.images_by_id.values(), key=lambda image: accumulator.index_of[image["id"]])
    return {
        "ids": [image["id"] for image in images],
        "files": [image["file_name"] for image in images],
        "widths": [int(image["width"]) for image in images],
        "heights": [int(image["height"]) for image in images],
        "objects": list(accumulator.objects),
        "classes": [np.flatnonzero(row).tolist() for row in presence_matrix],
    }


def _describe(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {"min": 0, "median": 0, "max": 0}
    return {"min": int(values.min()), "median": float(np.median(values)), "max": int(values.max())}


# the last few statistics read, kept in this process: unpickling COCO-train's (its image index
# included) takes about half a second, and a page reads them on every switch and reload.
# Entries are keyed by content hash, so they never go stale; callers must not change them.
RECENT_STATS = 4
_RECENT: dict[tuple, dict[str, Any]] = {}


def stats_key(digest: str, label_preset: str, custom_names: tuple[str, ...] = ()) -> tuple:
    """The cache key of a file's statistics under a label map: one key for the CLI and the app.

    The preset is always a resolved name (never None for "the default"), so statistics that
    ``cocoseg data stats`` computed with the default map are found by a page that asks for
    that map by name, and the other way round.
    """
    return ("stats", STATS_VERSION, RESOLUTION, digest, label_preset, tuple(custom_names))


def _categories_key(digest: str) -> tuple:
    return ("categories", 2, digest)  # 2: repeated ids dropped, as the validator does


def known_categories(workspace: Workspace, digest: str) -> list[dict] | None:
    """A file's categories as a statistics pass or ``file_categories`` recorded them, or None."""
    memo = (str(workspace.root), _categories_key(digest))
    if memo in _RECENT_CATEGORIES:
        return _RECENT_CATEGORIES[memo]
    with open_cache(workspace, "stats") as cache:
        categories = cache.get(_categories_key(digest))
    if categories is not None:
        _RECENT_CATEGORIES[memo] = categories
    return categories


_RECENT_CATEGORIES: dict[tuple, list[dict]] = {}  # small, keyed by content hash: never stale


def _remember_categories(workspace: Workspace, digest: str, categories: list[dict]) -> None:
    with open_cache(workspace, "stats") as cache:
        cache.set(_categories_key(digest), categories, expire=CACHE_EXPIRE_SECONDS)


def file_categories(workspace: Workspace, annotations_path: Path, max_bytes: int) -> list[dict]:
    """The valid categories of an annotation file, cached by its SHA-256.

    What a page needs to offer the presets that fit and preselect the default
    (``labels.fitting_presets``, ``labels.default_preset``) without parsing every annotation:
    the ``categories`` value is found from the end of the text (``_guess_categories``) and
    checked by the stream only when that guess fails.

    Raises:
        CocoFileError: unreadable file, or not JSON.
    """
    digest = file_sha256(workspace, annotations_path)
    known = known_categories(workspace, digest)
    if known is not None:
        return known
    text = read_annotation_text(annotations_path, max_bytes)
    raw = _guess_categories(text)
    if raw is None:
        raw = []
        try:
            for key in (stream := ObjectStream(text)).members():
                if key == "categories":
                    value = stream.read_value()
                    raw = value if isinstance(value, list) else []
        except JsonStreamError as error:
            raise CocoFileError(
                f"annotation file {annotations_path} is not valid COCO JSON: {error}"
            ) from None
    del text
    categories = _valid_categories(raw)
    _remember_categories(workspace, digest, categories)
    return categories


def resolved_preset(workspace: Workspace, digest: str, label_preset: str | None) -> str | None:
    """``label_preset``, or for None the file's ``default_preset`` when its categories are known."""
    if label_preset is not None:
        return label_preset
    categories = known_categories(workspace, digest)
    return None if categories is None else default_preset(categories)


def cached_stats(
    workspace: Workspace,
    annotations_path: Path,
    label_preset: str | None = None,
    custom_names: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """The cached statistics for this request, or None (nothing is computed, not even the file's
    hash: a page can ask this in its callback and leave the computing to a job)."""
    digest = known_sha256(workspace, annotations_path)
    if digest is None:
        return None
    preset = resolved_preset(workspace, digest, label_preset)
    if preset is None:
        return None
    key = stats_key(digest, preset, custom_names)
    memo = (str(workspace.root), key)
    cached = _RECENT.get(memo)
    if cached is None:
        with open_cache(workspace, "stats") as cache:
            cached = cache.get(key)
        if cached is None:
            return None
        _RECENT[memo] = cached
        while len(_RECENT) > RECENT_STATS:
            _RECENT.pop(next(iter(_RECENT)))
    return {**cached, "cached": True}


def dataset_stats(
    workspace: Workspace,
    annotations_path: Path,
    max_bytes: int,
    label_preset: str | None = None,
    custom_names: tuple[str, ...] = (),
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Cached ``compute_stats``: keyed by the file's SHA-256 and the resolved label map (``stats_key``).

    The returned dict gains ``"cached": True`` when it came from the cache.
    """
    digest = file_sha256(workspace, annotations_path)
    cached = cached_stats(workspace, annotations_path, label_preset, custom_names)
    if cached is not None:
        return cached
    result = compute_stats(annotations_path, max_bytes, label_preset, custom_names, progress)
    result["sha256"] = digest
    categories = result.pop("categories_seen")
    _remember_categories(workspace, digest, categories)
    preset = label_preset if label_preset is not None else default_preset(categories)
    with open_cache(workspace, "stats") as cache:
        cache.set(stats_key(digest, preset, custom_names), result, expire=CACHE_EXPIRE_SECONDS)
    return {**result, "cached": False}


def split_stats(
    workspace: Workspace,
    dataset: str,
    split: str,
    max_bytes: int,
    label_preset: str | None = None,
    compute: bool = True,
) -> dict[str, Any] | None:
    """``dataset_stats`` of one split of a registered dataset (``compute`` False: only a cached
    result, else None).

    Raises:
        RegistryError: no such dataset or split (and what ``dataset_stats`` raises).
    """
    source = get_dataset(workspace, dataset).split(split)
    if not compute:
        return cached_stats(workspace, source.annotations, label_preset)
    return dataset_stats(workspace, source.annotations, max_bytes, label_preset)


def split_categories(workspace: Workspace, dataset: str, split: str, max_bytes: int) -> list[dict]:
    """``file_categories`` of one split of a registered dataset."""
    source = get_dataset(workspace, dataset).split(split)
    return file_categories(workspace, source.annotations, max_bytes)


def known_report(workspace: Workspace, dataset: str, split: str, max_bytes: int) -> ValidationReport | None:
    """The split's cached validation report (from the Home page or ``data validate``), never computed
    here, so a page beside the statistics costs no parse; None when unchecked or unreadable."""
    try:
        return split_report(workspace, get_dataset(workspace, dataset), split, max_bytes, compute=False)
    except (CocoFileError, ValueError):
        return None
