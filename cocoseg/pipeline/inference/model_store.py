"""Served models on disk: ``models/<name>/`` and ``ensembles/<name>/``, each with a card.

A model folder holds ``model.onnx`` (the cocoseg interface, see ``onnx_graph``),
optional variants ``model.int8.onnx`` / ``model.fp16.onnx``, the card ``model.json``
(classes, label map, input size and resize mode, provenance, metrics, file hashes) and
``evaluations/``. An ensemble folder has the same files plus ``ensemble.json``, so
inference and evaluation treat both alike. Folders are published by renaming a
finished ``.partial-*`` folder, so a half-written model is never listed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path

from cocoseg.pipeline.core.workspace import UnsafePathError, Workspace, check_name, read_json, resolve_inside
from cocoseg.pipeline.data.labels import LabelMap, label_map_from_dict

logger = logging.getLogger(__name__)

CARD_FILE = "model.json"
CARD_FORMAT = 1
VARIANTS = ("fp32", "int8", "fp16")
VARIANT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}
KINDS = ("exported", "imported", "ensemble")


class ModelError(ValueError):
    """A model or ensemble that cannot be used; the message says why and what to do."""


def signed_points(value: float, digits: int) -> str:
    """An mIoU change in points with its sign; one that rounds to nothing reads ``±0.0``, not ``-0.0``."""
    text = f"{value:+.{digits}f}"
    return f"±{text[1:]}" if float(text) == 0 else text


@dataclasses.dataclass(frozen=True)
class VariantSummary:
    """A quantised variant as its card records it; an imported card may leave fields out."""

    name: str
    device: str
    miou_delta_points: float | None
    recommended: bool


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One published model or ensemble: its folder and card."""

    folder: Path
    card: dict

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def kind(self) -> str:
        return self.card["kind"]

    @property
    def size(self) -> int:
        return int(self.card["input"]["size"])

    @property
    def resize(self) -> str:
        return self.card["input"]["resize"]

    @property
    def dataset(self) -> str | None:
        """The dataset it was trained on, when its card records one (an imported model may not)."""
        return self.card.get("source", {}).get("dataset")

    @property
    def evaluations_dir(self) -> Path:
        return self.folder / "evaluations"

    def label_map(self) -> LabelMap:
        return label_map_from_dict(self.card["label_map"])

    def variants(self) -> list[str]:
        """The variants this entry has files for, FP32 first."""
        return ["fp32", *[name for name in ("int8", "fp16") if name in self.card.get("variants", {})]]

    def variant_summaries(self) -> list[VariantSummary]:
        """The INT8/FP16 variants it has: the device each is for and its mIoU change against FP32."""
        records = self.card.get("variants", {})
        return [
            VariantSummary(
                name,
                records[name].get("device", "?"),
                records[name].get("miou_delta_points"),
                records[name].get("recommended", True),
            )
            for name in self.variants()[1:]
        ]

    def file_of(self, variant: str = "fp32") -> tuple[Path, str]:
        """Path and expected SHA-256 of a variant's file (checked to stay in the folder)."""
        if variant == "fp32":
            record = {"file": self.card["file"], "sha256": self.card["sha256"]}
        else:
            record = self.card.get("variants", {}).get(variant)
            if record is None:
                raise ModelError(f"{self.name} has no {variant} variant; it has {', '.join(self.variants())}")
        try:
            path = resolve_inside(self.folder, record["file"])
        except UnsafePathError as error:
            raise ModelError(f"{self.name}: its card points outside its folder ({error})") from None
        return path, record["sha256"]


def _read_entry(folder: Path) -> ModelEntry | None:
    card = read_json(folder / CARD_FILE)
    if not isinstance(card, dict) or card.get("kind") not in KINDS:
        return None
    return ModelEntry(folder, card)


def _published_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(
        folder
        for folder in root.iterdir()
        if folder.is_dir() and not folder.name.startswith(".") and (folder / CARD_FILE).is_file()
    )


def list_entries(workspace: Workspace) -> list[ModelEntry]:
    """Every published model and ensemble, models first, by name."""
    entries = []
    for root in (workspace.models_dir, workspace.ensembles_dir):
        for folder in _published_folders(root):
            entry = _read_entry(folder)
            if entry is None:
                logger.warning("skipping %s: its model.json is missing or malformed", folder)
                continue
            entries.append(entry)
    return entries


def get_entry(workspace: Workspace, name: str) -> ModelEntry:
    """A model or ensemble by name.

    Raises:
        ModelError: unknown name (the message lists what exists).
    """
    try:
        check_name(name, "model name")
    except UnsafePathError as error:
        raise ModelError(str(error)) from None
    for root in (workspace.models_dir, workspace.ensembles_dir):
        if (root / name / CARD_FILE).is_file():
            entry = _read_entry(root / name)
            if entry is None:
                raise ModelError(f"{name}: its model.json is malformed; export or import it again")
            return entry
    known = (
        ", ".join(entry.name for entry in list_entries(workspace))
        or "none yet (train a run, then: cocoseg export RUN)"
    )
    raise ModelError(f"no model or ensemble called {name!r}; available: {known}")


def name_is_taken(workspace: Workspace, name: str) -> bool:
    return any((root / name).exists() for root in (workspace.models_dir, workspace.ensembles_dir))


STALE_SECONDS = 3600  # a build or removal folder untouched this long lost its process


def partial_folder(root: Path, name: str) -> Path:
    """A fresh hidden folder to build ``name`` in before publishing.

    Folders that a killed export, import or removal of ``name`` left behind (hundreds of MB each,
    never listed) go first; one touched within the hour may still be another process's work.
    """
    _remove_stale(root, name)
    folder = root / f".partial-{name}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    return folder


def _remove_stale(root: Path, name: str) -> None:
    pattern = re.compile(rf"\.(partial|retired)-{re.escape(name)}-[0-9a-f]{{8}}")
    for folder in root.glob(".*-*") if root.is_dir() else ():
        if not pattern.fullmatch(folder.name):
            continue
        try:
            stale = time.time() - folder.stat().st_mtime > STALE_SECONDS
        except OSError:  # removed meanwhile
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)


def publish(partial: Path, target: Path) -> None:
    """Rename a finished folder into place, replacing an older version of it."""
    retired = None
    if target.exists():
        retired = target.with_name(f".retired-{target.name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, retired)
    os.replace(partial, target)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def delete_entry(workspace: Workspace, name: str) -> None:
    entry = get_entry(workspace, name)
    retired = entry.folder.with_name(f".retired-{entry.name}-{uuid.uuid4().hex[:8]}")
    os.replace(entry.folder, retired)
    shutil.rmtree(retired, ignore_errors=True)
