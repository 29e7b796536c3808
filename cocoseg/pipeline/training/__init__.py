"""Training: settings and checks (no TensorFlow), and the TensorFlow side the job process runs.

This facade holds only what the web process may import: the configs, the form's checks and
the checks that queue a run, the parent of a fine-tuned run (``lineage``), the architecture
catalog, cached model summaries and the run board the Train page watches. ``loop`` (the
custom training loop), ``input`` (tf.data), ``augment``, ``export`` (ONNX), ``preview`` and
``jobs`` import TensorFlow and run in job processes (``cocoseg jobs run``).
"""

from cocoseg.models.catalog import CATALOG, check_model_settings
from cocoseg.models.encoder_catalog import DEFAULT_ENCODER, ENCODERS
from cocoseg.pipeline.training.checks import check, create
from cocoseg.pipeline.training.config import (
    AS_PREPARED,
    LOSS_NAMES,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    NO_AUGMENTATION,
    OPTIMIZERS,
    SCHEDULES,
    AugmentConfig,
    TrainConfig,
    augment_strengths,
    describe_strengths,
)
from cocoseg.pipeline.training.corrections import CorrectionRound, past_rounds, plan_round
from cocoseg.pipeline.training.form import (
    RANDOM_WEIGHTS,
    ModelChoice,
    augment_config,
    check_model_choice,
    config_from_form,
    model_options,
    whole_number,
)
from cocoseg.pipeline.training.lineage import (
    Parent,
    architecture_fields,
    find_parent,
    parent_choices,
    with_parent_architecture,
)
from cocoseg.pipeline.training.precision import PRECISIONS, Precision, choose_precision
from cocoseg.pipeline.training.quickstart import EXPECTATIONS, QuickStart, plan_quickstart
from cocoseg.pipeline.training.runs import RunBoard, registry_signature, run_board
from cocoseg.pipeline.training.summaries import cached_model_summary
from cocoseg.pipeline.training.weights import availability_note, check_available, local_file

__all__ = [
    "EXPECTATIONS",
    "QuickStart",
    "plan_quickstart",
    "CorrectionRound",
    "past_rounds",
    "plan_round",
    "DEFAULT_ENCODER",
    "ENCODERS",
    "RANDOM_WEIGHTS",
    "availability_note",
    "check_available",
    "local_file",
    "Parent",
    "architecture_fields",
    "find_parent",
    "parent_choices",
    "with_parent_architecture",
    "AS_PREPARED",
    "augment_config",
    "CATALOG",
    "LOSS_NAMES",
    "MAX_BATCH_SIZE",
    "MAX_EPOCHS",
    "NO_AUGMENTATION",
    "OPTIMIZERS",
    "SCHEDULES",
    "PRECISIONS",
    "Precision",
    "choose_precision",
    "AugmentConfig",
    "augment_strengths",
    "describe_strengths",
    "ModelChoice",
    "RunBoard",
    "TrainConfig",
    "cached_model_summary",
    "check",
    "check_model_choice",
    "check_model_settings",
    "config_from_form",
    "create",
    "model_options",
    "registry_signature",
    "run_board",
    "whole_number",
]
