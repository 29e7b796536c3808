"""Prepare's augmentation preview: eight augmentations of one training image, drawn by the function
training uses (TensorFlow, so a short job in its own process), on request only: Re-roll draws a
new seed, and once a preview is shown a changed setting redraws it with the same seed.
"Use for training" hands the strengths to the Train page (``Frame.AUGMENTATION``, kept in the
browser); opening the page puts the sliders where training's strengths are.
Registered by ``main.CALLBACK_MODULES``; the Prepare page owns the layout
(``components.prepare_panels``).
"""

from __future__ import annotations

import dataclasses
import secrets

from dash import Input, Output, State, callback, ctx, html, no_update
from dash.exceptions import PreventUpdate

from cocoseg.app.components.prepare_panels import PREVIEW_COUNT, slider_values
from cocoseg.app.components.prepare_results import preview_pictures
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.ids import Frame, Prepare
from cocoseg.app.jobs import run_short_job
from cocoseg.pipeline import prepare
from cocoseg.pipeline.core import ConfigError
from cocoseg.pipeline.data import cached_split
from cocoseg.pipeline.training import AugmentConfig, augment_config, augment_strengths, describe_strengths

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


STRENGTHS = {  # the sliders, by the preview request's keys (``training.augment_config`` reads them)
    "flip": Prepare.FLIP,
    "scale": Prepare.SCALE,
    "rotation": Prepare.ROTATION,
    "brightness": Prepare.BRIGHTNESS,
    "contrast": Prepare.CONTRAST,
    "saturation": Prepare.SATURATION,
}


@callback(
    [Output(slider, "value") for slider in STRENGTHS.values()],
    Output(Prepare.AUGMENT_MESSAGE, "children"),
    Input(Prepare.AUGMENT_MESSAGE, "id"),  # never changes: called once, when the page appears
    State(Frame.AUGMENTATION, "data"),
)
def show_training_strengths(_appeared, stored):
    """On opening the page, the sliders start where training's strengths are (chosen here before, or the
    defaults). Later the store changes only by this page's buttons, which set the sliders themselves."""
    try:
        strengths = augment_strengths(stored or {})
    except ConfigError as error:
        note = html.Span(
            f"The stored strengths were refused ({error.message}); training would refuse "
            "them too: set them here and press Use for training.",
            className="text-danger",
        )
        return slider_values(AugmentConfig()) + [note]
    origin = "chosen here before" if stored else "the defaults"
    return slider_values(strengths) + [f"Training applies {describe_strengths(strengths)} ({origin})."]


@callback(
    Output(Frame.AUGMENTATION, "data"),
    [Output(slider, "value", allow_duplicate=True) for slider in STRENGTHS.values()],
    Output(Prepare.AUGMENT_MESSAGE, "children", allow_duplicate=True),
    Input(Prepare.AUGMENT_USE, "n_clicks"),
    Input(Prepare.AUGMENT_RESET, "n_clicks"),
    [State(slider, "value") for slider in STRENGTHS.values()],
    prevent_initial_call=True,
)
def choose_training_strengths(_use, _reset, *values):
    """Use for training: the sliders' strengths become training's; Defaults: back to the defaults."""
    if not (_use or _reset):  # the page's buttons appearing (Dash calls it then, with no click)
        raise PreventUpdate
    unchanged = [no_update] * len(STRENGTHS)
    if ctx.triggered_id == Prepare.AUGMENT_RESET:
        defaults = AugmentConfig()
        done = f"Training applies the defaults again: {describe_strengths(defaults)}."
        return {}, *slider_values(defaults), html.Span(done, className="text-success")
    try:
        strengths = augment_config(dict(zip(STRENGTHS, values)))
    except ConfigError as error:
        return no_update, *unchanged, html.Span(f"Not used: {error}", className="text-danger")
    done = f"The Train page's next runs apply {describe_strengths(strengths)}."
    return dataclasses.asdict(strengths), *unchanged, html.Span(done, className="text-success")
