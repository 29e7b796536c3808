"""Cached parameter counts and FLOPs of architecture choices (read without TensorFlow).

``training.jobs.model_summary`` computes one in a job process and stores it here; the
Train form shows it as soon as it is cached.
"""

from __future__ import annotations

from cocoseg.pipeline.core.cache import open_cache
from cocoseg.pipeline.core.workspace import Workspace

SUMMARY_CACHE = "model-summaries"


def summary_key(model: str, options: dict, size: int, classes: int) -> str:
    return f"{model}|{sorted(options.items())}|{size}|{classes}"


def cached_model_summary(
    workspace: Workspace, model: str, options: dict, size: int, classes: int
) -> dict | None:
    """The cached summary of this choice, or None (no TensorFlow needed)."""
    with open_cache(workspace, SUMMARY_CACHE) as cache:
        return cache.get(summary_key(model, options, size, classes))
