"""Finished prepared sets in the workspace: listing, lookup and the facts a listing shows (no TensorFlow)."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from cocoseg.pipeline.core.workspace import Workspace, check_name, read_json
from cocoseg.pipeline.data.labels import LabelMap, label_map_from_dict


class PrepareError(ValueError):
    """Preparation cannot start or did not finish; the message says what to do."""


class PrepareCancelled(PrepareError):
    """``should_stop`` asked preparation to stop; nothing was published."""


@dataclasses.dataclass
class PreparedSet:
    """A finished prepared set: its folder and manifest."""

    folder: Path
    reused: bool = False

    @functools.cached_property
    def manifest(self) -> dict:
        """The set's manifest (read once: a finished set never changes), its shape checked here so
        that every reader may index it: a file edited by hand or torn is one ``PrepareError``.

        Raises:
            PrepareError: unreadable, not JSON, or without the fields training reads.
        """
        try:
            manifest = read_json(self.folder / "manifest.json")
            problem = _manifest_problem(manifest)
        except (OSError, ValueError) as error:
            problem = str(error)
        if problem:
            raise PrepareError(
                f"prepared set {self.folder.name}: its manifest.json cannot be used ({problem}); "
                "delete the folder and prepare the set again"
            )
        return manifest

    @property
    def name(self) -> str:
        return self.folder.name

    def label_map(self) -> LabelMap:
        return label_map_from_dict(self.manifest["label_map"])


def _manifest_problem(manifest) -> str | None:
    """What a manifest lacks of what training and the pages read, or None."""
    if not isinstance(manifest, dict):
        return "not a JSON object"
    config, label_map, splits = manifest.get("config"), manifest.get("label_map"), manifest.get("splits")
    if not isinstance(config, dict) or not isinstance(config.get("size"), int):
        return "no config.size"
    if not isinstance(config.get("sampling"), dict):
        return "no config.sampling"
    if not isinstance(label_map, dict) or not isinstance(label_map.get("classes"), list):
        return "no label_map.classes"
    if not isinstance(splits, dict) or not splits:
        return "no splits"
    for split, summary in splits.items():
        if not isinstance(summary, dict) or not isinstance(summary.get("examples"), int):
            return f"no splits.{split}.examples"
    return None


def list_prepared(workspace: Workspace) -> list[PreparedSet]:
    """Finished sets (folders with a manifest), newest first; partial folders are ignored."""
    if not workspace.prepared_dir.is_dir():
        return []
    sets = [
        PreparedSet(folder)
        for folder in workspace.prepared_dir.iterdir()
        if folder.is_dir() and not folder.name.startswith(".") and (folder / "manifest.json").is_file()
    ]
    return sorted(sets, key=lambda item: (item.folder / "manifest.json").stat().st_mtime, reverse=True)


def find_prepared(workspace: Workspace, name: str) -> PreparedSet:
    """A finished set by folder name."""
    check_name(name, "prepared set", derived=True)  # "<dataset>-<labels>-<size>-<id>", as ``plan`` names it
    folder = workspace.prepared_dir / name
    if not (folder / "manifest.json").is_file():
        known = ", ".join(item.name for item in list_prepared(workspace)) or "none yet"
        raise PrepareError(f"no prepared set called {name!r}; prepared: {known}")
    return PreparedSet(folder)


def manifest_facts(manifest: dict) -> tuple[list[str], list[str]]:
    """A set's table cells (label map, size, examples per split, created) and the details under its name.

    Raises:
        KeyError / TypeError / AttributeError: a manifest from another version, or edited by hand.
    """
    config, label_map, splits = manifest["config"], manifest["label_map"], manifest["splits"]
    sampling = config["sampling"]
    quality = f" quality {config['quality']}" if config["encoding"] == "jpeg" else ""
    skipped = ", ".join(
        f"{split} {sum(summary['skipped'].values())}"
        for split, summary in splits.items()
        if summary["skipped"]
    )
    details = [
        f"{config['encoding']}{quality}; {config['shards']} shards per split",
        f"sampling: {sampling['method']}"
        + (f" (t={sampling['threshold']:g})" if sampling["method"] != "none" else ""),
        f"skipped: {skipped or 'none'}",
        f"written in {manifest['seconds']} s",
    ]
    cells = [
        f"{label_map['name']} ({len(label_map['classes'])} classes)",
        f"{config['size']} px {config['resize']}",
        " · ".join(f"{split} {summary['examples']}" for split, summary in splits.items()),
        manifest["created"].replace("T", " ").replace("+00:00", " UTC"),
    ]
    return cells, details
