"""Annotate: correct a model's mask (or draw from scratch) with dash-canvas, save it as COCO.

The canvas shows the image (with the pre-filled mask blended in, when there is one) and
records strokes; the server turns them into a class mask at the image's full resolution
(``cocoseg.pipeline.annotation.strokes``), merged over the pre-filled mask, and saves it into the
workspace's COCO file for the image's dataset (``cocoseg.pipeline.annotation.store``) with a
version check, so two tabs cannot overwrite each other. The browser only holds keys:
the image, the pre-filled mask and the file version live server-side.

Keys (``assets/cocoseg.js``): 1-9 pick a class, E the eraser, [ and ] the brush, P/L/R/H
pencil, line, rectangle, pan; Ctrl+Z undo; Space refreshes the preview; Ctrl+S saves.
"""

from __future__ import annotations

import logging

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update
from dash_canvas import DashCanvas

from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.components.segmentation import class_legend, data_url, picture_with_layer
from cocoseg.app.context import UPLOAD_ROUTE, current_settings, current_workspace
from cocoseg.app.ids import Annotate
from cocoseg.pipeline.annotation.store import (
    VersionConflict,
    load_saved,
    open_annotations,
    save_image,
    saved_images,
)
from cocoseg.pipeline.annotation.strokes import (
    ERASER_COLOUR,
    AnnotationError,
    CanvasGeometry,
    class_colours,
    strokes_to_mask,
)
from cocoseg.pipeline.data.images import InvalidUpload, UploadedImage, decode_upload, read_rgb
from cocoseg.pipeline.data.labels import PRESETS, LabelMapError, build_label_map
from cocoseg.pipeline.data.masks import semantic_mask
from cocoseg.pipeline.data.registry import RegistryError, cached_split, list_datasets
from cocoseg.pipeline.inference.model_store import ModelError, get_entry, list_entries
from cocoseg.pipeline.inference.predictor import InferenceInputError, Predictor
from cocoseg.pipeline.inference.rendering import mask_layer_png, overlay, pixel_shares
from cocoseg.pipeline.inference.uploads import (
    load_result,
    load_upload,
    persist_upload,
    store_result,
    store_upload,
)

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/annotate", name="Annotate", order=35, icon="brush")

CANVAS_WIDTH = 540  # fits the middle column on a 1400 px wide window; larger images are shown scaled
UPLOAD_COLLECTION = "uploads"
BASE_MODEL = "annotate-base"  # the pre-filled mask is kept with the image under this name
DATASET_MASK = "annotate-dataset"  # a dataset image's own annotations, as a class mask
LABEL_PRESETS = [preset for preset in PRESETS if preset != "custom"]
TOOLS = (("pencil", "Pencil (P)"), ("line", "Line (L)"), ("rectangle", "Rectangle (R)"), ("pan", "Pan (H)"))
ACCEPTED = ".jpg,.jpeg,.png,.webp,.bmp,.tif,.tiff"


def _dataset_choices(workspace) -> list[dict]:
    return [
        {"label": f"{entry.name}/{split}", "value": f"{entry.name}/{split}"}
        for entry in list_datasets(workspace)
        for split in entry.splits
    ]


def _label_map(workspace, preset: str, choice: str | None):
    """The label map the strokes' colours refer to (categories of the chosen dataset split)."""
    dataset, _, split = (choice or "demo/val").partition("/")
    categories = cached_split(workspace, dataset, split, current_settings().max_annotation_bytes).categories
    return build_label_map(preset or "voc21", categories)


def palette_options(label_map) -> list[dict]:
    """Radio options: a colour swatch per class (1-9 keys pick the first nine), then the eraser."""
    options = []
    for index, name in enumerate(label_map.class_names):
        if index == 0:
            continue
        red, green, blue = label_map.palette[index]
        swatch = html.Span(className="palette-chip", style={"background": f"rgb({red},{green},{blue})"})
        key = f" ({index})" if index <= 9 else ""
        options.append(
            {"label": html.Span([swatch, f"{name}{key}"]), "value": f"#{red:02x}{green:02x}{blue:02x}"}
        )
    options.append(
        {
            "label": html.Span([html.Span(className="palette-chip palette-eraser"), "eraser (E)"]),
            "value": ERASER_COLOUR,
        }
    )
    return options


def _controls(workspace) -> list:
    datasets = _dataset_choices(workspace)
    models = [
        {"label": f"{entry.name} ({entry.card['label_map']['name']})", "value": entry.name}
        for entry in list_entries(workspace)
    ]
    return [
        dbc.RadioItems(
            id=Annotate.SOURCE,
            options=[{"label": "Dataset image", "value": "dataset"}, {"label": "Upload", "value": "upload"}],
            value="dataset",
            inline=True,
        ),
        html.Div(
            [
                dcc.Dropdown(
                    id=Annotate.DATASET,
                    options=datasets,
                    value=datasets[0]["value"] if datasets else None,
                    clearable=False,
                ),
                dcc.Dropdown(
                    id=Annotate.IMAGE, options=[], placeholder="image (type to search)", className="mt-1"
                ),
            ],
            id="annotate-dataset-controls",
        ),
        dcc.Upload(
            id=Annotate.UPLOAD,
            accept=ACCEPTED,
            max_size=current_settings().max_upload_bytes,
            className="upload-zone mt-1",
            children=html.Div([html.I(className="bi bi-cloud-arrow-up me-1"), "Drop an image or click"]),
            style={"display": "none"},
        ),
        dbc.Label("Label map", className="small mt-2 mb-0"),
        dcc.Dropdown(id=Annotate.LABELS, options=LABEL_PRESETS, value="voc21", clearable=False),
        dbc.Label("Class to paint", className="small mt-2 mb-0"),
        dbc.RadioItems(id=Annotate.CLASS, options=[], value=None, className="annotate-palette"),
        dbc.Label("Brush", className="small mt-2 mb-0"),
        dcc.Slider(
            id=Annotate.BRUSH, min=1, max=60, step=1, value=12, marks=None, tooltip={"placement": "bottom"}
        ),
        dbc.RadioItems(
            id=Annotate.TOOL,
            options=[{"label": label, "value": value} for value, label in TOOLS],
            value="pencil",
            inline=True,
            className="small",
        ),
        dbc.Label("Pre-fill from a model", className="small mt-2 mb-0"),
        dcc.Dropdown(
            id=Annotate.MODEL,
            options=models,
            value=models[0]["value"] if models else None,
            placeholder="no model yet: train or import one",
        ),
        html.Div(
            [
                dbc.Button(
                    [html.I(className="bi bi-magic me-1"), "Pre-fill"],
                    id=Annotate.PREFILL,
                    size="sm",
                    disabled=not models,
                ),
                dbc.Button(
                    [html.I(className="bi bi-files me-1"), "From annotations"],
                    id="annotate-from-dataset",
                    size="sm",
                    color="secondary",
                    outline=True,
                    title="start from the dataset's own annotations of this image",
                ),
            ],
            className="d-flex gap-1 mt-1",
        ),
        html.Hr(className="my-2"),
        dbc.Button(
            [html.I(className="bi bi-save me-1"), "Save (Ctrl+S)"],
            id=Annotate.SAVE,
            color="primary",
            size="sm",
        ),
        html.Div(id=Annotate.MESSAGE, className="small mt-2"),
        html.Div(str(current_settings().max_upload_bytes), id="upload-limit-bytes", hidden=True),
    ]


def _register_controls() -> html.Div:
    """Feed the corrections back into training: a dataset that Prepare and Train can use."""
    return html.Div(
        [
            dbc.Label("Use for training", className="small mb-0"),
            dbc.Input(
                id="annotate-register-name", placeholder="new dataset name, e.g. demo-fixed", size="sm"
            ),
            dbc.RadioItems(
                id="annotate-register-mode",
                value="overlay",
                className="small",
                options=[
                    {
                        "label": "source dataset with these corrections (keeps its val split; recommended)",
                        "value": "overlay",
                    },
                    {"label": "the corrected images alone (a train split)", "value": "dataset"},
                ],
            ),
            dbc.Button(
                [html.I(className="bi bi-box-arrow-in-right me-1"), "Register"],
                id="annotate-register",
                size="sm",
                color="secondary",
                className="mt-1",
            ),
            html.Div(id="annotate-register-message", className="small mt-1"),
        ]
    )


def layout(**_query) -> html.Div:
    workspace = current_workspace()
    header = html.Div(
        [
            html.H2("Annotate"),
            html.Span(
                "paint classes over the image; saved as COCO in the workspace, ready for the "
                "next preparation",
                className="text-muted small",
            ),
        ],
        className="page-header",
    )
    canvas = canvas_holder("empty", "", 360, "#800000", 12, "pencil")
    hint = html.Div(
        "1-9 class · E eraser · [ ] brush · P L R H tools · Ctrl+Z undo · Space preview · Ctrl+S save",
        className="small text-muted mt-1",
    )
    result = [
        html.Div(
            id=Annotate.PREVIEW,
            children=empty_state(
                "Open an image to start.", "Pick one from a dataset or upload one.", icon="image"
            ),
        ),
        html.Div(id=Annotate.LEGEND, className="mt-2"),
    ]
    history = [html.Div(id=Annotate.HISTORY), html.Hr(className="my-2"), _register_controls()]
    return html.Div(
        [
            header,
            dcc.Store(id=Annotate.CURRENT),
            dcc.Store(id=Annotate.SAVE_REQUEST),
            dcc.Store(id="annotate-history-refresh"),
            html.Div(
                [
                    html.Div(
                        panel("Image and labels", _controls(workspace), icon="sliders"),
                        className="annotate-controls",
                    ),
                    html.Div(
                        panel(
                            "Canvas",
                            [html.Div(canvas, id="annotate-canvas-area", className="annotate-canvas"), hint],
                            icon="brush",
                        ),
                        className="annotate-main",
                    ),
                    html.Div(
                        [
                            panel("Result", result, icon="layers"),
                            panel("Saved", history, icon="clock-history"),
                        ],
                        className="annotate-side",
                    ),
                ],
                className="annotate-grid",
            ),
        ],
        className="page page-annotate",
    )


def canvas_holder(holder: str, filename: str, height: int, colour: str, width: int, tool: str) -> html.Div:
    """A fresh canvas for a new background: dash-canvas reads its picture and size only when it mounts,
    and the holder's new id makes React mount a new one (strokes start empty)."""
    canvas = DashCanvas(
        id=Annotate.CANVAS,
        width=CANVAS_WIDTH,
        height=height,
        filename=filename,
        lineWidth=width or 12,
        lineColor=colour or ERASER_COLOUR,
        tool=tool or "pencil",
        goButtonTitle="Preview",
        hide_buttons=["select"],
    )
    return html.Div(canvas, id=f"annotate-holder-{holder}")


# --- choosing an image ---------------------------------------------------------------------


@callback(
    Output("annotate-dataset-controls", "style"),
    Output(Annotate.UPLOAD, "style"),
    Input(Annotate.SOURCE, "value"),
)
def show_source(source):
    hidden = {"display": "none"}
    return (hidden, {}) if source == "upload" else ({}, hidden)


@callback(
    Output(Annotate.IMAGE, "options"), Output(Annotate.IMAGE, "value"), Input(Annotate.DATASET, "value")
)
def image_choices(choice):
    if not choice:
        return [], None
    dataset, _, split = choice.partition("/")
    try:
        coco = cached_split(current_workspace(), dataset, split, current_settings().max_annotation_bytes)
    except (RegistryError, ValueError, OSError) as error:
        logger.warning("cannot list %s: %s", choice, error)
        return [], None
    return [{"label": image["file_name"], "value": image["file_name"]} for image in coco.images], None


@callback(
    Output(Annotate.CLASS, "options"),
    Output(Annotate.CLASS, "value"),
    Input(Annotate.LABELS, "value"),
    State(Annotate.DATASET, "value"),
)
def show_palette(preset, choice):
    try:
        label_map = _label_map(current_workspace(), preset, choice)
    except (LabelMapError, RegistryError, ValueError, OSError) as error:
        return [{"label": str(error), "value": "", "disabled": True}], None
    options = palette_options(label_map)
    return options, options[0]["value"] if len(options) > 1 else None


@callback(
    Output(Annotate.CANVAS, "lineColor"),
    Output(Annotate.CANVAS, "lineWidth"),
    Output(Annotate.CANVAS, "tool"),
    Input(Annotate.CLASS, "value"),
    Input(Annotate.BRUSH, "value"),
    Input(Annotate.TOOL, "value"),
)
def canvas_tools(colour, width, tool):
    return colour or ERASER_COLOUR, width or 12, tool or "pencil"


def _open(
    workspace,
    image,
    source: str,
    collection: str,
    file_name: str,
    preset: str,
    choice: str | None,
    dataset_mask=None,
) -> dict:
    """Keep the image server-side, restore its saved mask (if any) as the starting layer.

    ``dataset_mask``: the image's own annotations in its dataset, shown until something is
    drawn and offered as a starting layer ("From annotations").
    """
    key = store_upload(workspace, UploadedImage(image, file_name, "png"))
    height, width = image.shape[:2]
    current = {
        "key": key,
        "source": source,
        "collection": collection,
        "file_name": file_name,
        "width": width,
        "height": height,
        "base": False,
        "dataset_mask": dataset_mask is not None,
        "version": open_annotations(workspace, collection)[1],
    }
    if dataset_mask is not None:
        store_result(workspace, key, DATASET_MASK, "mask", dataset_mask)
    try:
        saved = load_saved(workspace, collection, file_name, _label_map(workspace, preset, choice))
    except (AnnotationError, LabelMapError, ValueError):
        saved = None
    if saved is not None:
        store_result(workspace, key, BASE_MODEL, "mask", saved)
        current["base"] = True
    return current


def _canvas_view(workspace, current: dict, preset: str, choice: str | None) -> tuple:
    """The canvas background (image, or image with the starting mask blended in) and its height."""
    background = current["key"]
    if current.get("base"):
        upload = load_upload(workspace, current["key"])
        mask = load_result(workspace, current["key"], BASE_MODEL, "mask")
        if upload is not None and mask is not None:
            blended = overlay(upload.image, mask, _label_map(workspace, preset, choice), 0.5)
            background = store_upload(workspace, UploadedImage(blended, current["file_name"], "png"))
    height = max(1, round(CANVAS_WIDTH * current["height"] / current["width"]))
    return f"{UPLOAD_ROUTE}{background}.jpg", height


_OPEN_OUTPUTS = (
    Output(Annotate.CURRENT, "data", allow_duplicate=True),
    Output("annotate-canvas-area", "children", allow_duplicate=True),
    Output(Annotate.MESSAGE, "children", allow_duplicate=True),
)
_CANVAS_SETTINGS = (
    State(Annotate.CLASS, "value"),
    State(Annotate.BRUSH, "value"),
    State(Annotate.TOOL, "value"),
)
_OPEN_ERRORS = (InvalidUpload, AnnotationError, RegistryError, LabelMapError, ValueError, OSError)


def _opened_view(workspace, opened: dict, preset, choice, colour, width, tool) -> tuple:
    """The image's state, a new canvas on it (strokes start empty) and the note that says what was opened."""
    filename, height = _canvas_view(workspace, opened, preset, choice)
    note = (
        "its saved mask is the starting layer"
        if opened["base"]
        else "draw the classes, or pre-fill from a model"
    )
    canvas = canvas_holder(opened["key"][:12], filename, height, colour, width, tool)
    return (
        opened,
        canvas,
        dbc.Alert(f"Opened {opened['file_name']}: {note}.", color="info", className="py-1 px-2 mb-0"),
    )


def _not_opened(error: Exception) -> tuple:
    return no_update, no_update, dbc.Alert(str(error), color="danger", className="py-1 px-2 mb-0")


@callback(
    *_OPEN_OUTPUTS,
    Input(Annotate.IMAGE, "value"),
    State(Annotate.DATASET, "value"),
    State(Annotate.LABELS, "value"),
    *_CANVAS_SETTINGS,
    prevent_initial_call=True,
)
def open_dataset_image(file_name, choice, preset, colour, width, tool):
    """A dataset image, with its own annotations shown until something is drawn."""
    if not file_name or not choice:
        return (no_update,) * 3
    workspace = current_workspace()
    try:
        dataset, _, split = choice.partition("/")
        coco = cached_split(workspace, dataset, split, current_settings().max_annotation_bytes)
        image = next((entry for entry in coco.images if entry["file_name"] == file_name), None)
        if image is None:
            raise ValueError(f"{file_name} is not an image of {choice}")
        picture = read_rgb(coco.image_path(image))
        own = semantic_mask(
            coco.annotations_by_image[image["id"]], *picture.shape[:2], _label_map(workspace, preset, choice)
        )
        opened = _open(
            workspace, picture, str(coco.image_path(image)), dataset, file_name, preset, choice, own
        )
        return _opened_view(workspace, opened, preset, choice, colour, width, tool)
    except _OPEN_ERRORS as error:
        return _not_opened(error)


@callback(
    *_OPEN_OUTPUTS,
    Input(Annotate.UPLOAD, "contents"),
    State(Annotate.UPLOAD, "filename"),
    State(Annotate.DATASET, "value"),
    State(Annotate.LABELS, "value"),
    *_CANVAS_SETTINGS,
    prevent_initial_call=True,
)
def open_upload(contents, upload_name, choice, preset, colour, width, tool):
    """An uploaded image (decoded and checked like a Segment upload)."""
    if not contents:
        return (no_update,) * 3
    workspace, settings = current_workspace(), current_settings()
    try:
        upload = decode_upload(
            contents, upload_name or "upload", settings.max_upload_bytes, settings.max_upload_pixels
        )
        opened = _open(workspace, upload.image, "upload", UPLOAD_COLLECTION, upload.name, preset, choice)
        return _opened_view(workspace, opened, preset, choice, colour, width, tool)
    except _OPEN_ERRORS as error:
        return _not_opened(error)


@callback(
    *_OPEN_OUTPUTS,
    Input({"type": Annotate.REOPEN, "file": ALL}, "n_clicks"),
    State(Annotate.DATASET, "value"),
    State(Annotate.LABELS, "value"),
    State(Annotate.CURRENT, "data"),
    *_CANVAS_SETTINGS,
    prevent_initial_call=True,
)
def reopen_saved(reopen_clicks, choice, preset, current, colour, width, tool):
    """A saved image again, from the history list."""
    if not ctx.triggered_id or not any(reopen_clicks or []):
        return (no_update,) * 3
    workspace = current_workspace()
    try:
        opened = _reopen(workspace, ctx.triggered_id["file"], current, choice, preset)
        return _opened_view(workspace, opened, preset, choice, colour, width, tool)
    except _OPEN_ERRORS as error:
        return _not_opened(error)


def _reopen(workspace, file_name: str, current, choice, preset) -> dict:
    collection = (current or {}).get("collection") or (choice or "demo/val").partition("/")[0]
    entry = next(
        (item for item in saved_images(workspace, collection) if item["file_name"] == file_name), None
    )
    if entry is None or not entry.get("source"):
        raise ValueError(f"{file_name} is not among the saved images of {collection}")
    return _open(workspace, read_rgb(entry["source"]), entry["source"], collection, file_name, preset, choice)


# --- model pre-fill, preview, save ---------------------------------------------------------


@callback(
    Output(Annotate.CURRENT, "data", allow_duplicate=True),
    Output("annotate-canvas-area", "children", allow_duplicate=True),
    Output(Annotate.MESSAGE, "children", allow_duplicate=True),
    Input(Annotate.PREFILL, "n_clicks"),
    State(Annotate.MODEL, "value"),
    State(Annotate.CURRENT, "data"),
    State(Annotate.LABELS, "value"),
    State(Annotate.DATASET, "value"),
    State(Annotate.CLASS, "value"),
    State(Annotate.BRUSH, "value"),
    State(Annotate.TOOL, "value"),
    prevent_initial_call=True,
)
def prefill(_clicks, model, current, preset, choice, colour, width, tool):
    """Run the chosen model on the open image; its mask becomes the editable starting layer."""
    workspace = current_workspace()
    if not current:
        return (
            no_update,
            no_update,
            dbc.Alert("Open an image first.", color="warning", className="py-1 px-2 mb-0"),
        )
    try:
        entry = get_entry(workspace, model or "")
        label_map = _label_map(workspace, preset, choice)
        if (
            entry.card["label_map"]["name"] != label_map.name
            or len(entry.card["label_map"]["classes"]) != label_map.num_classes
        ):
            raise ValueError(
                f"{entry.name} predicts the {entry.card['label_map']['name']} label map; choose that label map to pre-fill with it"
            )
        upload = load_upload(workspace, current["key"])
        if upload is None:
            raise ValueError("the open image expired; open it again")
        prediction = Predictor(entry).predict(upload.image)
    except (ModelError, InferenceInputError, LabelMapError, ValueError, OSError) as error:
        return no_update, no_update, dbc.Alert(str(error), color="danger", className="py-1 px-2 mb-0")
    store_result(workspace, current["key"], BASE_MODEL, "mask", prediction.mask)
    updated = {**current, "base": True}
    filename, height = _canvas_view(workspace, updated, preset, choice)
    message = f"Pre-filled with {entry.name} ({prediction.seconds * 1000:.0f} ms on {prediction.provider}); paint over what it got wrong."
    canvas = canvas_holder(f"{current['key'][:12]}-{entry.name}"[:60], filename, height, colour, width, tool)
    return updated, canvas, dbc.Alert(message, color="success", className="py-1 px-2 mb-0")


def _geometry(current: dict) -> CanvasGeometry:
    """The canvas shows the picture scaled to CANVAS_WIDTH (zoom is read from the drawing itself)."""
    return CanvasGeometry(
        current["width"],
        current["height"],
        CANVAS_WIDTH,
        max(1, round(CANVAS_WIDTH * current["height"] / current["width"])),
    )


def has_strokes(canvas_json: str | None) -> bool:
    """Whether the canvas holds anything drawn (its background image object does not count)."""
    return bool(canvas_json) and any(
        f'"type":"{kind}"' in canvas_json.replace(" ", "") for kind in ("path", "rect", "line", "circle")
    )


def result_mask(workspace, current: dict, canvas_json: str, preset: str, choice: str | None):
    """The class mask the canvas describes: strokes over the starting layer, at full resolution."""
    label_map = _label_map(workspace, preset, choice)
    base = load_result(workspace, current["key"], BASE_MODEL, "mask") if current.get("base") else None
    mask = strokes_to_mask(
        canvas_json or '{"objects": []}', _geometry(current), class_colours(label_map), base
    )
    return mask, label_map


@callback(
    Output(Annotate.PREVIEW, "children"),
    Output(Annotate.LEGEND, "children"),
    Input(Annotate.CANVAS, "json_data"),
    Input(Annotate.CURRENT, "data"),
    State(Annotate.LABELS, "value"),
    State(Annotate.DATASET, "value"),
)
def preview(canvas_json, current, preset, choice):
    """The class mask the strokes make, beside the canvas (refreshed by the canvas's Preview button or Space)."""
    workspace = current_workspace()
    if not current:
        return no_update, no_update
    picture = f"{UPLOAD_ROUTE}{current['key']}.jpg"
    try:
        if has_strokes(canvas_json):
            mask, label_map = result_mask(workspace, current, canvas_json, preset, choice)
        elif current.get("base"):
            mask, label_map = (
                load_result(workspace, current["key"], BASE_MODEL, "mask"),
                _label_map(workspace, preset, choice),
            )
        elif current.get("dataset_mask"):
            mask, label_map = (
                load_result(workspace, current["key"], DATASET_MASK, "mask"),
                _label_map(workspace, preset, choice),
            )
            if mask is not None:
                layer = data_url(mask_layer_png(mask, label_map), "image/png")
                caption = html.Small(
                    'The dataset\'s own annotations; "From annotations" starts from them.',
                    className="text-muted d-block",
                )
                return (
                    picture_with_layer(picture, layer, "annotate-layer", 0.7, current["file_name"]),
                    [caption, class_legend(pixel_shares(mask, label_map))],
                )
            return picture_with_layer(picture, None, "annotate-layer", 0.6, current["file_name"]), html.Small(
                "No classes yet."
            )
        else:
            return picture_with_layer(picture, None, "annotate-layer", 0.6, current["file_name"]), html.Small(
                "No classes yet."
            )
    except (AnnotationError, LabelMapError, ValueError) as error:
        return no_update, dbc.Alert(str(error), color="warning", className="py-1 px-2 mb-0")
    layer = data_url(mask_layer_png(mask, label_map), "image/png")
    return picture_with_layer(picture, layer, "annotate-layer", 0.7, current["file_name"]), class_legend(
        pixel_shares(mask, label_map)
    )


clientside_callback(
    """function (clicks) {
        if (!clicks) { return window.dash_clientside.no_update; }
        const button = Array.from(document.querySelectorAll(".annotate-canvas button")).find(function (item) {
            return item.textContent.trim() === "Preview"; });
        if (button) { button.click(); }  // the canvas publishes its strokes (json_data) first
        return new Promise(function (resolve) { window.setTimeout(function () { resolve(Date.now()); }, 300); });
    }""",
    Output(Annotate.SAVE_REQUEST, "data"),
    Input(Annotate.SAVE, "n_clicks"),
    prevent_initial_call=True,
)


@callback(
    Output(Annotate.MESSAGE, "children", allow_duplicate=True),
    Output(Annotate.CURRENT, "data", allow_duplicate=True),
    Output("annotate-history-refresh", "data"),
    Input(Annotate.SAVE_REQUEST, "data"),
    State(Annotate.CANVAS, "json_data"),
    State(Annotate.CURRENT, "data"),
    State(Annotate.LABELS, "value"),
    State(Annotate.DATASET, "value"),
    prevent_initial_call=True,
)
def save(_request, canvas_json, current, preset, choice):
    """Save the open image's mask as COCO annotations (refused when the file changed since it was opened)."""
    workspace = current_workspace()
    if not current:
        return (
            dbc.Alert("Open an image first.", color="warning", className="py-1 px-2 mb-0"),
            no_update,
            no_update,
        )
    try:
        if has_strokes(canvas_json):
            mask, label_map = result_mask(workspace, current, canvas_json, preset, choice)
        elif current.get("base"):
            mask, label_map = (
                load_result(workspace, current["key"], BASE_MODEL, "mask"),
                _label_map(workspace, preset, choice),
            )
        else:
            raise AnnotationError("nothing to save: the canvas is empty; paint at least one class region")
        source, file_name = current["source"], current["file_name"]
        if (
            source == "upload"
        ):  # kept in the workspace under a name from its key: two "image.png" uploads stay apart
            kept = persist_upload(
                workspace, current["key"], workspace.annotations_dir / f"{UPLOAD_COLLECTION}-images"
            )
            source, file_name = str(kept), kept.name
        image = {
            "file_name": file_name,
            "width": current["width"],
            "height": current["height"],
            "source": source,
        }
        version = save_image(
            workspace,
            current["collection"],
            image,
            mask,
            label_map,
            current.get("version", ""),
            current_settings().max_annotation_bytes,
        )
    except VersionConflict as error:
        return (
            dbc.Alert(
                f"Not saved: {current['collection']} {error}", color="danger", className="py-1 px-2 mb-0"
            ),
            no_update,
            no_update,
        )
    except (AnnotationError, LabelMapError, ValueError, OSError) as error:
        return (
            dbc.Alert(f"Not saved: {error}", color="danger", className="py-1 px-2 mb-0"),
            no_update,
            no_update,
        )
    message = f"Saved {file_name} into annotations/{current['collection']}.json."
    saved = {**current, "version": version, "file_name": file_name, "source": source}
    return dbc.Alert(message, color="success", className="py-1 px-2 mb-0"), saved, version


@callback(
    Output(Annotate.HISTORY, "children"),
    Input("annotate-history-refresh", "data"),
    Input(Annotate.CURRENT, "data"),
    State(Annotate.DATASET, "value"),
)
def history(_refresh, current, choice):
    collection = (current or {}).get("collection") or (choice or "demo/val").partition("/")[0]
    try:
        entries = saved_images(current_workspace(), collection)
    except (AnnotationError, ValueError, OSError) as error:
        return dbc.Alert(str(error), color="warning", className="py-1 px-2 mb-0")
    if not entries:
        return empty_state(
            f"Nothing saved in {collection} yet.",
            "Saved images appear here; reopen one to keep correcting it.",
            icon="clock-history",
        )
    rows = [
        html.Div(
            [
                html.Span(entry["file_name"], className="me-2 saved-name"),
                html.Small(", ".join(entry.get("classes", [])[:4]), className="text-muted me-2"),
                dbc.Button(
                    "Reopen",
                    id={"type": Annotate.REOPEN, "file": entry["file_name"]},
                    size="sm",
                    color="link",
                    className="p-0 ms-auto",
                ),
            ],
            className="d-flex align-items-center saved-row",
        )
        for entry in entries[:50]
    ]
    return html.Div(rows, className="saved-list")


@callback(
    Output("annotate-register-message", "children"),
    Input("annotate-register", "n_clicks"),
    State("annotate-register-name", "value"),
    State("annotate-register-mode", "value"),
    State(Annotate.CURRENT, "data"),
    State(Annotate.DATASET, "value"),
    prevent_initial_call=True,
)
def register(_clicks, name, mode, current, choice):
    """Register the saved corrections as a dataset, so the next preparation and training use them."""
    from cocoseg.pipeline.annotation.export import register_corrections

    collection = (current or {}).get("collection") or (choice or "demo/val").partition("/")[0]
    if not name:
        return dbc.Alert("Give the new dataset a name.", color="warning", className="py-1 px-2 mb-0")
    try:
        registered = register_corrections(
            current_workspace(),
            collection,
            name.strip(),
            mode or "overlay",
            current_settings().max_annotation_bytes,
        )
    except (AnnotationError, RegistryError, ValueError, OSError) as error:
        return dbc.Alert(f"Not registered: {error}", color="danger", className="py-1 px-2 mb-0")
    left_out = (
        f" ({len(registered.left_out)} corrected images belong to no split and were left out)"
        if registered.left_out
        else ""
    )
    return dbc.Alert(
        [
            f"Registered {registered.name} ({', '.join(registered.splits)}; {registered.images} corrected images){left_out}. ",
            dcc.Link("Prepare it", href="/prepare"),
            " and train on it.",
        ],
        color="success",
        className="py-1 px-2 mb-0",
    )


@callback(
    Output(Annotate.CURRENT, "data", allow_duplicate=True),
    Output("annotate-canvas-area", "children", allow_duplicate=True),
    Output(Annotate.MESSAGE, "children", allow_duplicate=True),
    Input("annotate-from-dataset", "n_clicks"),
    State(Annotate.CURRENT, "data"),
    State(Annotate.LABELS, "value"),
    State(Annotate.DATASET, "value"),
    State(Annotate.CLASS, "value"),
    State(Annotate.BRUSH, "value"),
    State(Annotate.TOOL, "value"),
    prevent_initial_call=True,
)
def start_from_dataset(_clicks, current, preset, choice, colour, width, tool):
    """The image's own annotations become the editable starting layer (to correct the dataset itself)."""
    workspace = current_workspace()
    mask = (
        load_result(workspace, current["key"], DATASET_MASK, "mask")
        if current and current.get("dataset_mask")
        else None
    )
    if mask is None:
        return (
            no_update,
            no_update,
            dbc.Alert(
                "Open a dataset image first (uploads have no annotations).",
                color="warning",
                className="py-1 px-2 mb-0",
            ),
        )
    store_result(workspace, current["key"], BASE_MODEL, "mask", mask)
    updated = {**current, "base": True}
    filename, height = _canvas_view(workspace, updated, preset, choice)
    canvas = canvas_holder(f"{current['key'][:12]}-dataset", filename, height, colour, width, tool)
    return (
        updated,
        canvas,
        dbc.Alert(
            "Started from the dataset's annotations; paint the corrections.",
            color="success",
            className="py-1 px-2 mb-0",
        ),
    )
