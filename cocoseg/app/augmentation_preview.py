"""Prepare's augmentation preview: eight augmentations of one training image, drawn by the function
training uses (TensorFlow, so a short job in its own process), on request only: Re-roll draws a
new seed, and once a preview is shown a changed setting redraws it with the same seed.
Registered by ``main.CALLBACK_MODULES``; the Prepare page owns the layout
(``components.prepare_panels``).
"""

from __future__ import annotations

import dataclasses
import secrets

from dash import Input, Output, State, callback, ctx, html, no_update

from cocoseg.app.components.prepare_panels import PREVIEW_COUNT
from cocoseg.app.components.prepare_results import preview_pictures
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import Prepare
from cocoseg.app.jobs import run_short_job
from cocoseg.pipeline import prepare
from cocoseg.pipeline.data import cached_split
from cocoseg.pipeline.training import augment_config

PREVIEW_SETTINGS = {  # the preview request's keys: inputs redraw a shown preview, the others are read
    "image": Input(Prepare.PREVIEW_IMAGE, "value"),
    "labels": Input(Prepare.LABELS, "value"),
    "size": Input(Prepare.SIZE, "value"),
    "resize": Input(Prepare.RESIZE, "value"),
    "flip": Input(Prepare.FLIP, "value"),
    "scale": Input(Prepare.SCALE, "value"),
    "rotation": Input(Prepare.ROTATION, "value"),
    "brightness": Input(Prepare.BRIGHTNESS, "value"),
    "contrast": Input(Prepare.CONTRAST, "value"),
    "saturation": Input(Prepare.SATURATION, "value"),
    "dataset": State(Prepare.DATASET, "value"),
    "splits": State(Prepare.SPLITS, "value"),
    "classes": State(Prepare.CLASSES, "value"),
}
PREVIEW_CHOICES = 100  # images offered for the preview (a 118k-option menu helps nobody)
PREVIEW_HEIGHT = 144  # thumbnails are shrunk to this height, so the response stays small


@callback(
    Output(Prepare.PREVIEW_IMAGE, "options"),
    Output(Prepare.PREVIEW_IMAGE, "value"),
    Input(Prepare.DATASET, "value"),
    Input(Prepare.SPLITS, "value"),
    State(Prepare.PREVIEW_IMAGE, "value"),
)
def offer_preview_images(dataset, splits, chosen):
    """The first images of the training split (positions among its valid images, as the preview counts)."""
    split = prepare.training_split(splits)
    if not dataset or not split:
        return [], None
    try:
        loaded = cached_split(current_workspace(), dataset, split, current_settings().max_annotation_bytes)
    except (ValueError, OSError):
        return [], None
    images = loaded.images[:PREVIEW_CHOICES]
    options = [
        {"label": f"{split}/{image['file_name']}", "value": index} for index, image in enumerate(images)
    ]
    return options, chosen if isinstance(chosen, int) and chosen < len(options) else (0 if options else None)


@callback(
    Output(Prepare.PREVIEW_REQUEST, "data"),
    Output(Prepare.REROLL, "children"),
    Input(Prepare.REROLL, "n_clicks"),
    list(PREVIEW_SETTINGS.values()),
    State(Prepare.PREVIEW_REQUEST, "data"),
    prevent_initial_call=True,
)
def ask_preview(_clicks, *values):
    """The preview request: Re-roll draws a new seed; once a preview is shown, a changed setting redraws it.

    A redraw keeps the seed. Nothing is asked before the first press, so opening the page
    starts no TensorFlow job.
    """
    *settings, previous = values
    if ctx.triggered_id != Prepare.REROLL and not previous:
        return no_update, no_update
    seed = secrets.randbelow(2**31) if ctx.triggered_id == Prepare.REROLL else previous["seed"]
    request = {"seed": seed, **dict(zip(PREVIEW_SETTINGS, settings))}
    return request, [html.I(className="bi bi-dice-5 me-1"), "Re-roll"]


@callback(
    Output(Prepare.PREVIEW, "children"),
    Output(Prepare.PREVIEW_NOTE, "children"),
    Input(Prepare.PREVIEW_REQUEST, "data"),
    background=True,
    prevent_initial_call=True,
    running=[
        (Output(Prepare.PREVIEW_BUSY, "className"), "preview-busy", "preview-busy d-none"),
        (Output(Prepare.REROLL, "disabled"), True, False),
    ],
)
def show_preview(request):
    """Eight augmentations of one image, by the function training uses (TensorFlow, in this job's process)."""
    if not request:
        return no_update, no_update
    split = prepare.training_split(request["splits"])
    form = [request[name] for name in ("dataset", "splits", "labels", "classes", "size", "resize")]
    try:
        config = prepare.config_from_form(*form, "none", None)
        job = {
            "prepare": prepare.config_to_dict(config),
            "split": split,
            "index": request["image"] or 0,
            "seed": request["seed"],
            "augment": dataclasses.asdict(augment_config(request)),
            "count": PREVIEW_COUNT,
            "height": PREVIEW_HEIGHT,
        }
        outcome = run_short_job("preview", job)
    except (prepare.PrepareError, ValueError, OSError) as error:
        return [], html.Span(f"No preview: {error}", className="text-danger")
    if not outcome.ok:
        return [], html.Span(f"No preview: {outcome.message or outcome.status}", className="text-danger")
    return preview_pictures(outcome.result["pictures"]), (
        f"{split}/{outcome.result['file_name']} at {config.size} px, seed {request['seed']}: each picture "
        "shows what the model sees, then its mask (black: outside the image, ignored by the loss)."
    )
