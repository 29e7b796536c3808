"""The bodies of the watched jobs (export, evaluate, rank, finetune, quickstart, preview, summary,
validate, stats, doctor).

Each takes ``(workspace, request, max_bytes, progress)`` and returns small JSON for
``result.json``; ``execution._run_short`` takes the entry, beats the heartbeat and records
the outcome around it. ``progress(event)`` raises ``JobCancelled`` once a cancel was
requested, so a body stops at its next step without checking for itself.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path

from cocoseg.pipeline.core.workspace import Workspace

Progress = Callable[[dict], None]


class JobCancelled(Exception):
    """A cancel was requested; the message says where the job stopped."""


# recorded as the job's message, without a traceback: every pipeline error (RunError, PrepareError,
# ModelError, EvaluationError, ConfigError, RegistryError, ...) is a ValueError, so naming them here
# would only import ONNX and the model store into every job process before its body needs them
USER_ERRORS = (ValueError, OSError)


def export(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """Export a stopped run to ONNX (``training.jobs.export_job`` records the outcome in the run too)."""
    from cocoseg.pipeline.jobs.registry import get_run
    from cocoseg.pipeline.training.jobs import export_job

    outcome = export_job(workspace, request["run"], max_bytes)
    return {
        "run": request["run"],
        "outcome": outcome,
        "message": get_run(workspace, request["run"]).status().get("export_message", ""),
    }


def evaluate(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """Evaluate a model or ensemble on a split through ONNX Runtime; the result is saved beside the model."""
    from cocoseg.pipeline.inference.evaluate import evaluate as evaluate_model

    def images_done(done: int, total: int) -> None:
        progress({"type": "progress", "done": done, "total": total})

    result = evaluate_model(
        workspace,
        request["model"],
        max_bytes,
        request.get("dataset"),
        request.get("split") or "val",
        progress=images_done,
    )
    where = result["protocol"]
    return {
        "model": request["model"],
        "miou": result["miou"],
        "dataset": where["dataset"],
        "split": where["split"],
        "images": where["images"],
    }


def ensemble(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """Fuse models into one ensemble graph, checked on real images, and publish it (seconds to minutes
    for large members: never in the web process)."""
    from cocoseg.pipeline.inference.ensembles import create_ensemble

    entry = create_ensemble(workspace, request["name"], request["members"], request["strategy"], max_bytes)
    return {"name": entry.name, "members": list(request["members"]), "strategy": request["strategy"]}


def rank(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """Rank a split by a model's uncertainty; a cancel keeps what was scored, as a partial ranking."""
    from cocoseg.pipeline.inference.ranking import rank_split

    def images_done(done: int, total: int) -> None:
        progress({"type": "progress", "done": done, "total": total})

    ranking = rank_split(
        workspace,
        request["model"],
        request["dataset"],
        request.get("split") or "val",
        max_bytes,
        by=request.get("by") or "entropy",
        progress=images_done,
    )
    return {
        "model": ranking.model,
        "dataset": ranking.dataset,
        "split": ranking.split,
        "by": ranking.by,
        "ranked": len(ranking.rows),
        "skipped": len(ranking.skipped),
    }


def finetune(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """A round of the correction loop: overlay, prepare, fine-tune, export, evaluate parent and child."""
    from cocoseg.pipeline.training.correction_job import run_round
    from cocoseg.pipeline.training.corrections import CorrectionRound

    return run_round(workspace, CorrectionRound.from_dict(request), max_bytes, progress)


def quickstart(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """The Home page's first model: the demo prepared, the MobileNetV2 UNet trained and exported."""
    from cocoseg.pipeline.training.quickstart import QuickStart
    from cocoseg.pipeline.training.recipes import run_quickstart

    return run_quickstart(workspace, QuickStart.from_dict(request), max_bytes, progress)


def preview(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """Augmentations of one image as small JPEG data URLs (TensorFlow: only ever in a job process)."""
    from cocoseg.pipeline.prepare.config import config_from_dict
    from cocoseg.pipeline.training.config import AugmentConfig
    from cocoseg.pipeline.training.preview import preview_thumbnails

    config = config_from_dict(request["prepare"])
    pictures, file_name = preview_thumbnails(
        workspace,
        config,
        request["split"],
        int(request.get("index") or 0),
        int(request["seed"]),
        AugmentConfig(**request["augment"]),
        int(request["count"]),
        int(request["height"]),
        max_bytes,
    )
    progress({"type": "progress", "done": len(pictures), "total": len(pictures)})
    urls = ["data:image/jpeg;base64," + base64.b64encode(picture).decode("ascii") for picture in pictures]
    return {"pictures": urls, "file_name": file_name, "split": request["split"], "size": config.size}


def summary(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """Parameters and FLOPs of an architecture choice (builds the model once; cached)."""
    from cocoseg.pipeline.training.jobs import model_summary

    return model_summary(
        workspace, request["model"], request["options"], int(request["size"]), int(request["classes"])
    )


def validate(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """Validate a registered split (the add-dataset form's check): the report ``data validate``
    prints, cached for it and for Home's table. Progress counts images, then annotations, checked."""
    from cocoseg.pipeline.data.registry import add_dataset, get_dataset, split_report

    if request.get("register"):  # the form's request: check the file (streaming), then register it
        source = request["register"]

        def checked(done: int, total: int) -> None:
            progress({"type": "progress", "stage": "structure", "done": done, "total": total})

        add_dataset(
            workspace,
            request["dataset"],
            Path(source["annotations"]),
            Path(source["images"]),
            split=request["split"],
            replace=bool(source.get("replace")),
            max_bytes=max_bytes,
            check=bool(source.get("check", True)),
            progress=checked,
            roots=None if source.get("roots") is None else tuple(Path(root) for root in source["roots"]),
        )
    entry = get_dataset(workspace, request["dataset"])
    counts = {"images": 0, "images_total": 0, "annotations": 0, "annotations_total": 0}

    def step(kind: str):
        def report(done: int, total: int) -> None:
            counts[kind], counts[f"{kind}_total"] = done, total
            whole = max(counts["images_total"], 1) + max(counts["annotations_total"], 1)
            progress(
                {
                    "type": "progress",
                    "stage": kind,
                    "done": counts["images"] + counts["annotations"],
                    "total": whole,
                    **counts,
                }
            )

        return report

    progress({"type": "progress", "stage": "reading", "done": 0, "total": 1, **counts})
    report = split_report(
        workspace,
        entry,
        request["split"],
        max_bytes,
        step("images"),
        annotation_progress=step("annotations"),
    )
    from cocoseg.pipeline.data.stats import split_categories

    if report.totals.get("categories"):  # Explore then offers the presets that fit, without a parse
        split_categories(workspace, request["dataset"], request["split"], max_bytes)
    return {"dataset": request["dataset"], "split": request["split"], "report": report.to_dict()}


def stats(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """A split's statistics for a label map, computed once into the cache ``data stats`` shares
    (``stats.stats_key``); returns only that it is there, the page reads the cache."""
    from cocoseg.pipeline.data.registry import get_dataset
    from cocoseg.pipeline.data.stats import dataset_stats

    source = get_dataset(workspace, request["dataset"]).split(request["split"])
    progress({"type": "progress", "stage": "reading", "done": 0, "total": 1})

    def bytes_done(done: int, total: int) -> None:
        progress({"type": "progress", "stage": "annotations", "done": done, "total": total})

    result = dataset_stats(
        workspace, source.annotations, max_bytes, request.get("labels"), progress=bytes_done
    )
    return {
        "dataset": request["dataset"],
        "split": request["split"],
        "labels": result["label_map"]["name"],
        "seconds": result.get("seconds"),
        "cached": result["cached"],
    }


def doctor(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """Home's device check: the report ``cocoseg doctor --json`` prints, TensorFlow's facts included (read
    here, so TensorFlow never loads in the web process), kept a day for ``inference.checked_report``."""
    from cocoseg.pipeline.core.settings import get_settings
    from cocoseg.pipeline.inference.devices import doctor_report, remember_report
    from cocoseg.pipeline.training.devices import tensorflow_facts  # imports TensorFlow (seconds)

    progress({"type": "progress", "stage": "tensorflow", "done": 0, "total": 1})
    report = doctor_report(get_settings(), tensorflow_facts())
    progress({"type": "progress", "stage": "tensorflow", "done": 1, "total": 1})  # a cancel stops it here
    remember_report(workspace, report)
    return report


def sleep(workspace: Workspace, request: dict, max_bytes: int, progress: Progress) -> dict:
    """A test-only job (``COCOSEG_TEST_JOBS=1``): ``steps`` progress steps of ``step_seconds`` each."""
    steps = int(request.get("steps", 10))
    for step in range(1, steps + 1):
        time.sleep(float(request.get("step_seconds", 0.1)))
        progress({"type": "progress", "done": step, "total": steps})
    return {"steps": steps}


linger = sleep  # the same body as a detached kind (it outlives its watcher)
hold = sleep  # and as a kind that takes a training slot (``slots``)
