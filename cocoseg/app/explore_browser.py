"""Explore's image browser: pages of thumbnails of the images holding the chosen classes (from the
cached statistics' per-image class index), choosing one, and its detail with mask and outlines.
Registered by ``main.CALLBACK_MODULES``; the Explore page (``pages/explore.py``) owns the layout
(``components.explore_panels``) and the split's statistics.
"""

from __future__ import annotations

from dash import ALL, Input, Output, State, callback, ctx, no_update

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.choosers import parse_split
from cocoseg.app.components.explore_panels import detail_view, no_image_chosen, page_label, thumbnail_tiles
from cocoseg.app.context import current_settings, current_workspace
from cocoseg.app.explore_view import STATS_ERRORS, cached_stats
from cocoseg.app.ids import Explore
from cocoseg.pipeline.data import (
    CocoFileError,
    ImageError,
    RegistryError,
    get_dataset,
    image_page,
    split_image_detail,
    thumbnails_of,
)


@callback(
    Output(Explore.PAGE, "data", allow_duplicate=True),
    Input(Explore.PREVIOUS, "n_clicks"),
    Input(Explore.NEXT, "n_clicks"),
    Input(Explore.FILTER, "value"),
    Input(Explore.MATCH, "value"),
    State(Explore.PAGE, "data"),
    prevent_initial_call=True,
)
def turn_page(_previous, _next, _filter, _match, page):
    if ctx.triggered_id == Explore.PREVIOUS:
        return max(0, (page or 0) - 1)
    if ctx.triggered_id == Explore.NEXT:
        return (page or 0) + 1
    return 0


@callback(
    Output(Explore.THUMBNAILS, "children", allow_duplicate=True),
    Output(Explore.PAGE_LABEL, "children"),
    Input(Explore.PAGE, "data"),
    Input(Explore.FILTER, "value"),
    Input(Explore.MATCH, "value"),
    Input(Explore.TABS, "active_tab"),
    State(Explore.DATASET, "value"),
    State(Explore.LABELS, "value"),
    prevent_initial_call=True,
)
def show_thumbnails(page, classes, match, tab, choice, labels):
    """One page of thumbnails of the images that contain the chosen classes (built when the tab is shown)."""
    if tab != "images":
        return no_update, no_update
    workspace, (dataset, split) = current_workspace(), parse_split(choice)
    try:
        stats = cached_stats(choice, labels)
        folder = get_dataset(workspace, dataset).split(split).images
    except (RegistryError, *STATS_ERRORS):
        return [], ""
    if stats is None:
        return [], f"the statistics of {choice} are being computed"
    shown = image_page(stats["image_index"], classes or [], "all" in (match or []), page)
    thumbnails = thumbnails_of(workspace, folder, [name for _image_id, name in shown.images])
    return thumbnail_tiles(shown.images, thumbnails), page_label(shown)


@callback(
    Output(Explore.SELECTED, "data", allow_duplicate=True),
    Input({"type": Explore.THUMBNAIL, "index": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def select_image(clicks):
    if not ctx.triggered_id or not any(clicks or []):
        return no_update
    return ctx.triggered_id["index"]


@callback(
    Output(Explore.DETAIL, "children", allow_duplicate=True),
    Output(Explore.LEGEND, "children"),
    Input(Explore.SELECTED, "data"),
    State(Explore.DATASET, "value"),
    State(Explore.LABELS, "value"),
    State(Explore.OPACITY, "value"),
    prevent_initial_call=True,
)
def show_detail(image_id, choice, labels, opacity):
    """The chosen image with its semantic mask and instance outlines, and the classes in it."""
    if image_id is None:
        return no_image_chosen(), None
    try:
        detail = split_image_detail(
            current_workspace(),
            *parse_split(choice),
            int(image_id),
            current_settings().max_annotation_bytes,
            labels,
        )
    except (KeyError, ImageError, CocoFileError, ValueError) as error:
        return alert(f"cannot show this image: {error}", "warning"), None
    return detail_view(detail, opacity)
