"""One annotation session: the open image, its starting layer, the drawn result, and saving it.

The Annotate page keeps only an ``OpenImage`` (small JSON) in the browser; the picture, the
starting layer (a saved mask, a model's prediction or the dataset's own annotations) and
the dataset's annotations as a mask live in the workspace's upload cache under the image's
key. The canvas shows the picture scaled to a width the page chooses (``canvas_width``);
strokes are turned into a class mask at the picture's full resolution
(``cocoseg.pipeline.annotation.strokes``) and saved with a version check
(``cocoseg.pipeline.annotation.store``), so two tabs never overwrite each other.

Every error raised here is a ``ValueError`` (``AnnotationError``, ``VersionConflict``,
``LabelMapError``, ``RegistryError``, ``ModelError``, ``InvalidUpload``,
``InferenceInputError``) or an ``OSError``, with a message that can be shown as is.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cocoseg.pipeline.annotation.canvas import DRAWABLE_TYPES, MAX_CANVAS_CHARACTERS
from cocoseg.pipeline.annotation.store import load_saved, open_annotations, save_image, saved_images
from cocoseg.pipeline.annotation.strokes import (
    AnnotationError,
    CanvasGeometry,
    class_colours,
    strokes_to_mask,
)
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.data.coco import CocoDataset
from cocoseg.pipeline.data.images import UploadedImage, read_rgb
from cocoseg.pipeline.data.labels import IGNORE_INDEX, LabelMap, LabelMapError, build_label_map
from cocoseg.pipeline.data.masks import semantic_mask
from cocoseg.pipeline.data.registry import cached_split
from cocoseg.pipeline.data.rendering import overlay
from cocoseg.pipeline.data.stats import split_categories
from cocoseg.pipeline.inference.model_store import ModelEntry, get_entry
from cocoseg.pipeline.inference.predictor import ENTROPY_LEVELS, Prediction, Predictor
from cocoseg.pipeline.inference.uncertainty import heat_picture
from cocoseg.pipeline.inference.uploads import (
    has_display,
    load_result,
    load_upload,
    persist_upload,
    store_display,
    store_result,
    store_upload,
)

SESSION_ERRORS = (ValueError, OSError)  # see the module docstring: every message is shown as is
DEFAULT_CHOICE = "demo/val"
DEFAULT_PRESET = "voc21"
UPLOAD_COLLECTION = "uploads"  # uploads are saved into annotations/uploads.json
BASE_LAYER = "annotate-base"  # the starting layer is kept with the image under this name
DATASET_LAYER = "annotate-dataset"  # a dataset image's own annotations, as a class mask
PREDICTION_LAYER = "annotate-prediction"  # the pre-fill model's classes, for the model-regions tool


@dataclasses.dataclass(frozen=True)
class OpenImage:
    """The open image, as the page's Store holds it (``to_dict``): keys and facts, never pixels.

    Attributes:
        key: the picture's key in the upload cache (its layers are kept under the same key).
        source: the picture's absolute path, or ``"upload"`` until an upload is saved.
        collection: the annotations file it is saved into (``annotations/<collection>.json``).
        file_name: the name it is saved under.
        width, height: the picture's size in pixels.
        base: a starting layer (saved mask, prediction, dataset annotations, a tool's result) is kept.
        dataset_mask: the dataset's own annotations are kept as a mask.
        version: the annotations file's version when the image was opened or last saved.
        layer: the name the starting layer is kept under: ``BASE_LAYER``, or a click-to-mask tool's
            step (``cocoseg.pipeline.annotation.tools``), so Undo can go back to an earlier one.
        prediction: a model's prediction is kept (``PREDICTION_LAYER``) for the model-regions tool.
        uncertainty: the display key of that model's uncertainty picture (the Grow tool shows it), or "".
    """

    key: str
    source: str
    collection: str
    file_name: str
    width: int
    height: int
    base: bool = False
    dataset_mask: bool = False
    version: str = ""
    layer: str = BASE_LAYER
    prediction: bool = False
    uncertainty: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> OpenImage:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    def canvas_height(self, canvas_width: int) -> int:
        """The canvas's height when it shows the picture ``canvas_width`` pixels wide."""
        return max(1, round(canvas_width * self.height / self.width))

    def geometry(self, canvas_width: int) -> CanvasGeometry:
        """How the canvas shows the picture (its own zoom is read from the drawing itself)."""
        return CanvasGeometry(self.width, self.height, canvas_width, self.canvas_height(canvas_width))


@dataclasses.dataclass(frozen=True)
class Selection:
    """What the page's dropdowns say: a ``"dataset/split"`` choice and a label-map preset."""

    choice: str | None
    preset: str | None
    max_annotation_bytes: int

    @property
    def dataset(self) -> str:
        return (self.choice or DEFAULT_CHOICE).partition("/")[0]

    def coco(self, workspace: Workspace) -> CocoDataset:
        dataset, _, split = (self.choice or DEFAULT_CHOICE).partition("/")
        return cached_split(workspace, dataset, split, self.max_annotation_bytes)

    def label_map(self, workspace: Workspace) -> LabelMap:
        return label_map_for(workspace, self.preset, self.choice, self.max_annotation_bytes)


def label_map_for(workspace: Workspace, preset: str | None, choice: str | None, max_bytes: int) -> LabelMap:
    """The label map the strokes' colours refer to: ``preset`` over the chosen split's categories."""
    dataset, _, split = (choice or DEFAULT_CHOICE).partition("/")
    categories = split_categories(workspace, dataset, split, max_bytes)
    return build_label_map(preset or DEFAULT_PRESET, categories)


def collection_of(current: OpenImage | None, choice: str | None) -> str:
    """Where saves go: the open image's collection, else the chosen dataset's."""
    if current is not None and current.collection:
        return current.collection
    return (choice or DEFAULT_CHOICE).partition("/")[0]


# --- opening an image ------------------------------------------------------------------------


def image_names(workspace: Workspace, selection: Selection) -> list[str]:
    """The file names of the chosen split's images."""
    return [image["file_name"] for image in selection.coco(workspace).images]


def _open(
    workspace: Workspace,
    image: np.ndarray,
    source: str,
    collection: str,
    file_name: str,
    selection: Selection,
    dataset_mask: np.ndarray | None = None,
) -> OpenImage:
    """Keep the picture server-side; its saved mask (if any, and readable) becomes the starting layer."""
    key = store_upload(workspace, UploadedImage(image, file_name, "png"))
    height, width = image.shape[:2]
    if dataset_mask is not None:
        store_result(workspace, key, DATASET_LAYER, "mask", dataset_mask)
    try:
        saved = load_saved(workspace, collection, file_name, selection.label_map(workspace))
    except (AnnotationError, LabelMapError, ValueError):
        saved = None
    if saved is not None:
        store_result(workspace, key, BASE_LAYER, "mask", saved)
    return OpenImage(
        key=key,
        source=source,
        collection=collection,
        file_name=file_name,
        width=width,
        height=height,
        base=saved is not None,
        dataset_mask=dataset_mask is not None,
        version=open_annotations(workspace, collection)[1],
    )


def open_dataset_image(workspace: Workspace, selection: Selection, file_name: str) -> OpenImage:
    """An image of the chosen split, with its own annotations kept as a mask (shown until something is
    drawn, and offered as a starting layer)."""
    coco = selection.coco(workspace)
    image = next((entry for entry in coco.images if entry["file_name"] == file_name), None)
    if image is None:
        raise ValueError(f"{file_name} is not an image of {selection.choice}")
    picture = read_rgb(coco.image_path(image))
    own = semantic_mask(
        coco.annotations_by_image[image["id"]], *picture.shape[:2], selection.label_map(workspace)
    )
    return _open(
        workspace, picture, str(coco.image_path(image)), selection.dataset, file_name, selection, own
    )


def open_upload(workspace: Workspace, upload: UploadedImage, selection: Selection) -> OpenImage:
    """A decoded upload (``cocoseg.pipeline.data.images.decode_upload``), saved into ``uploads``."""
    return _open(workspace, upload.image, "upload", UPLOAD_COLLECTION, upload.name, selection)


def reopen_saved(workspace: Workspace, collection: str, file_name: str, selection: Selection) -> OpenImage:
    """A saved image again, its saved mask as the starting layer."""
    entry = next(
        (item for item in saved_images(workspace, collection) if item["file_name"] == file_name), None
    )
    if entry is None or not entry.get("source"):
        raise ValueError(f"{file_name} is not among the saved images of {collection}")
    return _open(
        workspace, read_rgb(Path(entry["source"])), entry["source"], collection, file_name, selection
    )


def canvas_view(
    workspace: Workspace, current: OpenImage, selection: Selection, canvas_width: int
) -> tuple[str, int]:
    """The canvas background's upload key (the picture, with the starting layer blended in) and height.

    A click-to-mask layer's name is never reused for other pixels, so its picture keeps one address
    (``<key>-<layer>``), kept as the display JPEG alone: Undo shows it again without blending.
    """
    background = current.key
    if current.base:
        named = None if current.layer == BASE_LAYER else f"{current.key}-{current.layer}"
        if named and has_display(workspace, named):
            return named, current.canvas_height(canvas_width)
        upload = load_upload(workspace, current.key)
        mask = load_result(workspace, current.key, current.layer, "mask")
        if upload is not None and mask is not None:
            blended = overlay(upload.image, mask, selection.label_map(workspace), 0.5)
            if named:  # only its JPEG is ever read
                store_display(workspace, named, blended)
                return named, current.canvas_height(canvas_width)
            background = store_upload(workspace, UploadedImage(blended, current.file_name, "png"))
    return background, current.canvas_height(canvas_width)


# --- starting layers -------------------------------------------------------------------------


def check_model_label_map(entry: ModelEntry, label_map: LabelMap) -> None:
    """Refuse a model whose classes mean something else than the strokes' label map."""
    predicted = entry.label_map()
    if not predicted.same_classes(label_map):
        raise ValueError(
            f"{entry.name} predicts the {predicted.name} label map; choose that label map to pre-fill with it"
        )


def prefill(
    workspace: Workspace, current: OpenImage, model: str, selection: Selection
) -> tuple[OpenImage, Prediction]:
    """Run ``model`` on the open image; its mask becomes the editable starting layer."""
    entry = get_entry(workspace, model)
    check_model_label_map(entry, selection.label_map(workspace))
    upload = load_upload(workspace, current.key)
    if upload is None:
        raise ValueError("the open image expired; open it again")
    prediction, uncertainty = Predictor(entry).predict_with_uncertainty(upload.image)
    store_result(workspace, current.key, BASE_LAYER, "mask", prediction.mask)
    store_result(workspace, current.key, PREDICTION_LAYER, "mask", prediction.mask)
    shown = uncertainty_key(current.key, entry.card["sha256"])
    store_display(workspace, shown, _uncertainty_picture(uncertainty))
    updated = dataclasses.replace(current, base=True, layer=BASE_LAYER, prediction=True, uncertainty=shown)
    return updated, prediction


def uncertainty_key(key: str, model_digest: str) -> str:
    """Where a model's uncertainty picture of an open image is kept (a display JPEG): one address per
    model, since the browser keeps a picture for an hour."""
    return f"{key}-u{model_digest[:10]}"


def _uncertainty_picture(levels: np.ndarray) -> np.ndarray:
    """The heat picture the Grow tool shows over the canvas: bright where the model was unsure, within
    this image's own range; grey where it predicted nothing."""
    return heat_picture(levels.astype(np.float32) / ENTROPY_LEVELS, levels != IGNORE_INDEX)


def start_from_dataset(workspace: Workspace, current: OpenImage | None) -> OpenImage | None:
    """The dataset's own annotations become the starting layer; None when the image has none (an upload)."""
    if current is None or not current.dataset_mask:
        return None
    mask = load_result(workspace, current.key, DATASET_LAYER, "mask")
    if mask is None:
        return None
    store_result(workspace, current.key, BASE_LAYER, "mask", mask)
    return dataclasses.replace(current, base=True, layer=BASE_LAYER)


# --- the drawn result ------------------------------------------------------------------------


def has_strokes(canvas_json: str | dict | None) -> bool:
    """Whether the canvas holds a drawable object (its background picture, an ``image``, does not count).

    Unreadable JSON holds no strokes; JSON too large to read here does (``strokes_to_mask`` refuses it).
    """
    if not canvas_json:
        return False
    if isinstance(canvas_json, str):
        if len(canvas_json) > MAX_CANVAS_CHARACTERS:
            return True
        try:
            canvas_json = json.loads(canvas_json)
        except (RecursionError, ValueError):
            return False
    objects = canvas_json.get("objects") if isinstance(canvas_json, dict) else None
    return isinstance(objects, list) and any(
        isinstance(item, dict) and item.get("type") in DRAWABLE_TYPES for item in objects
    )


def result_mask(
    workspace: Workspace, current: OpenImage, canvas_json: str | None, label_map: LabelMap, canvas_width: int
) -> np.ndarray:
    """The class mask the canvas describes: strokes over the starting layer, at full resolution."""
    base = load_result(workspace, current.key, current.layer, "mask") if current.base else None
    return strokes_to_mask(
        canvas_json or '{"objects": []}', current.geometry(canvas_width), class_colours(label_map), base
    )


@dataclasses.dataclass(frozen=True)
class PreviewLayer:
    """What the preview lays over the picture: ``mask`` None shows the picture alone."""

    mask: np.ndarray | None = None
    label_map: LabelMap | None = None
    from_dataset: bool = False  # the dataset's own annotations (nothing drawn or started yet)


def preview_layer(
    workspace: Workspace, current: OpenImage, canvas_json: str | None, selection: Selection, canvas_width: int
) -> PreviewLayer:
    """The drawn result; else the starting layer; else the dataset's own annotations; else nothing."""
    if has_strokes(canvas_json):
        label_map = selection.label_map(workspace)
        return PreviewLayer(result_mask(workspace, current, canvas_json, label_map, canvas_width), label_map)
    for kept, name in ((current.base, current.layer), (current.dataset_mask, DATASET_LAYER)):
        if kept:
            mask = load_result(workspace, current.key, name, "mask")
            if mask is None:
                return PreviewLayer()
            return PreviewLayer(mask, selection.label_map(workspace), from_dataset=name == DATASET_LAYER)
    return PreviewLayer()


def save(
    workspace: Workspace, current: OpenImage, canvas_json: str | None, selection: Selection, canvas_width: int
) -> OpenImage:
    """Save the drawn result (or the untouched starting layer) as COCO annotations of its collection.

    An upload is first kept in the workspace under a name from its key, so two "image.png"
    uploads stay apart. Returns the image as saved (new version, kept source and name).

    Raises:
        VersionConflict: the collection's file changed since the image was opened or last saved.
        AnnotationError: nothing drawn, or a drawing or mask that cannot be saved.
    """
    drawn = has_strokes(canvas_json)
    if not drawn and not current.base:
        raise AnnotationError("nothing to save: the canvas is empty; paint at least one class region")
    label_map = selection.label_map(workspace)
    if drawn:
        mask = result_mask(workspace, current, canvas_json, label_map, canvas_width)
    else:
        mask = load_result(workspace, current.key, current.layer, "mask")
    source, file_name = current.source, current.file_name
    if source == "upload":
        kept = persist_upload(
            workspace, current.key, workspace.annotations_dir / f"{UPLOAD_COLLECTION}-images"
        )
        source, file_name = str(kept), kept.name
    image = {"file_name": file_name, "width": current.width, "height": current.height, "source": source}
    version = save_image(
        workspace,
        current.collection,
        image,
        mask,
        label_map,
        current.version,
        selection.max_annotation_bytes,
    )
    return dataclasses.replace(current, version=version, file_name=file_name, source=source)
