"""Hand-drawn corrections: a browser canvas becomes class masks, saved as COCO and fed back to training.

``session`` is what the Annotate page does with an image (open, pre-fill, preview, save);
``strokes`` and ``canvas`` turn fabric.js drawings into masks; ``store`` keeps one COCO file
per dataset with a version check; ``export`` writes the corrections out or registers them as
a dataset; ``links`` checks a deep link into the page. Nothing here imports TensorFlow
(pre-filling runs models through ONNX Runtime).
"""

from cocoseg.pipeline.annotation.export import EXPORT_FORMATS, export_annotations, register_corrections
from cocoseg.pipeline.annotation.links import LINK_KEYS, LinkRequest, resolve_link, starting_preset
from cocoseg.pipeline.annotation.session import (
    DEFAULT_PRESET,
    SESSION_ERRORS,
    UPLOAD_COLLECTION,
    OpenImage,
    PreviewLayer,
    Selection,
    canvas_view,
    collection_of,
    has_strokes,
    image_names,
    label_map_for,
    open_dataset_image,
    open_upload,
    prefill,
    preview_layer,
    reopen_saved,
    result_mask,
    save,
    start_from_dataset,
)
from cocoseg.pipeline.annotation.store import VersionConflict, annotations_file, corrected_files, saved_images
from cocoseg.pipeline.annotation.strokes import ERASER_COLOUR, AnnotationError

__all__ = [
    "DEFAULT_PRESET",
    "ERASER_COLOUR",
    "EXPORT_FORMATS",
    "LINK_KEYS",
    "SESSION_ERRORS",
    "UPLOAD_COLLECTION",
    "AnnotationError",
    "LinkRequest",
    "PreviewLayer",
    "OpenImage",
    "Selection",
    "VersionConflict",
    "annotations_file",
    "canvas_view",
    "collection_of",
    "export_annotations",
    "has_strokes",
    "image_names",
    "label_map_for",
    "open_dataset_image",
    "open_upload",
    "prefill",
    "preview_layer",
    "register_corrections",
    "reopen_saved",
    "resolve_link",
    "starting_preset",
    "result_mask",
    "save",
    "corrected_files",
    "saved_images",
    "start_from_dataset",
]
