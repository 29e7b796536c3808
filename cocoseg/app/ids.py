"""Component ids, namespaced per page so two pages never collide."""

from __future__ import annotations


class Frame:
    """Ids of the app's frame and of parts several pages carry (one page is shown at a time)."""

    URL = "url"  # dcc.Location: a callback may move the browser to another page
    UPLOAD_LIMIT = "upload-limit-bytes"  # hidden: assets/cocoseg.js refuses larger files before sending
    # the augmentation strengths Prepare's "Use for training" chose (browser storage): Train starts with them
    AUGMENTATION = "training-augmentation"


class Home:
    DATASETS = "home-datasets"
    DEVICE = "home-device"
    DEVICE_CHECK = "home-device-check"  # runs a `doctor` job for TensorFlow's devices
    DEVICE_TRAINING = "home-device-training"
    DEVICE_MESSAGE = "home-device-message"
    RUNS = "home-runs"
    MODELS = "home-models"
    LINKS = "home-links"
    QUICK_START = "home-quick-start"
    QUICK_START_QUEUED = "home-quick-start-queued"
    QUICK_START_MESSAGE = "home-quick-start-message"
    QUICK_START_RESULT = "home-quick-start-result"
    DATASETS_TABLE = "home-datasets-table"


class AddDataset:
    """The add-dataset form (``components.dataset_form``): on Home, and on Explore while only the demo is."""

    FORM = "add-dataset-form"
    NAME = "add-dataset-name"
    SPLIT = "add-dataset-split"
    ANNOTATIONS = "add-dataset-annotations"
    IMAGES = "add-dataset-images"
    REPLACE = "add-dataset-replace"
    ADD = "add-dataset-add"
    REMOVE = "add-dataset-remove"
    MESSAGE = "add-dataset-message"
    QUEUED = "add-dataset-queued"
    RESULT = "add-dataset-result"
    POLL = "add-dataset-poll"
    PROGRESS = "add-dataset-progress"
    CANCEL = "add-dataset-cancel"
    REPORT = "add-dataset-report"
    DONE = "add-dataset-done"
    BROWSE_ROOT = "add-dataset-browse-root"
    BROWSE_PATH = "add-dataset-browse-path"
    BROWSE_LIST = "add-dataset-browse-list"
    BROWSE_ENTRY = "add-dataset-browse-entry"
    BROWSE_USE_IMAGES = "add-dataset-browse-use-images"
    BROWSE_UP = "add-dataset-browse-up"


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


class Explore:
    TABS = "explore-tabs"
    DATASET = "explore-dataset"
    LABELS = "explore-labels"
    SUMMARY = "explore-summary"
    PROBLEMS = "explore-problems"
    METRIC = "explore-metric"
    ORDER = "explore-order"
    OPTIONS = "explore-options"
    CLASSES = "explore-classes-chart"
    SIZES = "explore-sizes"
    OBJECTS = "explore-objects"
    OBJECT_SIZES = "explore-object-sizes"
    COOCCURRENCE = "explore-cooccurrence"
    FILTER = "explore-filter"
    MATCH = "explore-match"
    PAGE = "explore-page"
    PAGE_LABEL = "explore-page-label"
    PREVIOUS = "explore-previous"
    NEXT = "explore-next"
    THUMBNAILS = "explore-thumbnails"
    THUMBNAIL = "explore-thumbnail"
    SELECTED = "explore-selected"
    DETAIL = "explore-detail"
    DETAIL_LAYER = "explore-detail-layer"
    OPACITY = "explore-opacity"
    LEGEND = "explore-legend"
    VIEW = "explore-view"  # cards, chart and browser: dimmed while a split's statistics load
    VIEW_TITLE = "explore-view-title"  # the split and label map the chart below belongs to
    STATS_JOB = "explore-stats-job"
    STATS_START = "explore-stats-start"  # set in the browser only when a job was queued: starts the runner
    STATS_RUN = "explore-stats-run"
    STATS_POLL = "explore-stats-poll"
    STATS_PROGRESS = "explore-stats-progress"
    STATS_CANCEL = "explore-stats-cancel"
    STATS_READY = "explore-stats-ready"
    ADD = "explore-add"


class Prepare:
    """Prepare page (its file owns this class; add ids here as the page needs them)."""

    DATASET = "prepare-dataset"
    SPLITS = "prepare-splits"
    LABELS = "prepare-labels"
    SIZE = "prepare-size"
    RESIZE = "prepare-resize"
    SAMPLING = "prepare-sampling"
    THRESHOLD = "prepare-threshold"
    START = "prepare-start"
    FORM_MESSAGE = "prepare-form-message"
    QUEUED = "prepare-queued"
    JOB_RESULT = "prepare-job-result"
    LIVE = "prepare-live"
    POLL = "prepare-poll"
    CANCEL = "prepare-cancel"  # pattern id: {"type": CANCEL, "job": name}
    SETS = "prepare-sets"
    CLASSES = "prepare-classes"
    DISTRIBUTION = "prepare-distribution"
    DISTRIBUTION_NOTE = "prepare-distribution-note"
    FLIP = "prepare-flip"
    SCALE = "prepare-scale"
    ROTATION = "prepare-rotation"
    BRIGHTNESS = "prepare-brightness"
    CONTRAST = "prepare-contrast"
    SATURATION = "prepare-saturation"
    PREVIEW_IMAGE = "prepare-preview-image"
    PREVIEW_REQUEST = "prepare-preview-request"  # {"seed", and the settings the preview uses}
    PREVIEW = "prepare-preview"
    PREVIEW_NOTE = "prepare-preview-note"
    PREVIEW_BUSY = "prepare-preview-busy"
    AUGMENT_USE = "prepare-augment-use"  # "Use for training": the strengths go to Frame.AUGMENTATION
    AUGMENT_RESET = "prepare-augment-reset"
    AUGMENT_MESSAGE = "prepare-augment-message"
    REROLL = "prepare-reroll"
    JOB_MESSAGE = "prepare-job-message"
    SIGNATURE = "prepare-signature"
    CARD = "prepare-card"  # pattern id: {"type": CARD, "job": name}


class Train:
    PREPARED = "train-prepared"
    MODEL = "train-model"
    OPTIONS = "train-options"
    BASE_FILTERS = "train-base-filters"
    DEPTH = "train-depth"
    ENCODER = "train-encoder"
    ENCODER_WEIGHTS = "train-encoder-weights"
    MODEL_INFO = "train-model-info"
    MODEL_SUMMARY = "train-model-summary"
    EPOCHS = "train-epochs"
    BATCH_SIZE = "train-batch-size"
    LEARNING_RATE = "train-learning-rate"
    OPTIMIZER = "train-optimizer"
    SCHEDULE = "train-schedule"
    LOSS = "train-loss"
    SAMPLING = "train-sampling"
    THRESHOLD = "train-threshold"
    START_FROM = "train-start-from"
    FREEZE = "train-freeze-encoder-epochs"
    AUGMENT = "train-augment"
    AUGMENT_SUMMARY = "train-augment-summary"  # the strengths a run will apply, and where they came from
    PRECISION = "train-precision"
    EXPORT = "train-export"
    SEED = "train-seed"
    START = "train-start"
    FORM_MESSAGE = "train-form-message"
    QUEUED = "train-queued"
    JOB_RESULT = "train-job-result"
    LIVE = "train-live"
    POLL = "train-poll"
    CANCEL = "train-cancel"  # pattern id: {"type": CANCEL, "run": name}
    RUNS = "train-runs"
    ACTION = (
        "train-action"  # pattern id: {"type": ACTION, "action": resume|export|evaluate|delete, "run": name}
    )
    ACTION_MESSAGE = "train-action-message"
    CARD = "train-card"  # pattern id of a live run's card: {"type": CARD, "run": name}
    ROW = "train-row"  # pattern id of a run's row in the table: {"type": ROW, "run": name}
    JOB_HEARTBEAT = "train-job-heartbeat"  # the running job's progress line
    SUMMARY_REQUEST = "train-summary-request"  # Store: the form's model, to summarise in a child process
    EXPORT_REQUEST = "train-export-request"  # Store: a run to export (a background job)
    EVALUATE_REQUEST = "train-evaluate-request"  # Store: a run to evaluate (a background job)
    REFRESH_NOW = "train-refresh-now"  # Store: redraw the runs table now, not at the next poll
    SIGNATURE = "train-signature"  # Store: the registry state last drawn; an unchanged poll draws nothing
    DELETE_PENDING = "train-delete-pending"  # Store: the run the confirm dialog asks about
    DELETE_CONFIRM = "train-delete-confirm"  # dcc.ConfirmDialog before a run is deleted


class Annotate:
    SOURCE = "annotate-source"
    DATASET = "annotate-dataset"
    SPLIT = "annotate-split"
    IMAGE = "annotate-image"
    UPLOAD = "annotate-upload"
    LABELS = "annotate-labels"
    CLASS = "annotate-class"
    BRUSH = "annotate-brush"
    TOOL = "annotate-tool"
    MODEL = "annotate-model"
    PREFILL = "annotate-prefill"
    CANVAS = "annotate-canvas"
    PREVIEW = "annotate-preview"
    LEGEND = "annotate-legend"
    SAVE = "annotate-save"
    SAVE_REQUEST = "annotate-save-request"
    MESSAGE = "annotate-message"
    FINETUNE = "annotate-finetune"  # one round of the correction loop from the pre-fill model
    FINETUNE_MESSAGE = "annotate-finetune-message"
    FINETUNE_QUEUED = "annotate-finetune-queued"
    FINETUNE_RESULT = "annotate-finetune-result"
    CURRENT = "annotate-current"  # Store: the open image (key, source, size, collection, base key, version)
    NEXT = "annotate-next"  # opens the next image of the Review queue (Review.NEXT)
    LINK = "annotate-link"  # Store: a checked deep link (annotation.LinkRequest.to_dict()), opened on load
    HISTORY = "annotate-history"
    HISTORY_REFRESH = "annotate-history-refresh"  # Store: the version a save wrote; the saved list redraws
    DATASET_CONTROLS = "annotate-dataset-controls"  # the split and image choosers (hidden for an upload)
    FROM_DATASET = "annotate-from-dataset"  # the image's own annotations become the starting layer
    CANVAS_AREA = "annotate-canvas-area"  # holds the mounted dash-canvas (assets/cocoseg.js finds it)
    REOPEN = "annotate-reopen"  # pattern id: {"type": REOPEN, "file": name}
    TOOL_REQUEST = "annotate-tool-request"  # Store: one click-to-mask mark, set by assets/cocoseg.js
    TOOL_STATE = "annotate-tool-state"  # Store: annotation.tools.ToolState.to_dict() (layer names, marks)
    TOOL_UNDO = "annotate-tool-undo"  # Undo the last click-to-mask call (Ctrl+Z once the canvas has none)
    TOOL_NEW_OBJECT = "annotate-tool-new-object"  # the box / clicks tools start a new object (Enter)
    TOOL_STATUS = "annotate-tool-status"  # what the last tool call did and how long it took
    UNCERTAINTY = "annotate-uncertainty"  # the pre-fill model's uncertainty picture over the canvas (Grow)
    TOOL_MARKS = "annotate-tool-marks"  # the current object's box and clicks, drawn over the canvas
    REGISTER = "annotate-register"  # the saved corrections become a dataset Prepare and Train can use
    REGISTER_NAME = "annotate-register-name"
    REGISTER_MODE = "annotate-register-mode"  # overlay on the source dataset, or the corrections alone
    REGISTER_MESSAGE = "annotate-register-message"


class Review:
    MODEL = "review-model"
    SPLIT = "review-split"
    SCORE = "review-score"
    RANK = "review-rank"
    CANCEL = "review-cancel"
    PROGRESS = "review-progress"
    MESSAGE = "review-message"
    QUEUED = "review-queued"  # Store: {"job": name} of the ranking job being watched
    REFRESH = "review-refresh"
    CLASSES = "review-classes"
    MAPS = "review-maps"
    SUMMARY = "review-summary"
    QUEUE = "review-queue"
    NEXT = "review-next"  # Store (app frame, session storage): the queue's links, for Annotate's "next"
