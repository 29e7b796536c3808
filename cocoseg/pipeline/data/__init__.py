"""Data: registered COCO datasets, their checks and statistics, label maps, masks and pictures.

``registry`` knows the datasets and caches each parsed split; ``labels`` turns COCO
categories into the classes a model predicts; ``masks`` and ``lowres`` rasterise them;
``rendering`` is the one home of overlays and PNG/JPEG encoding; ``thumbnails`` and
``stats`` feed the Explore page. Nothing here imports TensorFlow.
"""

from cocoseg.pipeline.data.coco import CocoFileError
from cocoseg.pipeline.data.geometry import RESIZE_MODES
from cocoseg.pipeline.data.images import UPLOAD_ACCEPT, ImageError, InvalidUpload, decode_upload
from cocoseg.pipeline.data.labels import (
    COCO_CATEGORIES,
    CROWD_POLICIES,
    OVERLAP_POLICIES,
    PRESETS,
    LabelMap,
    LabelMapError,
    build_label_map,
    default_label_map,
    default_preset,
    fitting_presets,
)
from cocoseg.pipeline.data.mask_export import ExportError, export_masks
from cocoseg.pipeline.data.masks import colorize
from cocoseg.pipeline.data.registry import (
    RegistryError,
    add_dataset,
    add_image_folder,
    cached_split,
    check_data_roots,
    get_dataset,
    is_unlabelled,
    list_datasets,
    load_split,
    overview,
    remove_dataset,
    split_report,
)
from cocoseg.pipeline.data.rendering import (
    encode_png,
    image_jpeg,
    image_png,
    mask_layer,
    mask_layer_png,
    overlay,
    pixel_shares,
)
from cocoseg.pipeline.data.stats import dataset_stats, known_report, split_categories, split_stats
from cocoseg.pipeline.data.thumbnails import (
    ImageDetail,
    ImagePage,
    image_page,
    split_image_detail,
    thumbnails_of,
)
from cocoseg.pipeline.data.validation import ValidationReport

__all__ = [
    "COCO_CATEGORIES",
    "CROWD_POLICIES",
    "OVERLAP_POLICIES",
    "PRESETS",
    "RESIZE_MODES",
    "UPLOAD_ACCEPT",
    "CocoFileError",
    "ExportError",
    "ImageDetail",
    "ImageError",
    "ImagePage",
    "InvalidUpload",
    "LabelMap",
    "LabelMapError",
    "RegistryError",
    "ValidationReport",
    "add_dataset",
    "add_image_folder",
    "build_label_map",
    "cached_split",
    "check_data_roots",
    "colorize",
    "dataset_stats",
    "decode_upload",
    "default_label_map",
    "default_preset",
    "fitting_presets",
    "encode_png",
    "export_masks",
    "get_dataset",
    "image_jpeg",
    "image_page",
    "image_png",
    "is_unlabelled",
    "known_report",
    "list_datasets",
    "load_split",
    "mask_layer",
    "mask_layer_png",
    "overlay",
    "overview",
    "pixel_shares",
    "remove_dataset",
    "split_categories",
    "split_image_detail",
    "split_report",
    "split_stats",
    "thumbnails_of",
]
