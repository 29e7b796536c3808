"""The Explore page's layout: header and selectors, the four tabs, summary cards, thumbnails, an
image's detail.

Pure builders (no callbacks): the numbers come from ``cocoseg.pipeline.data.stats`` and the
images from ``cocoseg.pipeline.data.thumbnails``; the charts are ``explore_figures``.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from cocoseg.app.components.explore_figures import (
    cooccurrence_heatmap,
    object_sizes,
    objects_histogram,
    size_scatter,
)
from cocoseg.app.components.panels import panel
from cocoseg.app.components.segmentation import class_legend, data_url
from cocoseg.app.ids import Explore
from cocoseg.pipeline.data import (
    ImageDetail,
    ImagePage,
    ValidationReport,
    encode_png,
    image_jpeg,
    mask_layer,
)

DEFAULT_OPACITY = 0.5
DEFAULT_METRIC, DEFAULT_ORDER = "instances", "value"


def view_title(choice: str | None, labels: str | None, state: str = "") -> html.Div:
    """The line above the charts naming the split (and label map) they belong to."""
    words = f"{choice or 'no split'}" + (f" · label map {labels}" if labels else "")
    return html.Div([html.B(words), html.Span(f" {state}" if state else "", className="text-muted")])


def waiting_figure(message: str, choice: str | None) -> go.Figure:
    """An empty chart that says why there is nothing yet (never the previous split's bars)."""
    from cocoseg.app.components.figures import _empty

    figure = _empty(message)
    figure.update_layout(meta={"split": choice, "ready": False})
    return figure


def stats_progress(choice: str, labels: str | None, state: str, progress: dict, eta: str) -> list:
    """The first-statistics job's bar, with Cancel."""
    done, total = progress.get("done", 0), progress.get("total", 0) or 0
    fraction = done / total if total and progress.get("stage") == "annotations" else 0.0
    stage = progress.get("stage")
    words = (
        f"{done / 1e6:,.0f} of {total / 1e6:,.0f} MB of annotations read" + eta
        if stage == "annotations"
        else "reading the annotation file"
        if stage == "reading"
        else "starting the statistics job"
    )
    return [
        html.Div(
            f"Computing the statistics of {choice}"
            + (f" for label map {labels}" if labels else "")
            + f" in a background job ({state}); this happens once, then they are cached.",
            className="small fw-bold",
        ),
        # not animated: the bar's stripes would keep the browser painting while the job wants the CPU
        dbc.Progress(
            value=fraction * 100, label=f"{fraction:.0%}" if fraction else "", className="job-progress"
        ),
        html.Div(
            [
                html.Span(words, className="small text-muted"),
                dbc.Button(
                    "Cancel", id=Explore.STATS_CANCEL, size="sm", color="outline-secondary", className="ms-2"
                ),
            ],
            className="d-flex align-items-center mt-1",
        ),
    ]


def known_cards(report: ValidationReport | None, dataset: str) -> dbc.Row | None:
    """What the cached validation report already says while the statistics are computed."""
    if report is None:
        return None
    totals = report.totals
    problems, note, _details = validation_summary(report, dataset)
    cards = [
        _card("images", f"{totals.get('images', 0):,}", "from the validation report"),
        _card("annotations", f"{totals.get('annotations', 0):,}", "from the validation report"),
        _card("categories", f"{totals.get('categories', 0):,}", "classes: once the statistics are in"),
        _card("crowd regions", f"{totals.get('crowd', 0):,}"),
        _card("validation problems", problems, note, "text-success" if problems == "none" else ""),
    ]
    return dbc.Row([dbc.Col(card) for card in cards], className="g-2 mb-2")


def no_image_chosen() -> html.Div:
    return html.Div("Choose an image on the left.", className="text-muted small py-4 text-center")


def classes_tab(figure: go.Figure | None) -> dbc.Tab:
    controls = html.Div(
        [
            dbc.RadioItems(
                id=Explore.METRIC,
                options=[
                    {"label": "instances", "value": "instances"},
                    {"label": "images", "value": "images"},
                    {"label": "pixel share", "value": "pixel_share"},
                ],
                value=DEFAULT_METRIC,
                inline=True,
            ),
            dbc.RadioItems(
                id=Explore.ORDER,
                options=[{"label": "by value", "value": "value"}, {"label": "by name", "value": "name"}],
                value=DEFAULT_ORDER,
                inline=True,
            ),
            dbc.Checklist(
                id=Explore.OPTIONS,
                options=[
                    {"label": "log scale", "value": "log"},
                    {"label": "group by supercategory", "value": "group"},
                ],
                value=[],
                inline=True,
                switch=True,
            ),
        ],
        className="d-flex flex-wrap gap-4 mb-2 small",
    )
    graph = dcc.Graph(
        id=Explore.CLASSES,
        figure=figure if figure is not None else {},
        config={"displaylogo": False},
        style={"height": "52vh"},
    )
    return dbc.Tab([controls, graph], label="Classes", tab_id="classes")


def sizes_pane(stats: dict) -> dbc.Row:
    def graph(figure, width: int) -> dbc.Col:
        return dbc.Col(
            dcc.Graph(figure=figure, config={"displaylogo": False}, style={"height": "28vh"}), md=width
        )

    return dbc.Row(
        [graph(size_scatter(stats), 6), graph(objects_histogram(stats), 6), graph(object_sizes(stats), 12)],
        className="g-2",
        id=Explore.SIZES,
    )


def cooccurrence_graph(stats: dict) -> dcc.Graph:
    return dcc.Graph(
        id=Explore.COOCCURRENCE,
        figure=cooccurrence_heatmap(stats),
        config={"displaylogo": False},
        style={"height": "58vh"},
    )


def _page_buttons() -> html.Div:
    return html.Div(
        [
            dbc.Button(
                html.I(className="bi bi-chevron-left"),
                id=Explore.PREVIOUS,
                size="sm",
                color="light",
                title="previous page (←)",
            ),
            html.Span(id=Explore.PAGE_LABEL, className="small text-muted mx-2"),
            dbc.Button(
                html.I(className="bi bi-chevron-right"),
                id=Explore.NEXT,
                size="sm",
                color="light",
                title="next page (→)",
            ),
        ],
        className="d-flex align-items-center my-2",
    )


def images_tab(filter_options: list[dict]) -> dbc.Tab:
    class_filter = html.Div(
        [
            dcc.Dropdown(
                id=Explore.FILTER,
                options=filter_options,
                value=[],
                multi=True,
                placeholder="filter by class (any of)",
                className="flex-grow-1",
            ),
            dbc.Checklist(
                id=Explore.MATCH,
                options=[{"label": "all of them", "value": "all"}],
                value=[],
                switch=True,
                className="small ms-2",
            ),
        ],
        className="d-flex align-items-center",
    )
    browser = html.Div(
        [
            class_filter,
            _page_buttons(),
            html.Div(id=Explore.THUMBNAILS, className="thumbnail-grid"),
            dcc.Store(id=Explore.PAGE, data=0),
        ]
    )
    detail = html.Div(
        [
            html.Div(no_image_chosen(), id=Explore.DETAIL, className="picture-stack"),
            dbc.Label("Mask opacity", className="mt-2 mb-0 small text-muted"),
            dcc.Slider(id=Explore.OPACITY, min=0, max=1, step=0.05, value=DEFAULT_OPACITY, marks=None),
            html.Div(id=Explore.LEGEND, className="mt-1"),
            dcc.Store(id=Explore.SELECTED),
        ]
    )
    return dbc.Tab(
        dbc.Row([dbc.Col(browser, lg=5), dbc.Col(detail, lg=7)], className="g-3"),
        label="Images",
        tab_id="images",
    )


def explore_page(
    choices: list[str],
    default: str | None,
    summary,
    problems,
    filter_options: list[dict],
    figure,
    label_options: list[str],
    labels: str | None,
    title,
    job: dict | None,
    progress,
    add_form=None,
) -> html.Div:
    """The whole page around an already computed first view (summary, problems, class chart), or
    around the first-statistics job's progress when there is no view yet."""
    selectors = html.Div(
        [
            dcc.Dropdown(
                id=Explore.DATASET,
                options=choices,
                value=default,
                clearable=False,
                style={"minWidth": "14rem"},
            ),
            dcc.Dropdown(
                id=Explore.LABELS,
                options=label_options,
                value=labels,
                clearable=False,
                placeholder="label map",
                style={"minWidth": "10rem"},
            ),
        ],
        className="d-flex gap-2 ms-auto",
    )
    header = html.Div(
        [
            html.H2("Explore"),
            html.Span("classes, sizes and images of a dataset split", className="text-muted small"),
            selectors,
        ],
        className="page-header",
    )
    # Sizes and Co-occurrence are filled when first shown: Plotly renders every mounted
    # graph, hidden tabs included, and that cost most of the page's first second
    tabs = dbc.Tabs(
        [
            classes_tab(figure),
            dbc.Tab(html.Div(id=f"{Explore.SIZES}-pane"), label="Sizes", tab_id="sizes"),
            dbc.Tab(
                html.Div(id=f"{Explore.COOCCURRENCE}-pane"), label="Co-occurrence", tab_id="cooccurrence"
            ),
            images_tab(filter_options),
        ],
        active_tab="classes",
        className="mb-2",
        id=Explore.TABS,
    )
    view = html.Div(
        [
            html.Div(summary, id=Explore.SUMMARY, className="summary-cards"),
            html.Div(problems, id=Explore.PROBLEMS),
            panel(
                "Dataset",
                [html.Div(title, id=Explore.VIEW_TITLE, className="small mb-1"), tabs],
                icon="bar-chart-line",
            ),
        ],
        id=Explore.VIEW,
        className="explore-view",
    )
    jobs = [
        html.Div(progress, id=Explore.STATS_PROGRESS, className="mb-2"),
        dcc.Store(id=Explore.STATS_JOB, data=job),
        dcc.Store(id=Explore.STATS_START),
        dcc.Store(id=Explore.STATS_RUN),
        dcc.Store(id=Explore.STATS_READY),
        dcc.Interval(id=Explore.STATS_POLL, interval=1000, disabled=job is None),
    ]
    extra = (
        [panel("Add your own dataset", add_form, icon="folder-plus", panel_id=Explore.ADD)]
        if add_form
        else []
    )
    return html.Div([header, *jobs, view, *extra], className="page page-explore")


def _card(title: str, value, note: str = "", colour: str = "") -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(title, className="summary-title"),
                html.Div(value, className=f"summary-value {colour}"),
                html.Small(note, className="text-muted"),
            ]
        ),
        className="summary-card",
    )


def validation_summary(report: ValidationReport | None, dataset: str) -> tuple[str, str, html.Details | None]:
    """(problems, note, full report) for the summary card: what the cached validation report says."""
    if report is None:
        return "not checked", f"cocoseg data validate {dataset}", None
    payload = report.to_dict()
    if not payload["checks"]:
        return "none", "validated: no problems found", None
    items = [
        html.Li(
            [
                html.B(f"{check['title']} ({check['count']})"),
                html.Span(f" {check['severity']}", className="text-muted"),
                html.Ul(
                    [html.Li(f"{example['location']}: {example['message']}") for example in check["examples"]]
                ),
            ]
        )
        for check in payload["checks"]
    ]
    details = html.Details(
        [html.Summary("full validation report"), html.Ul(items, className="small")], className="mt-2"
    )
    return f"{payload['errors']} errors, {payload['warnings']} warnings", "", details


def summary_cards(stats: dict, labels: str | None, problems: str, note: str) -> dbc.Row:
    totals = stats["totals"]
    cards = [
        _card("images", f"{totals['images']:,}"),
        _card("annotations", f"{totals['annotations']:,}", f"{totals['annotations_used']:,} used"),
        _card(
            "categories",
            f"{totals['categories']:,}",
            f"label map {stats['label_map']['name']}: {len(stats['classes'])} classes",
        ),
        _card("crowd regions", f"{totals['crowd']:,}"),
        _card("validation problems", problems, note, "text-success" if problems == "none" else ""),
    ]
    return dbc.Row([dbc.Col(card) for card in cards], className="g-2 mb-2")


def class_filter_options(stats: dict) -> list[dict]:
    """The foreground classes that some image contains."""
    return [
        {"label": row["name"], "value": row["index"]}
        for row in stats["classes"]
        if row["index"] > 0 and row["images"]
    ]


def page_label(shown: ImagePage) -> str:
    if not shown.total:
        return "no image has these classes"
    return f"{shown.total:,} images · page {shown.number + 1} of {shown.pages}"


def thumbnail_tiles(images: list[tuple[int, str]], thumbnails: list[bytes | None]) -> list[html.Button]:
    """One clickable tile per image (its JPEG thumbnail, or "unreadable")."""
    tiles = []
    for (image_id, name), data in zip(images, thumbnails):
        if data is None:
            picture = html.Div("unreadable", className="thumbnail-missing")
        else:
            picture = html.Img(src=data_url(data, "image/jpeg"), alt=name)
        tiles.append(
            html.Button(
                [picture, html.Div(name, className="thumbnail-name")],
                id={"type": Explore.THUMBNAIL, "index": image_id},
                className="thumbnail",
                title=name,
                n_clicks=0,
            )
        )
    return tiles


def detail_view(detail: ImageDetail, opacity: float | None) -> tuple[list, list]:
    """(the picture under its mask and outline layers, the legend with a caption)."""
    layer = mask_layer(detail.mask, detail.label_map, show_ignored=True)
    picture = [
        html.Img(
            src=data_url(image_jpeg(detail.picture), "image/jpeg"),
            className="stacked-picture",
            alt=detail.file_name,
        ),
        html.Img(
            src=data_url(encode_png(layer), "image/png"),
            id=Explore.DETAIL_LAYER,
            className="stacked-layer",
            style={"opacity": opacity if opacity is not None else DEFAULT_OPACITY},
            alt="mask",
        ),
        html.Img(
            src=data_url(encode_png(detail.outlines), "image/png"),
            className="stacked-layer",
            alt="instance outlines",
        ),
    ]
    rows = [{**row, "share": 0.0} for row in detail.present]
    caption = html.Div(
        f"{detail.file_name} · {detail.width}×{detail.height} · "
        f"{detail.annotations} annotations · {detail.ignored:,} ignored pixels (white)",
        className="small text-muted",
    )
    return picture, [class_legend(rows), caption]
