"""Component ids, namespaced per page so two pages never collide."""

from __future__ import annotations


class Home:
    DATASETS = "home-datasets"
    DEVICE = "home-device"
    RUNS = "home-runs"
    MODELS = "home-models"
    LINKS = "home-links"


class Segment:
    UPLOAD = "segment-upload"
    UPLOADS = "segment-uploads"
    CURRENT = "segment-current"
    MODEL = "segment-model"
    VARIANT = "segment-variant"
    OPACITY = "segment-opacity"
    MESSAGES = "segment-messages"
    ORIGINAL = "segment-original"
    OVERLAY = "segment-overlay"
    LAYER = "segment-layer"
    LEGEND = "segment-legend"
    SHARES = "segment-shares"
    TIMING = "segment-timing"
    RESULT = "segment-result"
    DOWNLOAD_MASK = "segment-download-mask"
    DOWNLOAD_OVERLAY = "segment-download-overlay"
    DOWNLOAD_COCO = "segment-download-coco"
    DOWNLOAD = "segment-download"


class Evaluate:
    SPLIT = "evaluate-split"
    TABLE = "evaluate-table"
    PROTOCOL = "evaluate-protocol"
    IOU = "evaluate-iou"
    CONFUSION = "evaluate-confusion"
    REFRESH = "evaluate-refresh"
    PENDING_MODEL = "evaluate-pending-model"
    RUN = "evaluate-run"
    PROGRESS = "evaluate-progress"
    RUN_MESSAGE = "evaluate-run-message"
    ENSEMBLE_NAME = "evaluate-ensemble-name"
    ENSEMBLE_STRATEGY = "evaluate-ensemble-strategy"
    ENSEMBLE_CREATE = "evaluate-ensemble-create"
    ENSEMBLE_MESSAGE = "evaluate-ensemble-message"


class Compare:
    SOURCE = "compare-source"
    DATASET = "compare-dataset"
    IMAGE = "compare-image"
    UPLOAD = "compare-upload"
    UPLOAD_KEY = "compare-upload-key"
    MEMBERS = "compare-members"
    STRATEGY = "compare-strategy"
    SAVED = "compare-saved"
    MESSAGE = "compare-message"
    GRID = "compare-grid"
    PANEL = "compare-panel"
    SYNC = "compare-sync"
    METRICS = "compare-metrics"
