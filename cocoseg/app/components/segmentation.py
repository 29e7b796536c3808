"""Layout builders for segmentation results: stacked picture + mask layer, legend, share table."""

from __future__ import annotations

import base64

import dash_bootstrap_components as dbc
from dash import html


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def colour_chip(colour) -> html.Span:
    red, green, blue = (int(value) for value in colour)
    return html.Span(className="colour-chip", style={"backgroundColor": f"rgb({red},{green},{blue})"})


def class_legend(rows: list[dict]) -> html.Div:
    """Chips for the classes present (background left out)."""
    items = [
        html.Span([colour_chip(row["color"]), row["name"]], className="legend-item")
        for row in rows
        if row["index"] > 0
    ]
    return html.Div(
        items or [html.Span("only background found", className="text-muted")], className="class-legend"
    )


def share_table(rows: list[dict]) -> dbc.Table:
    """Per-class pixel count and share, largest first."""
    body = [
        html.Tr(
            [
                html.Td([colour_chip(row["color"]), row["name"]]),
                html.Td(f"{row['pixels']:,}", className="text-end"),
                html.Td(f"{row['share'] * 100:.1f} %", className="text-end"),
            ],
            className="share-row",
        )
        for row in rows
    ]
    header = html.Thead(
        html.Tr(
            [
                html.Th("Class"),
                html.Th("Pixels", className="text-end"),
                html.Th("Share", className="text-end"),
            ]
        )
    )
    return dbc.Table([header, html.Tbody(body)], size="sm", hover=True, className="mb-0 share-table")


def picture_with_layer(
    picture_src: str, layer_src: str | None, layer_id: str, opacity: float, alt: str
) -> html.Div:
    """The picture with an optional transparent mask layer on top (opacity set in the browser)."""
    children = [html.Img(src=picture_src, className="stacked-picture", alt=alt)]
    if layer_src:
        children.append(
            html.Img(
                src=layer_src,
                id=layer_id,
                className="stacked-layer",
                style={"opacity": opacity},
                alt="class mask",
            )
        )
    return html.Div(children, className="picture-stack")
