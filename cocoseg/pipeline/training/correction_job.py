"""Run a planned correction round (``corrections.plan_round``): overlay, prepare, fine-tune, export, evaluate.

TensorFlow side: the ``finetune`` job process and ``cocoseg finetune`` run this. The child is an
ordinary run (``runs/``), so the Train page shows it live and can cancel it; a cancel of the
round itself stops the training at its next batch. Each stage reports
``{"type": "stage", "stage", "done", "total", "message"}``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from cocoseg.pipeline.annotation.export import register_corrections
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.inference.evaluate import evaluate
from cocoseg.pipeline.jobs.registry import RunError
from cocoseg.pipeline.prepare.config import config_from_dict
from cocoseg.pipeline.prepare.writer import prepare
from cocoseg.pipeline.training.checks import create
from cocoseg.pipeline.training.config import TrainConfig
from cocoseg.pipeline.training.corrections import EVALUATION_SPLIT, CorrectionRound, record_round
from cocoseg.pipeline.training.export import ExportConfig, export_run
from cocoseg.pipeline.training.loop import train_queued

logger = logging.getLogger(__name__)

STAGES = ("register", "prepare", "train", "export", "evaluate")


def run_round(
    workspace: Workspace,
    round_: CorrectionRound,
    max_bytes: int,
    progress: Callable[[dict], None] | None = None,
) -> dict:
    """Do the round; returns what it made (and records it with the round).

    ``progress`` may raise (a job's cancel): during training that stops the child at its
    next batch and the round ends ``cancelled``; between stages it propagates.
    """
    report = progress or (lambda event: None)
    stopped: list[BaseException] = []

    def stage(name: str, message: str) -> None:
        report(
            {
                "type": "stage",
                "stage": name,
                "done": STAGES.index(name),
                "total": len(STAGES),
                "message": message,
            }
        )

    stage("register", f"laying {round_.corrections} corrected images over {round_.dataset}")
    if not round_.reuse:
        register_corrections(workspace, round_.dataset, round_.overlay, "overlay", max_bytes)
    stage("prepare", f"preparing {round_.overlay} with {round_.parent}'s settings")
    prepared = prepare(workspace, config_from_dict(round_.prepare), max_bytes)
    config = dataclasses.replace(TrainConfig.from_dict(round_.train), prepared=prepared.name)
    folder = create(workspace, config)
    stage("train", f"fine-tuning {folder.name} from {round_.parent} for {config.epochs} epochs")

    def epoch_done(event: dict) -> None:
        if event.get("type") != "epoch":
            return
        try:
            stage(
                "train",
                f"fine-tuning {folder.name}: epoch {event['epoch']} of {event['epochs']}, "
                f"val mIoU {event['val_miou'] * 100:.1f} %",
            )
        except Exception as error:  # noqa: BLE001 - the job's cancel: stop training, then say so
            stopped.append(error)

    outcome = train_queued(workspace, folder.name, on_progress=epoch_done, should_stop=lambda: bool(stopped))
    result = {
        "round": round_.number,
        "overlay": round_.overlay,
        "prepared": prepared.name,
        "run": folder.name,
    }
    if outcome.status != "finished":
        record_round(workspace, round_, {**result, "status": outcome.status, "message": outcome.message})
        if stopped:
            raise stopped[0]
        raise RunError(f"fine-tuning {folder.name} ended {outcome.status}: {outcome.message}")
    stage("export", f"exporting {folder.name} to ONNX")
    child = export_run(workspace, ExportConfig(folder.name, variants=()), max_bytes).name
    stage("evaluate", f"evaluating {round_.parent} and {child} on {round_.dataset}/{EVALUATION_SPLIT}")
    scores = {
        role: evaluate(workspace, name, max_bytes, round_.dataset, EVALUATION_SPLIT)["miou"]
        for role, name in (("parent", round_.parent), ("child", child))
    }
    result = {
        **result,
        "status": "finished",
        "parent": round_.parent,
        "child": child,
        "parent_miou": scores["parent"],
        "child_miou": scores["child"],
        "evaluated_on": f"{round_.dataset}/{EVALUATION_SPLIT}",
    }
    record_round(workspace, round_, result)
    logger.info("correction round %d on %s: %s", round_.number, round_.dataset, result)
    return result
