"""The dataset registry: named COCO datasets, each with one or more splits.

The bundled demo (``assets/demo/coco_tiny``) is always registered as ``demo`` with
splits ``train`` and ``val``; it is built in rather than written to the registry
file, so it keeps working wherever the project folder moves. User datasets live in
``<workspace>/datasets.json`` (written atomically under a lock).

A folder of images without annotations becomes an *unlabelled* split
(``add_image_folder``): cocoseg writes a COCO file listing the images, with no
annotations and no categories, under ``<workspace>/image_sets/``, so every reader of
splits handles it like any other; ``is_unlabelled`` tells the two kinds apart.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path

from cocoseg.pipeline.core.cache import CACHE_EXPIRE_SECONDS, file_sha256, known_sha256, open_cache
from cocoseg.pipeline.core.keyed_locks import KeyedLocks
from cocoseg.pipeline.core.settings import DEMO_DATASET_DIR
from cocoseg.pipeline.core.workspace import Workspace, atomic_write_json, check_name, now_iso, read_json
from cocoseg.pipeline.data.coco import (
    CocoDataset,
    CocoFileError,
    check_annotation_file,
    check_structure,
    load_coco,
)
from cocoseg.pipeline.data.images import IMAGE_SUFFIXES
from cocoseg.pipeline.data.validation import ValidationReport

logger = logging.getLogger(__name__)

DEMO_NAME = "demo"
REGISTRY_VERSION = 1
REPORT_VERSION = 2  # 2: totals carry "unlabelled"
UNLABELLED = "unlabelled"
# the size recorded for an image whose header cannot be read (see ``add_image_folder``)
UNREADABLE_SIZE = 1


class RegistryError(ValueError):
    """A registry request that cannot be carried out; the message says why and what to do.

    ``field`` names the request's part at fault (name, split, annotations, images) when one
    is, so a form shows the line beside that field.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a dataset: its annotation file and image folder (absolute paths)."""

    annotations: Path
    images: Path


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset."""

    name: str
    splits: dict[str, Split]
    builtin: bool = False
    added: str = ""

    def split(self, split: str) -> Split:
        try:
            return self.splits[split]
        except KeyError:
            raise RegistryError(
                f"dataset {self.name!r} has no split {split!r}; it has: {', '.join(self.splits)}"
            ) from None


def demo_entry() -> DatasetEntry:
    """The bundled demo dataset (160 real COCO 2017 images)."""
    return DatasetEntry(
        DEMO_NAME,
        {
            split: Split(
                DEMO_DATASET_DIR / "annotations" / f"instances_{split}2017.json",
                DEMO_DATASET_DIR / f"{split}2017",
            )
            for split in ("train", "val")
        },
        builtin=True,
    )


def _read_registry(workspace: Workspace) -> dict:
    payload = read_json(workspace.datasets_file, default={"version": REGISTRY_VERSION, "datasets": {}})
    if not isinstance(payload, dict) or not isinstance(payload.get("datasets"), dict):
        raise RegistryError(
            f"{workspace.datasets_file} is not a cocoseg registry; move it aside and re-add your datasets"
        )
    return payload


def _entry_from_json(name: str, payload: dict) -> DatasetEntry:
    splits = {
        split: Split(Path(paths["annotations"]), Path(paths["images"]))
        for split, paths in payload["splits"].items()
    }
    return DatasetEntry(name, splits, builtin=False, added=payload.get("added", ""))


def list_datasets(workspace: Workspace) -> list[DatasetEntry]:
    """The demo first, then user datasets by name."""
    registry = _read_registry(workspace)
    user = [_entry_from_json(name, payload) for name, payload in sorted(registry["datasets"].items())]
    return [demo_entry(), *user]


def get_dataset(workspace: Workspace, name: str) -> DatasetEntry:
    """The registered dataset called ``name``.

    Raises:
        RegistryError: when there is none (the message lists what there is).
    """
    for entry in list_datasets(workspace):
        if entry.name == name:
            return entry
    known = ", ".join(entry.name for entry in list_datasets(workspace))
    raise RegistryError(f"no dataset called {name!r}; registered: {known}. Add one with 'cocoseg data add'")


def _check_image_folder(images: Path) -> None:
    """Refuse a missing folder, or one without an image file directly inside it."""
    if not images.is_dir():
        raise RegistryError(f"image folder not found: {images}", "images")
    try:
        has_images = any(
            path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() for path in images.iterdir()
        )
    except OSError as error:
        raise RegistryError(f"cannot read image folder {images}: {error.strerror}", "images") from None
    if not has_images:
        raise RegistryError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {images}", "images")


def _check_sources(
    annotations: Path, images: Path, max_bytes: int, check: bool = True, progress=None
) -> dict[str, int]:
    """Checks before registering: the folder has images, and the file is a COCO JSON object
    (with ``check``, one streaming pass over it: ``coco.check_structure``; without, its first
    byte only). Returns the counts the pass found ({} without it)."""
    _check_image_folder(images)
    try:
        check_annotation_file(annotations, max_bytes)
        if not os.access(annotations, os.R_OK):
            raise CocoFileError(f"annotation file {annotations} is not readable (permissions)")
        if check:
            return check_structure(annotations, max_bytes, progress)
    except CocoFileError as error:
        raise RegistryError(str(error), "annotations") from None
    with open(annotations, "rb") as handle:
        text_start = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if text_start != b"{":
        raise RegistryError(
            f"{annotations} does not start with '{{': it is not a COCO JSON object", "annotations"
        )
    return {}


def outside_roots(path: Path, roots: tuple[Path, ...]) -> bool:
    """Whether ``path`` (resolved, links followed) lies outside every one of ``roots``."""
    resolved = Path(path).expanduser().resolve()
    return not any(resolved == root or root in resolved.parents for root in roots)


def check_data_roots(paths: dict[str, Path], roots: tuple[Path, ...] | None) -> None:
    """Refuse a path outside the data roots (``roots`` None: any path may be registered).

    Raises:
        RegistryError: naming the roots; its ``field`` is the key of ``paths`` at fault.
    """
    if roots is None:
        return
    for field, path in paths.items():
        if path is not None and outside_roots(path, roots):
            allowed = ", ".join(str(root) for root in roots) or "none configured"
            raise RegistryError(
                f"{path} is outside the data roots this server may register from "
                f"(COCOSEG_DATA_ROOTS: {allowed})",
                field,
            )


def add_dataset(
    workspace: Workspace,
    name: str,
    annotations: Path,
    images: Path,
    split: str = "train",
    replace: bool = False,
    max_bytes: int = 1024 * 1024 * 1024,
    check: bool = True,
    progress=None,
    roots: tuple[Path, ...] | None = None,
) -> DatasetEntry:
    """Register (or add a split to) a dataset; nothing changes if any check fails.

    Args:
        check: one streaming pass over the file first (``coco.check_structure``): a JSON
            object with the three COCO lists and named categories. False skips it.
        progress: ``progress(bytes_done, bytes_total)`` during that pass.
        roots: when given, both paths must lie under one of these folders (a server
            reachable from other machines: ``Settings.data_roots``).

    Raises:
        RegistryError: bad name, a path outside ``roots``, missing file/folder, folder
            without images, a file that is not COCO JSON, a split that exists already
            (unless ``replace``), or an attempt to change ``demo``.
    """
    source = preflight(
        workspace, NewSplit(name, annotations, images, split, replace), max_bytes, check, progress, roots
    )
    return _register_split(workspace, name, split, source, replace)


@dataclasses.dataclass(frozen=True)
class NewSplit:
    """A split someone asks to register, as typed: ``preflight`` checks and resolves it."""

    name: str
    annotations: Path | str
    images: Path | str
    split: str = "train"
    replace: bool = False


def preflight(
    workspace: Workspace,
    request: NewSplit,
    max_bytes: int = 1024 * 1024 * 1024,
    check: bool = True,
    progress=None,
    roots: tuple[Path, ...] | None = None,
) -> Split:
    """Every check ``add_dataset`` makes, registering nothing; returns the resolved split.

    The app runs it in the request (a refusal shows beside its field at once) and registers
    in a job, where a big file's streaming pass has a progress bar.

    Raises:
        RegistryError (``field`` set where one is at fault), UnsafePathError (a bad name).
    """
    _check_names(request.name, request.split)
    for field, value in (("annotations", request.annotations), ("images", request.images)):
        if not str(value or "").strip():
            raise RegistryError(
                f"give the {'annotation file' if field == 'annotations' else 'image folder'}", field
            )
    annotations = Path(request.annotations).expanduser().resolve()
    images = Path(request.images).expanduser().resolve()
    check_data_roots({"annotations": annotations, "images": images}, roots)
    # before a long pass over the file
    _refuse_existing(_read_registry(workspace), request.name, request.split, request.replace)
    _check_sources(annotations, images, max_bytes, check, progress)
    return Split(annotations, images)


def add_image_folder(
    workspace: Workspace, name: str, images: Path, split: str = "train", replace: bool = False
) -> DatasetEntry:
    """Register a folder of images without annotations as an unlabelled split.

    Writes ``<workspace>/image_sets/<name>/<split>.json``: every image file directly in
    the folder, sorted by name, ids 1..n, with the size its header states. A file whose
    header cannot be read is listed all the same, as 1x1: loading the split then reports
    it as ``unreadable-image-file`` (the size check never gets that far), so later jobs
    count and name it instead of it vanishing from the set without a word.

    Raises:
        RegistryError: bad name, ``demo``, missing folder, folder without images, or a
            split that exists already (unless ``replace``); nothing is written then.
    """
    _check_names(name, split)
    images = Path(images).expanduser().resolve()
    _check_image_folder(images)
    _refuse_existing(_read_registry(workspace), name, split, replace)  # before reading every header
    payload = {
        "info": {
            "description": f"images of {images}, registered without annotations by cocoseg",
            UNLABELLED: True,
            "images_folder": str(images),
        },
        "images": _list_images(images),
        "annotations": [],
        "categories": [],
    }
    annotations = workspace.image_sets_dir / name / f"{split}.json"
    return _register_split(
        workspace,
        name,
        split,
        Split(annotations, images),
        replace,
        write_sources=lambda: atomic_write_json(annotations, payload),
    )


def _list_images(folder: Path) -> list[dict]:
    """COCO ``images`` for the image files directly in ``folder``, sized as stored (no EXIF turn)."""
    from PIL import Image, UnidentifiedImageError

    files = sorted(
        (path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()),
        key=lambda path: path.name,
    )
    images = []
    for image_id, path in enumerate(files, start=1):
        try:
            with Image.open(path) as handle:  # reads the header only
                width, height = handle.size
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
            logger.warning("cannot read the header of %s; listed as unreadable", path)
            width = height = UNREADABLE_SIZE
        images.append({"id": image_id, "file_name": path.name, "width": width, "height": height})
    return images


def _check_names(name: str, split: str) -> None:
    check_name(name, "dataset name")
    check_name(split, "split name")
    if name == DEMO_NAME:
        raise RegistryError("'demo' is the bundled dataset and cannot be changed; pick another name", "name")


def _refuse_existing(registry: dict, name: str, split: str, replace: bool) -> None:
    splits = registry["datasets"].get(name, {}).get("splits", {})
    if split in splits and not replace:
        raise RegistryError(
            f"dataset {name!r} already has a {split!r} split; replace it to point it elsewhere "
            "(--replace on the command line)",
            "name",
        )


def _register_split(
    workspace: Workspace,
    name: str,
    split: str,
    source: Split,
    replace: bool,
    write_sources: Callable[[], None] | None = None,
) -> DatasetEntry:
    """Record one split under the registry lock; ``write_sources`` (files cocoseg makes for the
    split) runs under the same lock, after the last refusal, so a refused request writes nothing."""
    with workspace.lock("datasets"):
        registry = _read_registry(workspace)
        _refuse_existing(registry, name, split, replace)
        if write_sources is not None:
            write_sources()
        entry = registry["datasets"].setdefault(name, {"splits": {}, "added": now_iso()})
        entry["splits"][split] = {"annotations": str(source.annotations), "images": str(source.images)}
        atomic_write_json(workspace.datasets_file, registry)
    logger.info("registered dataset %s split %s", name, split)
    return get_dataset(workspace, name)


def is_unlabelled(coco: CocoDataset) -> bool:
    """Whether a split holds images only, so there is nothing to train on or score against.

    True when its file says so (``info.unlabelled``, as ``add_image_folder`` writes) or
    when it has neither annotations nor categories (an image list made elsewhere). The
    file's own counts decide, not what survived validation, so a file whose annotations
    are all broken still reads as broken rather than unlabelled.
    """
    info = coco.extra.get("info")
    if isinstance(info, dict) and info.get(UNLABELLED) is True:
        return True
    totals = coco.report.totals
    return not totals.get("annotations", len(coco.annotations)) and not totals.get(
        "categories", len(coco.categories)
    )


def remove_dataset(workspace: Workspace, name: str) -> None:
    """Forget a user dataset (its files are left untouched)."""
    if name == DEMO_NAME:
        raise RegistryError("the bundled 'demo' dataset cannot be removed")
    with workspace.lock("datasets"):
        registry = _read_registry(workspace)
        if registry["datasets"].pop(name, None) is None:
            raise RegistryError(f"no dataset called {name!r}")
        atomic_write_json(workspace.datasets_file, registry)


def load_split(
    entry: DatasetEntry, split: str, max_bytes: int, progress=None, annotation_progress=None
) -> CocoDataset:
    """Load and validate one split of a registered dataset."""
    source = entry.split(split)
    return load_coco(source.annotations, source.images, max_bytes, progress, annotation_progress)


@functools.lru_cache(maxsize=4)
def _cached_coco(annotations: str, images: str, mtime_ns: int, max_bytes: int) -> CocoDataset:
    return load_coco(Path(annotations), Path(images), max_bytes)


_parsing = KeyedLocks()  # one lock per annotation file: parsed once at a time


def cached_split(workspace: Workspace, dataset: str, split: str, max_bytes: int) -> CocoDataset:
    """``load_split`` kept in memory (last four, keyed by file and mtime) for pages that
    open one image after another; an edited file is read again.

    A large split parsed twice at once costs twice its memory (gigabytes at COCO scale), so a
    request that misses waits for the one parsing that file, then finds its result.
    """
    source = get_dataset(workspace, dataset).split(split)
    key = (str(source.annotations), str(source.images), source.annotations.stat().st_mtime_ns, max_bytes)
    with _parsing.lock(key[0]):  # per file path: an edited file's new parse waits for its old one
        return _cached_coco(*key)  # other splits' requests go on meanwhile


def _report_key(workspace: Workspace, source: Split, digest: str | None = None) -> tuple:
    images_mtime = source.images.stat().st_mtime_ns if source.images.is_dir() else 0
    return (
        "validation",
        REPORT_VERSION,
        digest or file_sha256(workspace, source.annotations),
        str(source.images),
        images_mtime,
    )


def split_report(
    workspace: Workspace,
    entry: DatasetEntry,
    split: str,
    max_bytes: int,
    progress=None,
    compute: bool = True,
    annotation_progress=None,
) -> ValidationReport | None:
    """The validation report of a split, cached by annotation content and image folder.

    Its totals carry ``unlabelled`` (1 or 0, see ``is_unlabelled``), so tables that show
    cached reports tell image folders from broken datasets without loading the split.

    Args:
        compute: when False, only a cached report is returned (None if there is none),
            so a page can show what is known without parsing a large file.

    Raises:
        CocoFileError: when ``compute`` and the file cannot be read as COCO JSON.
    """
    source = entry.split(split)
    digest = None
    if not compute:  # only what is cached: a file never hashed here has no report here
        digest = known_sha256(workspace, source.annotations)
        if digest is None:
            return None
    key = _report_key(workspace, source, digest)
    with open_cache(workspace, "validation") as cache:
        cached = cache.get(key)
    if cached is not None:
        return ValidationReport.from_dict(cached)
    if not compute:
        return None
    coco = load_split(entry, split, max_bytes, progress, annotation_progress)
    report = coco.report
    report.totals[UNLABELLED] = int(is_unlabelled(coco))
    with open_cache(workspace, "validation") as cache:
        cache.set(key, report.to_dict(), expire=CACHE_EXPIRE_SECONDS)
    return report


def overview(
    workspace: Workspace, max_bytes: int, validate_below_bytes: int = 50 * 1024 * 1024
) -> list[dict]:
    """One row per dataset split for overview tables (the Home page's datasets table).

    Splits whose annotation file is smaller than ``validate_below_bytes`` are
    validated on demand (then cached); larger ones show a cached report or
    ``not checked`` with the command that checks them.
    """
    rows = []
    for entry in list_datasets(workspace):
        for split, source in entry.splits.items():
            row = {
                "dataset": entry.name,
                "split": split,
                "builtin": entry.builtin,
                "status": "not checked",
                "message": f"run: cocoseg data validate {entry.name} --split {split}",
            }
            try:
                small = (
                    source.annotations.is_file() and source.annotations.stat().st_size < validate_below_bytes
                )
                report = split_report(workspace, entry, split, max_bytes, compute=small)
            except (CocoFileError, OSError) as error:
                row.update(status="unreadable", message=str(error))
                rows.append(row)
                continue
            if report is not None:
                totals = report.totals
                row.update(
                    images=totals.get("images", 0),
                    annotations=totals.get("annotations", 0),
                    categories=totals.get("categories", 0),
                    crowd=totals.get("crowd", 0),
                    errors=report.errors,
                    warnings=report.warnings,
                    status="errors" if report.errors else "warnings" if report.warnings else "ok",
                    message=f"{report.errors} errors, {report.warnings} warnings"
                    if report.counts
                    else "no problems found",
                )
                if totals.get(UNLABELLED):
                    row.update(status=UNLABELLED, message=_unlabelled_message(report, entry.name, split))
            rows.append(row)
    return rows


def _unlabelled_message(report: ValidationReport, dataset: str, split: str) -> str:
    """What an unlabelled split is for, and its problems (unreadable files) if it has any."""
    message = (
        f"{report.totals.get('images', 0)} images, no annotations "
        "(rank them on Review, correct them on Annotate)"
    )
    if report.counts:
        message += (
            f"; {report.errors} errors, {report.warnings} warnings: "
            f"run cocoseg data validate {dataset} --split {split}"
        )
    return message
