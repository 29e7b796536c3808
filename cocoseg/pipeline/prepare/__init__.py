"""Preparation: settings, the plan and dry run, job entries and finished sets (no TensorFlow).

This facade holds only what the web process may import. ``writer`` (the pool that writes
the shards), ``records``, ``tfrecord`` and ``jobs`` (the job body) import TensorFlow and run
in job processes or the CLI; import them by module, never from here.
"""

from cocoseg.pipeline.prepare.config import (
    AUTO_LABELS,
    ENCODINGS,
    PrepareConfig,
    config_from_dict,
    config_from_form,
    config_to_dict,
    training_split,
)
from cocoseg.pipeline.prepare.entries import (
    PrepareJobView,
    active_duplicate,
    create_prepare_job,
    get_prepare_job,
    job_view,
    list_prepare_jobs,
)
from cocoseg.pipeline.prepare.plan import dry_run
from cocoseg.pipeline.prepare.sampling import SAMPLING_METHODS, SamplingConfig
from cocoseg.pipeline.prepare.sets import (
    PreparedSet,
    PrepareError,
    find_prepared,
    list_prepared,
    manifest_facts,
)

__all__ = [
    "AUTO_LABELS",
    "ENCODINGS",
    "SAMPLING_METHODS",
    "PrepareConfig",
    "PrepareError",
    "PrepareJobView",
    "PreparedSet",
    "SamplingConfig",
    "active_duplicate",
    "config_from_dict",
    "config_from_form",
    "config_to_dict",
    "create_prepare_job",
    "dry_run",
    "find_prepared",
    "get_prepare_job",
    "job_view",
    "list_prepare_jobs",
    "list_prepared",
    "manifest_facts",
    "training_split",
]
