"""Fine-tuning from a model: find the parent run, check it fits the new set, record the lineage.

No TensorFlow here: the web process and the CLI refuse a bad parent before any run folder
exists; ``cocoseg.models.transfer`` copies the weights in the job process.
"""

from __future__ import annotations

import dataclasses
import json

from cocoseg.errors import ConfigError
from cocoseg.models.catalog import CATALOG
from cocoseg.pipeline.core.workspace import UnsafePathError, Workspace, check_name
from cocoseg.pipeline.data.labels import LabelMap, label_map_from_dict
from cocoseg.pipeline.inference.model_store import ModelError, get_entry
from cocoseg.pipeline.jobs.registry import RunError, RunFolder, get_run, list_runs
from cocoseg.pipeline.prepare.sets import PreparedSet
from cocoseg.pipeline.training.config import TrainConfig

# The classifier layer every architecture ends with (``models.blocks.with_head``).
CLASSIFIER_LAYER = "logits"


@dataclasses.dataclass(frozen=True)
class Parent:
    """The run a new run starts from, with what is known of it without TensorFlow.

    ``size`` and ``label_map`` come from the parent's prepared set, or from its exported
    model's card when that set has been deleted; ``None`` when neither is left (the job
    then checks the checkpoint itself).
    """

    run: RunFolder
    model: str
    model_options: dict
    size: int | None
    label_map: LabelMap | None

    @property
    def name(self) -> str:
        return self.run.name


def _card(workspace: Workspace, name: str) -> dict | None:
    """The model store's card of ``name``, or None when there is no such model."""
    try:
        return get_entry(workspace, name).card
    except ModelError:
        return None


def _run_name(workspace: Workspace, name: str) -> str:
    """A run's name from a run or model name (an exported model is named after its run)."""
    try:
        check_name(name, "run or model")
    except UnsafePathError as error:
        raise ConfigError("init_from", str(error)) from None
    if (workspace.runs_dir / name / "config.json").is_file():
        return name
    card = _card(workspace, name)
    if card is None:
        raise ConfigError(
            "init_from", f"no run or model called {name!r} (deleted?); `cocoseg runs list` shows the runs"
        )
    run = (card.get("source") or {}).get("run")
    if card.get("kind") != "exported" or not run:
        raise ConfigError(
            "init_from",
            f"{name} is {'an ensemble' if card.get('kind') == 'ensemble' else 'an imported ONNX model'}; "
            "fine-tuning needs a Keras checkpoint, which only a run trained here has",
        )
    if not (workspace.runs_dir / run / "config.json").is_file():
        raise ConfigError(
            "init_from", f"model {name} came from run {run}, which was deleted with its checkpoints"
        )
    return run


def find_parent(workspace: Workspace, name: str) -> Parent:
    """The run (or the run behind an exported model) called ``name``, with a best checkpoint.

    Raises:
        ConfigError: field ``init_from``, naming what is missing.
    """
    try:
        folder = get_run(workspace, _run_name(workspace, name))
    except RunError as error:
        raise ConfigError("init_from", str(error)) from None
    if not folder.best_checkpoint.is_file():
        raise ConfigError(
            "init_from", f"run {folder.name} has no checkpoint yet: it has not finished an epoch"
        )
    config = folder.config()
    size = label_map = None
    manifest_path = workspace.prepared_dir / str(config.get("prepared_folder", "")) / "manifest.json"
    card = _card(workspace, folder.name)
    try:
        manifest = json.loads(manifest_path.read_text())
        size, label_map = manifest["config"]["size"], label_map_from_dict(manifest["label_map"])
    except (OSError, ValueError, KeyError):
        if card is not None:
            size, label_map = card["input"]["size"], label_map_from_dict(card["label_map"])
    return Parent(folder, config["model"], dict(config.get("model_options") or {}), size, label_map)


def _with_defaults(model: str, options) -> dict:
    """The options that shape the network with defaults filled in, so ``{}`` and the explicit
    defaults agree, and a child may start its encoder differently (its weights come from the parent)."""
    try:
        return CATALOG[model].architecture(options)
    except KeyError:
        return dict(options)


def architecture_fields(parent: Parent) -> dict:
    """The parent's architecture as the Train form shows it (defaults filled in)."""
    return {"model": parent.model, **_with_defaults(parent.model, parent.model_options)}


def check_parent(parent: Parent, config: TrainConfig, prepared: PreparedSet) -> bool:
    """Refuse a parent the new run cannot start from; True when the classifier can be copied too.

    Raises:
        ConfigError: another architecture, or another input size (both named).
    """
    if config.model != parent.model or _with_defaults(config.model, config.model_options) != _with_defaults(
        parent.model, parent.model_options
    ):
        raise ConfigError(
            "model",
            f"{parent.name} is a {parent.model} with options {parent.model_options or 'default'}; "
            "a fine-tuned run keeps its parent's architecture",
        )
    size = prepared.manifest["config"]["size"]
    if parent.size is not None and parent.size != size:
        raise ConfigError(
            "init_from",
            f"{parent.name} was trained at {parent.size} px but {prepared.name} is {size} px; "
            f"prepare the data at {parent.size} px or start from scratch",
        )
    return parent.label_map is not None and parent.label_map.same_classes(prepared.label_map())


def lineage(parent: Parent, same_classes: bool, prepared: PreparedSet) -> dict:
    """What a run's config records about its parent (the runs table and model cards show it)."""
    if same_classes:
        classifier = "copied (same label map)"
    else:
        before = (
            "an unknown label map" if parent.label_map is None else f"{parent.label_map.num_classes} classes"
        )
        classifier = f"new: the label map differs ({before} -> {prepared.label_map().num_classes} classes)"
    return {
        "run": parent.name,
        "checkpoint": "best",
        "copy_classifier": same_classes,
        "classifier": classifier,
    }


def parent_choices(workspace: Workspace) -> list[tuple[str, str]]:
    """(run name, label) of every run a new run can start from: those with a best checkpoint."""
    choices = []
    for summary in list_runs(workspace):
        if RunFolder(summary.folder).best_checkpoint.is_file():
            miou = "" if summary.best_miou is None else f", best mIoU {summary.best_miou:.3f}"
            choices.append((summary.name, f"{summary.name} ({summary.architecture}{miou})"))
    return choices


def with_parent_architecture(workspace: Workspace, config: TrainConfig) -> TrainConfig:
    """``config`` with its parent's architecture and options (the form and the CLI leave them to it)."""
    if not config.init_from:
        return config
    parent = find_parent(workspace, config.init_from)
    return dataclasses.replace(config, model=parent.model, model_options=parent.model_options)
