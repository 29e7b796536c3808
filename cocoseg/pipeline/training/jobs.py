"""Training as a background job: train (or resume) a queued run, then export it.

The web page queues a run with ``cocoseg.pipeline.training.loop.create`` (validated, no TensorFlow) and
a background job calls ``training_job``; the CLI can call it too. Exporting at the end
is on by default so a finished run shows up on the Segment and Compare pages; its
progress and outcome are recorded in the run's status (``export`` and
``export_message``), because the run itself has already finished by then.

``model_summary`` gives the parameter count and FLOPs of an architecture choice for the
form, computed once (it needs TensorFlow, so the web process asks a background job)
and cached in the workspace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cocoseg.pipeline.core.cache import open_cache
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.jobs.registry import RunError, get_run
from cocoseg.pipeline.training.summaries import SUMMARY_CACHE, cached_model_summary, summary_key

logger = logging.getLogger(__name__)

EXPORTABLE = ("finished", "cancelled", "interrupted", "failed")


def training_job(
    workspace: Workspace,
    name: str,
    max_bytes: int,
    export: bool = True,
    resume: bool = False,
    on_progress: Callable[[dict], None] | None = None,
) -> dict:
    """Train the queued run ``name`` (or resume it), then export it when it finished.

    Returns ``{"run", "status", "best_miou", "export", "message"}``.

    Raises:
        RunError / ConfigError: the run cannot start (unknown, started twice, bad settings).
    """
    from cocoseg.pipeline.training import loop as train

    if resume:
        outcome = train.resume(workspace, name, on_progress=on_progress)
    else:
        outcome = train.train_queued(workspace, name, on_progress=on_progress)
    result = {
        "run": name,
        "status": outcome.status,
        "best_miou": outcome.best_miou,
        "export": None,
        "message": outcome.message,
    }
    if export and outcome.status == "finished":
        result["export"] = export_job(workspace, name, max_bytes)
    return result


def export_job(workspace: Workspace, name: str, max_bytes: int) -> str:
    """Export a run to ONNX, recording ``export`` = running/done/failed in its status; returns the outcome."""
    from cocoseg.pipeline.training.export import ExportConfig, ExportError, export_run

    run = get_run(workspace, name)
    status = run.status().get("status")
    if status not in EXPORTABLE:
        raise RunError(f"run {name} is {status}; export it when it has stopped")
    if not run.best_checkpoint.is_file():
        raise RunError(f"run {name} has no checkpoint yet (no epoch finished); nothing to export")
    run.set_status(status, export="running", export_message="exporting to ONNX and checking parity")
    try:
        entry = export_run(workspace, ExportConfig(name), max_bytes)
    except (ExportError, RunError, ValueError, OSError) as error:
        run.set_status(run.status().get("status", status), export="failed", export_message=str(error)[:400])
        logger.warning("export of %s failed: %s", name, error)
        return "failed"
    except BaseException as error:
        run.set_status(
            run.status().get("status", status),
            export="failed",
            export_message=f"{type(error).__name__}: {error}"[:400],
        )
        raise
    run.set_status(
        run.status().get("status", status), export="done", export_message=f"exported as model {entry.name}"
    )
    return "done"


def model_summary(workspace: Workspace, model: str, options: dict, size: int, classes: int) -> dict:
    """Parameters and FLOPs per image of an architecture choice (builds it once; cached).

    Raises:
        ConfigError: settings the builder refuses (it names the field).
    """
    cached = cached_model_summary(workspace, model, options, size, classes)
    if cached is not None:
        return cached
    from cocoseg.models.catalog import check_model_settings
    from cocoseg.pipeline.core.tf_runtime import tensorflow

    check_model_settings(model, options, size)
    tensorflow()
    import keras

    from cocoseg.models.registry import build_model
    from cocoseg.models.summary import summarise

    built = build_model(model, classes, size, **options)
    summary = summarise(built)
    keras.backend.clear_session()
    result = {"parameters": summary.parameters, "gflops": summary.gflops, "size": size, "classes": classes}
    with open_cache(workspace, SUMMARY_CACHE) as cache:
        cache.set(summary_key(model, options, size, classes), result)
    return result
