"""The Annotate page's layout: controls, the canvas holder, the palette, the saved list, the register form.

Component ids are the page's (``cocoseg.app.ids.Annotate`` and a few literals that the
browser tests and ``assets/cocoseg.js`` rely on); the page wires them to callbacks.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash_canvas import DashCanvas

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.choosers import split_choices
from cocoseg.app.components.jobs import action_with_progress
from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.components.segmentation import class_legend, data_url, picture_with_layer
from cocoseg.app.ids import Annotate, Frame
from cocoseg.pipeline.annotation import ERASER_COLOUR, LinkRequest
from cocoseg.pipeline.data import PRESETS, LabelMap, mask_layer_png, pixel_shares

# The canvas shows the picture at most this wide (the middle column of a 1400 px wide window) and this
# tall (with its buttons, inside a 768 px high window): a portrait picture at the full width stood
# 720 px tall and pushed its buttons out of the panel. Strokes are in canvas pixels, so every
# callback sizes the canvas of an image with ``canvas_width``.
CANVAS_WIDTH, CANVAS_HEIGHT = 540, 450
EMPTY_CANVAS = (CANVAS_WIDTH, 360)  # before an image is open
LABEL_PRESETS = [preset for preset in PRESETS if preset != "custom"]
TOOLS = (("pencil", "Pencil (P)"), ("line", "Line (L)"), ("rectangle", "Rectangle (R)"), ("pan", "Pan (H)"))
# Click-to-mask tools (cocoseg.pipeline.annotation.tools): assets/cocoseg.js sends their marks.
CLICK_TOOLS = (
    ("box", "Box → mask (B)"),
    ("clicks", "Clicks (C)"),
    ("snap", "Superpixel snap (S)"),
    ("wand", "Magic wand (W)"),
    ("regions", "Model regions (M)"),
    ("grow", "Grow from uncertainty (G)"),
)
HIDDEN = {"display": "none"}
ACCEPTED = ".jpg,.jpeg,.png,.webp,.bmp,.tif,.tiff"
KEYS_HINT = (
    "1-9 class · E eraser · [ ] brush · P L R H draw · B C S W M G click-to-mask (right click or Shift: "
    "remove; Alt: relabel a model region) · Enter new object · Ctrl+Z undo · Space preview · Ctrl+S save"
)


def dataset_options(datasets) -> list[dict]:
    """One ``dataset/split`` option per split of every registered dataset."""
    return [{"label": choice, "value": choice} for choice in split_choices(datasets)]


def model_options(models) -> list[dict]:
    return [
        {"label": f"{entry.name} ({entry.card['label_map']['name']})", "value": entry.name}
        for entry in models
    ]


def palette_options(label_map: LabelMap) -> list[dict]:
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


def _image_choice(datasets: list[dict], max_upload_bytes: int, link: LinkRequest | None) -> list:
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
                    value=link.choice if link else datasets[0]["value"] if datasets else None,
                    clearable=False,
                ),
                dcc.Dropdown(  # a deep link's image is shown at once; the page fills the other choices
                    id=Annotate.IMAGE,
                    options=[link.image] if link else [],
                    value=link.image if link else None,
                    placeholder="image (type to search)",
                    className="mt-1",
                ),
            ],
            id=Annotate.DATASET_CONTROLS,
        ),
        dcc.Upload(
            id=Annotate.UPLOAD,
            accept=ACCEPTED,
            max_size=max_upload_bytes,
            className="upload-zone mt-1",
            children=html.Div([html.I(className="bi bi-cloud-arrow-up me-1"), "Drop an image or click"]),
            style={"display": "none"},
        ),
    ]


def _painting(preset: str) -> list:
    return [
        dbc.Label("Label map", className="small mt-2 mb-0"),
        dcc.Dropdown(id=Annotate.LABELS, options=LABEL_PRESETS, value=preset, clearable=False),
        dbc.Label("Class to paint", className="small mt-2 mb-0"),
        dbc.RadioItems(id=Annotate.CLASS, options=[], value=None, className="annotate-palette"),
        dbc.Label("Brush", className="small mt-2 mb-0"),
        dcc.Slider(
            id=Annotate.BRUSH, min=1, max=60, step=1, value=12, marks=None, tooltip={"placement": "bottom"}
        ),
        dbc.RadioItems(
            id=Annotate.TOOL,
            options=[{"label": label, "value": value} for value, label in TOOLS + CLICK_TOOLS],
            value="pencil",
            inline=True,
            className="small annotate-tools",
        ),
    ]


def tool_bar() -> html.Div:
    """Under the canvas: Undo and New object for the click-to-mask tools, and what the last call did."""
    return html.Div(
        [
            dbc.Button(
                [html.I(className="bi bi-arrow-counterclockwise me-1"), "Undo tool"],
                id=Annotate.TOOL_UNDO,
                size="sm",
                color="secondary",
                outline=True,
                title="go back before the last click-to-mask call (Ctrl+Z once the canvas has no stroke)",
            ),
            dbc.Button(
                "New object (Enter)",
                id=Annotate.TOOL_NEW_OBJECT,
                size="sm",
                color="secondary",
                outline=True,
                title="the next box or click starts a new object; the current one stays as drawn",
            ),
            html.Span(id=Annotate.TOOL_STATUS, className="small text-muted ms-1"),
        ],
        className="d-flex gap-1 align-items-center mt-1",
    )


def canvas_tool(tool: str | None) -> str:
    """The canvas's own tool: a click-to-mask tool draws nothing on the canvas itself."""
    return tool if tool in dict(TOOLS) else "pencil"


def tool_status(tool: str, outcome) -> str | list:
    """What a click-to-mask call did (``annotation.tools.ToolOutcome``) and how long it took.

    A note the tool left (its mask is a guess) follows in the warning colour: the line itself is
    small muted text the eye learns to skip.
    """
    tool = dict(CLICK_TOOLS).get(tool, tool).split(" (")[0]
    status = (
        f"{tool}: {outcome.seconds * 1000:.0f} ms ({outcome.total_seconds * 1000:.0f} ms with the layers), "
        f"{outcome.changed_pixels:,} pixels changed. Ctrl+Z undoes it."
    )
    if not outcome.note:
        return status
    return [status, " ", html.Span(outcome.note, className="text-warning-emphasis")]


def canvas_width(width: int, height: int) -> int:
    """How wide the canvas shows a picture of this size: ``CANVAS_WIDTH``, less for a picture taller
    than that would let ``CANVAS_HEIGHT`` hold."""
    return max(1, min(CANVAS_WIDTH, round(CANVAS_HEIGHT * width / height)))


def uncertainty_overlay(tool: str | None, current: dict | None, route: str) -> tuple:
    """(src, style) of the uncertainty picture over the canvas: shown with Grow on a pre-filled image."""
    shown = (current or {}).get("uncertainty")
    if tool != "grow" or not shown:
        return "", HIDDEN
    return f"{route}{shown}.jpg", {"width": f"{canvas_width(current['width'], current['height'])}px"}


def object_marks(state: dict | None, current: dict | None) -> list:
    """The current object's box and clicks over the canvas (tool state and image as the Stores hold them)."""
    if not state or not current or state.get("key") != current.get("key") or not state.get("object"):
        return []
    if state.get("layer") != current.get("layer"):
        return []
    scale = canvas_width(current["width"], current["height"]) / current["width"]
    drawn = state["object"]
    marks = []
    if drawn.get("box"):
        x0, y0, x1, y1 = (value * scale for value in drawn["box"])
        style = {
            "left": f"{x0:.0f}px",
            "top": f"{y0:.0f}px",
            "width": f"{x1 - x0:.0f}px",
            "height": f"{y1 - y0:.0f}px",
        }
        marks.append(html.Div(className="tool-box", style=style))
    for x, y, positive in drawn.get("clicks", []):
        kind = "positive" if positive else "negative"
        style = {"left": f"{x * scale:.0f}px", "top": f"{y * scale:.0f}px"}
        marks.append(html.Div(className=f"tool-click tool-click-{kind}", style=style))
    return marks


def _starting_layer(models: list[dict], model: str) -> list:
    return [
        dbc.Label("Pre-fill from a model", className="small mt-2 mb-0"),
        dcc.Dropdown(
            id=Annotate.MODEL,
            options=models,
            value=model or (models[0]["value"] if models else None),
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
                    id=Annotate.FROM_DATASET,
                    size="sm",
                    color="secondary",
                    outline=True,
                    title="start from the dataset's own annotations of this image",
                ),
            ],
            className="d-flex flex-wrap gap-1 mt-1",
        ),
    ]


def controls(
    datasets: list[dict],
    models: list[dict],
    max_upload_bytes: int,
    preset: str,
    link: LinkRequest | None,
    message,
) -> list:
    """The left column: which image, which label map and class, the brush, the starting layer, Save.

    A deep link (``link``) sets the dropdowns; ``message`` starts the message area (a refused link).
    """
    return [
        *_image_choice(datasets, max_upload_bytes, link),
        *_painting(link.preset if link else preset),
        *_starting_layer(models, link.model if link else ""),
        html.Hr(className="my-2"),
        html.Div(
            [
                dbc.Button(
                    [html.I(className="bi bi-save me-1"), "Save (Ctrl+S)"],
                    id=Annotate.SAVE,
                    color="primary",
                    size="sm",
                ),
                dbc.Button(
                    [html.I(className="bi bi-skip-forward me-1"), "Next in queue (N)"],
                    id=Annotate.NEXT,
                    color="secondary",
                    outline=True,
                    size="sm",
                    title="the next image of the Review queue that is not corrected yet",
                ),
            ],
            className="d-flex flex-wrap gap-2",
        ),
        html.Div(message, id=Annotate.MESSAGE, className="small mt-2"),
        html.Div(str(max_upload_bytes), id=Frame.UPLOAD_LIMIT, hidden=True),
    ]


def register_panel() -> html.Div:
    """Feed the corrections back into training: a dataset that Prepare and Train can use."""
    return html.Div(
        [
            dbc.Label("Use for training", className="small mb-0"),
            dbc.Input(id=Annotate.REGISTER_NAME, placeholder="new dataset name, e.g. demo-fixed", size="sm"),
            dbc.RadioItems(
                id=Annotate.REGISTER_MODE,
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
                id=Annotate.REGISTER,
                size="sm",
                color="secondary",
                className="mt-1",
            ),
            html.Div(id=Annotate.REGISTER_MESSAGE, className="small mt-1"),
        ]
    )


def finetune_panel() -> html.Div:
    """The correction loop in one click: overlay, prepare, fine-tune the pre-fill model, export, evaluate."""
    intro = [
        dbc.Label("Fine-tune on corrections", className="small mb-0"),
        html.Div(
            "starts from the pre-fill model with every correction saved for this dataset; "
            "the child is exported and evaluated beside its parent",
            className="small text-muted",
        ),
    ]
    button = dbc.Button(
        [html.I(className="bi bi-arrow-repeat me-1"), "Fine-tune on corrections"],
        id=Annotate.FINETUNE,
        size="sm",
        color="secondary",
        className="mt-1",
    )
    return html.Div(
        action_with_progress(
            intro, button, Annotate.FINETUNE_QUEUED, Annotate.FINETUNE_MESSAGE, Annotate.FINETUNE_RESULT
        )
    )


def round_plan_text(planned) -> str:
    """What a queued round will do (a ``training.CorrectionRound``), shown beside the button."""
    reused = ", unchanged since the last round" if planned.reuse else ""
    return (
        f"Round {planned.number}: {planned.corrections} corrected images of {planned.dataset} "
        f"({planned.overlay}{reused}); fine-tuning {planned.parent} for {planned.train['epochs']} epochs."
    )


def round_note(outcome) -> html.Div:
    """How a round ended: the child beside its parent, with links to look closer."""
    result = outcome.result or {}
    if outcome.status != "finished" or "child" not in result:
        return alert(f"The round ended {outcome.status}: {outcome.message}", "warning")
    parent, child = result["parent"], result["child"]
    return alert(
        [
            f"Round {result['round']}: {child} reaches {result['child_miou'] * 100:.1f} % val mIoU on "
            f"{result['evaluated_on']} (parent {parent}: {result['parent_miou'] * 100:.1f} %). ",
            dcc.Link("Compare parent and child", href=f"/compare?members={parent},{child}"),
            " · ",
            dcc.Link("Evaluate", href="/evaluate"),
        ],
        "success",
    )


def canvas_holder(
    holder: str, filename: str, size: tuple[int, int], colour: str, brush: int, tool: str, hint=None
) -> html.Div:
    """A fresh canvas of ``size`` (width, height) for a new background: dash-canvas reads its picture and
    size only when it mounts, and the holder's new id makes React mount a new one (strokes start empty).
    ``hint`` goes above the canvas, inside the holder (``assets/cocoseg.js`` finds the holder as the
    canvas area's first child)."""
    canvas = DashCanvas(
        id=Annotate.CANVAS,
        width=size[0],
        height=size[1],
        filename=filename,
        lineWidth=brush or 12,
        lineColor=colour or ERASER_COLOUR,
        tool=canvas_tool(tool),
        goButtonTitle="Preview",
        hide_buttons=["select"],
    )
    return html.Div(canvas if hint is None else [hint, canvas], id=f"annotate-holder-{holder}")


def page_layout(
    datasets, models, max_upload_bytes: int, preset: str, link: LinkRequest | None = None, refusal: str = ""
) -> html.Div:
    """The page: header, the Stores (the open image, a deep link, a save request, a history refresh), three
    columns.

    ``datasets``: registered dataset entries; ``models``: published model entries; ``preset``: the
    label map a plain visit starts with (``annotation.starting_preset``); ``link``: a checked deep
    link, opened on load (its own preset); ``refusal``: why the deep link given was not.
    """
    message = alert(f"This link cannot be opened: {refusal}.", "danger") if refusal else None
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
    return html.Div(
        [
            header,
            dcc.Store(id=Annotate.CURRENT),
            dcc.Store(id=Annotate.LINK, data=link.to_dict() if link else None),
            dcc.Store(id=Annotate.SAVE_REQUEST),
            dcc.Store(id=Annotate.HISTORY_REFRESH),
            dcc.Store(id=Annotate.TOOL_REQUEST),
            dcc.Store(id=Annotate.TOOL_STATE),
            workbench(
                controls(
                    dataset_options(datasets), model_options(models), max_upload_bytes, preset, link, message
                )
            ),
        ],
        className="page page-annotate",
    )


def workbench(control_children: list) -> html.Div:
    """The three columns: controls, the canvas, the result and the saved list."""
    hint = html.Div(  # an empty canvas alone looked like a broken picture
        [
            html.I(className="bi bi-arrow-left-square me-1"),
            "No image open: pick a dataset image or an upload on the left.",
        ],
        className="text-muted mb-2 canvas-hint",
    )
    empty_canvas = canvas_holder("empty", "", EMPTY_CANVAS, "#800000", 12, "pencil", hint)
    canvas = html.Div(
        [
            html.Div(empty_canvas, id=Annotate.CANVAS_AREA),
            html.Img(id=Annotate.UNCERTAINTY, className="uncertainty-overlay", style=HIDDEN, alt=""),
            html.Div(id=Annotate.TOOL_MARKS, className="tool-marks"),
        ],
        className="annotate-canvas",
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
    history = [
        html.Div(id=Annotate.HISTORY),
        html.Hr(className="my-2"),
        finetune_panel(),
        html.Hr(className="my-2"),
        register_panel(),
    ]
    return html.Div(
        [
            html.Div(
                panel("Image and labels", control_children, icon="sliders"), className="annotate-controls"
            ),
            html.Div(
                panel(
                    "Canvas",
                    [canvas, tool_bar(), html.Div(KEYS_HINT, className="small text-muted mt-1")],
                    icon="brush",
                ),
                className="annotate-main",
            ),
            html.Div(
                [panel("Result", result, icon="layers"), panel("Saved", history, icon="clock-history")],
                className="annotate-side",
            ),
        ],
        className="annotate-grid",
    )


def saved_list(entries: list[dict], collection: str) -> html.Div:
    """The saved images of a collection, newest first, each with a Reopen button."""
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


def preview_view(picture: str, file_name: str, mask, label_map: LabelMap | None, from_dataset: bool) -> tuple:
    """The picture with the mask laid over it, and the legend; without a mask, the picture alone."""
    if mask is None:
        return picture_with_layer(picture, None, "annotate-layer", 0.6, file_name), html.Small(
            "No classes yet."
        )
    layer = data_url(mask_layer_png(mask, label_map), "image/png")
    legend = class_legend(pixel_shares(mask, label_map))
    if from_dataset:
        caption = html.Small(
            'The dataset\'s own annotations; "From annotations" starts from them.',
            className="text-muted d-block",
        )
        legend = [caption, legend]
    return picture_with_layer(picture, layer, "annotate-layer", 0.7, file_name), legend


def registered_note(registered) -> list:
    """What registering the corrections made (``export.Registration``), and where to go next."""
    left_out = (
        f" ({len(registered.left_out)} corrected images belong to no split and were left out)"
        if registered.left_out
        else ""
    )
    summary = f"{registered.name} ({', '.join(registered.splits)}; {registered.images} corrected images)"
    return [f"Registered {summary}{left_out}. ", dcc.Link("Prepare it", href="/prepare"), " and train on it."]


# Save: press the canvas's own Preview button first, so the canvas publishes its strokes
# (json_data), then ask the server to save a moment later.
PREVIEW_THEN_SAVE = """function (clicks) {
    if (!clicks) { return window.dash_clientside.no_update; }
    const button = Array.from(document.querySelectorAll(".annotate-canvas button")).find(function (item) {
        return item.textContent.trim() === "Preview"; });
    if (button) { button.click(); }
    return new Promise(function (resolve) { window.setTimeout(function () { resolve(Date.now()); }, 300); });
}"""
