"""The Review page's layout: what to rank with, the ranking job, filters, and the queue of images.

Each queued image is a link into Annotate (``links.annotate_link``), pre-filled with the
model that ranked it; its uncertainty picture shows on hover, or instead of the image when
"uncertainty maps" is on. Keys (``assets/cocoseg.js``): J / K move along the queue, Enter
opens the image, N opens the first image not corrected yet.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.jobs import progress_bar
from cocoseg.app.components.panels import empty_state, panel
from cocoseg.app.components.segmentation import data_url
from cocoseg.app.ids import Review
from cocoseg.app.links import annotate_link
from cocoseg.pipeline.inference.ranking import QueueItem, Ranking
from cocoseg.pipeline.inference.uncertainty import ENSEMBLE_SCORES, SCORE_DESCRIPTIONS, SCORES

QUEUE_SHOWN = 100  # cards drawn at once, two small JPEGs each (the ranking file holds every image)


def score_options(ensemble: bool) -> list[dict]:
    return [
        {
            "label": html.Span(
                [html.B(name), html.Small(f" {SCORE_DESCRIPTIONS[name]}", className="text-muted")]
            ),
            "value": name,
            "disabled": name in ENSEMBLE_SCORES and not ensemble,
        }
        for name in SCORES
    ]


def page_layout(models: list, choices: list[str], model: str | None, choice: str | None) -> html.Div:
    header = html.Div(
        [
            html.H2("Review"),
            html.Span("label next: the images the model is least sure of, first", className="text-muted"),
        ],
        className="page-header",
    )
    if not models:
        return html.Div(
            [
                header,
                empty_state(
                    "No model to rank with yet.",
                    "Train and export one (Train page, or Quick start on Home), "
                    "or import one: cocoseg models import",
                    "sort-down",
                ),
            ]
        )
    rank = dbc.Button([html.I(className="bi bi-sort-down me-1"), "Rank"], id=Review.RANK, color="primary")
    cancel = dbc.Button("Cancel", id=Review.CANCEL, color="secondary", outline=True, disabled=True)
    controls = [
        dbc.Label("Model or ensemble", html_for=Review.MODEL),
        dcc.Dropdown(
            [{"label": f"{entry.name} ({entry.kind})", "value": entry.name} for entry in models],
            model if model in [entry.name for entry in models] else models[0].name,
            id=Review.MODEL,
            clearable=False,
        ),
        dbc.Label("Images", html_for=Review.SPLIT, className="mt-2"),
        dcc.Dropdown(choices, choice, id=Review.SPLIT, clearable=False),
        dbc.Label("Rank by", className="mt-2"),
        dbc.RadioItems(score_options(True), "entropy", id=Review.SCORE),
        html.Div(
            [
                html.Div([rank, cancel], className="d-flex gap-2"),
                html.Div(progress_bar(0, "", "finished", Review.PROGRESS), className="mt-2"),
                html.Div(id=Review.MESSAGE, className="small mt-2"),
            ],
            className="panel-foot mt-3",
        ),
        dcc.Store(id=Review.QUEUED),
        dcc.Store(id=Review.REFRESH, data=0),
    ]
    filters = [
        dbc.Label("Predicted classes", html_for=Review.CLASSES),
        dcc.Dropdown([], [], id=Review.CLASSES, multi=True, placeholder="all classes"),
        dbc.Switch(id=Review.MAPS, label="Show uncertainty maps", value=False, className="mt-2"),
        html.Small(
            "J / K move along the queue, Enter opens in Annotate, N opens the next to correct.",
            className="text-muted d-block mt-2",
        ),
    ]
    queue = [
        html.Div(id=Review.SUMMARY, className="small mb-2"),
        html.Div(id=Review.QUEUE, className="review-grid"),
    ]
    return html.Div(
        [
            header,
            dbc.Row(
                [
                    dbc.Col(
                        [
                            panel("Rank", controls, "sort-down"),
                            html.Div(className="mb-3"),
                            panel("Filter", filters, "funnel"),
                        ],
                        md=3,
                        className="review-side",
                    ),
                    dbc.Col(panel("Queue", queue, "collection"), md=9),
                ],
                className="g-3",
            ),
        ],
        className="page-review",
    )


def not_ranked(model: str, choice: str) -> html.Div:
    return empty_state(
        f"{choice} is not ranked by {model} yet.",
        "Press Rank: every image is scored once, then cached.",
        "sort-down",
    )


def summary(ranking: Ranking, by: str, shown: int, total: int, corrected: int) -> list:
    """What the queue is: how many images, by what, how complete; skipped images listed."""
    line = (
        f"{len(ranking.rows)} of {ranking.images} images of {ranking.dataset}/{ranking.split} ranked by "
        f"{by} with {ranking.model} ({ranking.created.replace('T', ' ')[:16]} UTC); "
        f"{corrected} corrected, at the end"
    )
    if total > shown:
        line += f"; showing the first {shown} of {total}"
    parts: list = [html.Div(line)]
    if ranking.partial:
        parts.append(
            alert(
                "Partial: the ranking was cancelled. Rank again to finish it; the images scored so far "
                "come from the cache.",
                "warning",
            )
        )
    if ranking.skipped:
        parts.append(
            html.Details(
                [
                    html.Summary(f"{len(ranking.skipped)} images could not be read and were skipped"),
                    html.Ul([html.Li(f"{item['file_name']}: {item['reason']}") for item in ranking.skipped]),
                ],
                className="text-warning",
            )
        )
    return parts


def queue_cards(
    items: list[QueueItem], pictures: list[tuple[bytes | None, bytes | None]], ranking: Ranking, by: str
) -> list:
    """One link (client-side, no page reload) per queued image: its picture (uncertainty map on hover),
    rank, score and predicted classes."""
    if not ranking.images:
        where = f"{ranking.dataset}/{ranking.split}"
        return [
            empty_state(f"{where} has no images.", "Add a folder of them: cocoseg data add NAME --images DIR")
        ]
    if not items:
        return [empty_state("No image in this queue.", "Clear the class filter, or rank another split.")]
    cards = []
    for item, (image, heat) in zip(items, pictures):
        score = item.row.scores.get(by)
        stack = [
            html.Img(src=data_url(image, "image/jpeg"), className="review-image", alt=item.row.file_name)
            if image
            else html.Div("unreadable", className="thumbnail-missing review-image"),
            html.Img(src=data_url(heat, "image/jpeg"), className="review-map", alt="uncertainty")
            if heat
            else None,
        ]
        cards.append(
            dcc.Link(
                html.Div(
                    [
                        html.Div(stack, className="review-pictures"),
                        html.Div(
                            [
                                html.Span(f"#{item.rank}", className="review-rank"),
                                html.Span(
                                    "n/a" if score is None else f"{score:.3f}", className="review-score"
                                ),
                                dbc.Badge("corrected", color="success", className="ms-1")
                                if item.corrected
                                else None,
                            ],
                            className="review-line",
                        ),
                        html.Div(
                            ", ".join(item.row.classes) or "background only", className="review-classes"
                        ),
                        html.Div(item.row.file_name, className="thumbnail-name"),
                    ],
                    **{"data-file": item.row.file_name},
                ),
                href=annotate_link(ranking.dataset, ranking.split, item.row.file_name, ranking.model),
                className="review-card" + (" review-done" if item.corrected else ""),
                title=f"open {item.row.file_name} in Annotate, pre-filled with {ranking.model}",
            )
        )
    return cards
