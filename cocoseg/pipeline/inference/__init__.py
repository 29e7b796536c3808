"""Inference: ONNX models in the store, predictions through ONNX Runtime, evaluation, ensembles.

``model_store`` holds exported and imported models; ``predictor`` picks the execution
providers quietly and runs sessions; ``evaluate`` scores a model on a split (one IouTable);
``comparison`` puts two models side by side; ``ranking`` orders a split by how unsure a model
is (``uncertainty`` holds the scores); ``batch`` and ``upload_predictions`` write the
COCO results that the CLI and the Segment page both hand out. Nothing here imports
TensorFlow. ``evaluate.evaluate`` (the function shares its module's name, which a facade
export would shadow) is imported by module.
"""

from cocoseg.pipeline.inference.batch import predict_folder
from cocoseg.pipeline.inference.comparison import (
    Comparison,
    compare,
    dataset_image,
    disagreement_picture,
    split_images,
    upload_image,
)
from cocoseg.pipeline.inference.devices import (
    DOCTOR_JOB_SECONDS,
    DoctorError,
    checked_report,
    device_report,
    job_report,
    onnxruntime_label,
)
from cocoseg.pipeline.inference.ensembles import EnsembleError, check_ensemble_request, create_ensemble
from cocoseg.pipeline.inference.evaluate import (
    EvaluationError,
    IouTable,
    leaderboard,
    leaderboard_ious,
    protocol_text,
    reference_evaluations,
    result_key,
    split_results,
    unevaluated,
)
from cocoseg.pipeline.inference.model_import import import_model
from cocoseg.pipeline.inference.model_store import (
    VARIANTS,
    ModelError,
    delete_entry,
    get_entry,
    list_entries,
    signed_points,
)
from cocoseg.pipeline.inference.onnx_graph import STRATEGIES
from cocoseg.pipeline.inference.predictor import InferenceInputError, provider_label, usable_providers
from cocoseg.pipeline.inference.ranking import (
    RankingError,
    check_score,
    load_ranking,
    queue_pictures,
    rank_split,
    ranking_file,
    review_queue,
)
from cocoseg.pipeline.inference.upload_predictions import UploadPrediction, predict_upload, result_download
from cocoseg.pipeline.inference.uploads import display_jpeg, store_upload

__all__ = [
    "STRATEGIES",
    "VARIANTS",
    "Comparison",
    "EnsembleError",
    "EvaluationError",
    "InferenceInputError",
    "IouTable",
    "ModelError",
    "RankingError",
    "UploadPrediction",
    "compare",
    "check_ensemble_request",
    "create_ensemble",
    "dataset_image",
    "delete_entry",
    "disagreement_picture",
    "display_jpeg",
    "get_entry",
    "import_model",
    "leaderboard",
    "leaderboard_ious",
    "list_entries",
    "predict_folder",
    "predict_upload",
    "protocol_text",
    "provider_label",
    "reference_evaluations",
    "result_download",
    "result_key",
    "split_images",
    "split_results",
    "store_upload",
    "unevaluated",
    "upload_image",
    "usable_providers",
    "DOCTOR_JOB_SECONDS",
    "DoctorError",
    "checked_report",
    "device_report",
    "onnxruntime_label",
    "job_report",
    "check_score",
    "load_ranking",
    "queue_pictures",
    "rank_split",
    "ranking_file",
    "review_queue",
    "signed_points",
]
