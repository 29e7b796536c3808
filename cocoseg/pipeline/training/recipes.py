"""Prepare, train and export in one job process: what a correction round and the Quick start share.

TensorFlow side. ``stage(name, message)`` hears each step and each finished epoch; when it
raises (a job's cancel), the training stops at its next batch and the error is raised again
once the run has recorded its state, so nothing is left half-written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.jobs.registry import RunError, RunFolder
from cocoseg.pipeline.prepare.config import PrepareConfig, config_from_dict
from cocoseg.pipeline.prepare.sets import PreparedSet
from cocoseg.pipeline.prepare.writer import prepare
from cocoseg.pipeline.training.checks import create
from cocoseg.pipeline.training.config import TrainConfig
from cocoseg.pipeline.training.export import ExportConfig, export_run
from cocoseg.pipeline.training.loop import train_queued
from cocoseg.pipeline.training.quickstart import QuickStart

Stage = Callable[[str, str], None]


def stage_reporter(progress: Callable[[dict], None] | None, stages: tuple[str, ...]):
    """``stage(name, message)`` as the job's progress events (``done`` counts finished stages)."""
    report = progress or (lambda event: None)

    def stage(name: str, message: str) -> None:
        report(
            {
                "type": "stage",
                "stage": name,
                "done": stages.index(name),
                "total": len(stages),
                "message": message,
            }
        )

    return stage


def prepare_train_export(
    workspace: Workspace,
    prepare_config: PrepareConfig,
    train_config: TrainConfig,
    max_bytes: int,
    stage: Stage,
) -> tuple[PreparedSet, RunFolder, str]:
    """Prepare ``prepare_config``, train ``train_config`` on it, export the best checkpoint (FP32).

    Returns:
        (the prepared set, the run folder, the exported model's name).

    Raises:
        RunError: the training ended without finishing (its status says why), or what
            ``stage`` raised to stop it.
    """
    stage("prepare", f"preparing {prepare_config.dataset} at {prepare_config.size} px")
    prepared = prepare(workspace, prepare_config, max_bytes)
    config = dataclasses.replace(train_config, prepared=prepared.name)
    folder = create(workspace, config)
    stage("train", f"training {folder.name} for {config.epochs} epochs")
    stopped: list[BaseException] = []

    def epoch_done(event: dict) -> None:
        if event.get("type") != "epoch" or stopped:
            return
        try:
            stage(
                "train",
                f"training {folder.name}: epoch {event['epoch']} of {event['epochs']}, "
                f"val mIoU {event['val_miou'] * 100:.1f} %",
            )
        except Exception as error:  # noqa: BLE001 - the job's cancel: stop training, then say so
            stopped.append(error)

    outcome = train_queued(workspace, folder.name, on_progress=epoch_done, should_stop=lambda: bool(stopped))
    if stopped:
        raise stopped[0]
    if outcome.status != "finished":
        raise RunError(f"training {folder.name} ended {outcome.status}: {outcome.message}")
    stage("export", f"exporting {folder.name} to ONNX")
    model = export_run(workspace, ExportConfig(folder.name, variants=()), max_bytes).name
    return prepared, folder, model


QUICKSTART_STAGES = ("prepare", "train", "export")


def run_quickstart(
    workspace: Workspace, plan: QuickStart, max_bytes: int, progress: Callable[[dict], None] | None = None
) -> dict:
    """Prepare the demo, train and export the Quick start model; returns the model and its val mIoU."""
    prepared, folder, model = prepare_train_export(
        workspace,
        config_from_dict(plan.prepare),
        TrainConfig.from_dict(plan.train),
        max_bytes,
        stage_reporter(progress, QUICKSTART_STAGES),
    )
    return {
        "model": model,
        "run": folder.name,
        "prepared": prepared.name,
        "best_miou": folder.state().get("best_miou"),
        "imagenet": plan.imagenet,
    }
