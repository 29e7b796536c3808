"""What must hold before a run starts, and queueing one: no TensorFlow, so the web form can ask."""

from __future__ import annotations

from cocoseg.errors import ConfigError
from cocoseg.models.catalog import check_model_settings
from cocoseg.models.encoder_catalog import DEFAULT_ENCODER
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.jobs.registry import RunFolder, create_run
from cocoseg.pipeline.prepare.sets import PreparedSet, PrepareError, find_prepared
from cocoseg.pipeline.training.config import TrainConfig
from cocoseg.pipeline.training.lineage import check_parent, find_parent, lineage
from cocoseg.pipeline.training.weights import check_available


def check(workspace: Workspace, config: TrainConfig, num_classes: int | None = None) -> PreparedSet:
    """Everything that must hold before a run starts, except the device; errors name the field.

    The one check that needs TensorFlow (a GPU for mixed precision) is
    ``training.loop.check_device``, which the job runs before it trains.
    """
    try:
        prepared = find_prepared(workspace, config.prepared)
        manifest = prepared.manifest
    except (PrepareError, ValueError) as error:
        raise ConfigError("prepared", str(error)) from None
    for split in ("train", "val"):
        if split not in manifest["splits"]:
            raise ConfigError(
                "prepared", f"{prepared.name} has no {split} split; prepare with --splits train,val"
            )
    examples = manifest["splits"]["train"]["examples"]
    if config.batch_size > examples:
        raise ConfigError(
            "batch_size", f"{config.batch_size} is larger than the {examples} training examples"
        )
    try:
        check_model_settings(config.model, dict(config.model_options), manifest["config"]["size"])
    except ConfigError as error:
        raise ConfigError("prepared", f"{prepared.name}: {error.message}") from None
    classes = len(manifest["label_map"]["classes"])
    if num_classes is not None and num_classes != classes:
        raise ConfigError(
            "prepared", f"its label map has {classes} classes but the model predicts {num_classes}"
        )
    return prepared


def create(workspace: Workspace, config: TrainConfig) -> RunFolder:
    """Check ``config`` and create its run folder, ``queued`` (the web starts the job after this).

    The folder's config names the sampling the run uses (the prepared set's unless
    overridden) and, for a fine-tuned run, its parent and whether the classifier is copied.
    ImageNet encoder weights must be here or downloadable (one line saying what to do if not).

    Raises:
        ConfigError: before any folder is created, for settings that cannot work.
    """
    prepared = check(workspace, config)
    config = config.resolved(prepared.manifest["config"]["sampling"])
    record = {**config.to_dict(), "prepared_folder": prepared.name}
    if config.init_from:
        parent = find_parent(workspace, config.init_from)
        record["parent"] = lineage(parent, check_parent(parent, config, prepared), prepared)
    elif config.model_options.get("encoder_weights") == "imagenet" and not config.model_options.get(
        "fallback_to_random"
    ):
        check_available(workspace, config.model_options.get("encoder", DEFAULT_ENCODER))
    return create_run(workspace, record, config.model)
