"""Run a planned correction round (``corrections.plan_round``): overlay, prepare, fine-tune, export, evaluate.

TensorFlow side: the ``finetune`` job process and ``cocoseg finetune`` run this. The child is an
ordinary run (``runs/``), so the Train page shows it live and can cancel it; a cancel of the
round itself stops the training at its next batch. Each stage reports
``{"type": "stage", "stage", "done", "total", "message"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cocoseg.pipeline.annotation.export import register_corrections
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.inference.evaluate import evaluate
from cocoseg.pipeline.prepare.config import config_from_dict
from cocoseg.pipeline.training.config import TrainConfig
from cocoseg.pipeline.training.corrections import EVALUATION_SPLIT, CorrectionRound, record_round
from cocoseg.pipeline.training.recipes import prepare_train_export, stage_reporter

logger = logging.getLogger(__name__)

STAGES = ("register", "prepare", "train", "export", "evaluate")


def run_round(
    workspace: Workspace,
    round_: CorrectionRound,
    max_bytes: int,
    progress: Callable[[dict], None] | None = None,
) -> dict:
    """Do the round; returns what it made (and records it with the round, finished or not)."""
    stage = stage_reporter(progress, STAGES)
    stage("register", f"laying {round_.corrections} corrected images over {round_.dataset}")
    if not round_.reuse:
        register_corrections(workspace, round_.dataset, round_.overlay, "overlay", max_bytes)
    try:
        prepared, folder, child = prepare_train_export(
            workspace,
            config_from_dict(round_.prepare),
            TrainConfig.from_dict(round_.train),
            max_bytes,
            stage,
        )
    except BaseException as error:
        record_round(workspace, round_, {"status": "failed", "message": str(error)[:300]})
        raise
    stage("evaluate", f"evaluating {round_.parent} and {child} on {round_.dataset}/{EVALUATION_SPLIT}")
    scores = {
        role: evaluate(workspace, name, max_bytes, round_.dataset, EVALUATION_SPLIT)["miou"]
        for role, name in (("parent", round_.parent), ("child", child))
    }
    result = {
        "round": round_.number,
        "overlay": round_.overlay,
        "prepared": prepared.name,
        "run": folder.name,
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
