"""Home's datasets table: one row per split with its counts and validation badge. No callbacks here."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from cocoseg.app.components.panels import status_badge


def _number(row: dict, key: str) -> str:
    return f"{row[key]:,}" if key in row else "-"


def datasets_table(rows: list[dict]) -> dbc.Table:
    """Dataset splits with counts and a validation badge."""
    header = html.Thead(
        html.Tr(
            [
                html.Th(name)
                for name in ("Dataset", "Split", "Images", "Annotations", "Categories", "Crowd", "Validation")
            ]
        )
    )
    body = []
    for row in rows:
        name = (
            [row["dataset"], dbc.Badge("bundled", color="info", className="ms-2")]
            if row["builtin"]
            else row["dataset"]
        )
        body.append(
            html.Tr(
                [
                    html.Td(name),
                    html.Td(row["split"]),
                    html.Td(_number(row, "images")),
                    html.Td(_number(row, "annotations")),
                    html.Td(_number(row, "categories")),
                    html.Td(_number(row, "crowd")),
                    html.Td(
                        [
                            status_badge(row["status"], row["message"]),
                            html.Small(row["message"], className="text-muted ms-2"),
                        ]
                    ),
                ],
                className=f"dataset-row dataset-{row['dataset']}",
            )
        )
    return dbc.Table([header, html.Tbody(body)], hover=True, size="sm", className="mb-0")
