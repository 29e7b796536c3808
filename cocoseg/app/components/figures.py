"""Plotly figures shared by pages: per-class IoU heatmaps and confusion matrices, and ``plot_text``.

Plotly draws labels, titles, legends and hover text as SVG through its own small HTML parser,
which honours ``<a href>``, ``<b>``, ``<br>`` and styles: a category name from a hostile COCO
file would become a link or restyle the chart. Every string a user or a data file supplied
(class, model, dataset, split names) reaches a figure through ``plot_text``, which escapes
``&``, ``<`` and ``>``; Plotly shows the entities as the plain characters.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

MARGINS = {"l": 10, "r": 10, "t": 30, "b": 10}
# a few layout defaults instead of "plotly_white": building a figure with the full
# template costs ~30 ms of deep copies per figure on the server. The margins are small, so the
# axes grow them to fit their labels (a model's name beside a heatmap row was cut to a dash).
LIGHT = go.layout.Template(
    layout={
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": {"color": "#2a3f5f"},
        "xaxis": {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "automargin": True},
        "yaxis": {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "automargin": True},
    }
)


def plot_text(value) -> str:
    """``value`` as text Plotly shows literally (its HTML-like markup escaped)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plot_texts(values) -> list[str]:
    """``plot_text`` of each value (axis categories, legend names, hover data)."""
    return [plot_text(value) for value in values]


def short_label(value, limit: int = 32) -> str:
    """``value`` cut in the middle to ``limit`` characters: a run's name keeps its start and its
    distinguishing end (``attention_une…060037-35ae (int8)``); escape it with ``plot_text`` after."""
    text = str(value)
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2 - 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head) :]}"


def _empty(message: str) -> go.Figure:
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, font={"color": "#6c757d"})
    figure.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, margin=MARGINS, template=LIGHT)
    return figure


def iou_heatmap(
    labels: list[str], classes: list[str], values: list[list[float | None]], title: str = ""
) -> go.Figure:
    """Rows = models/ensembles, columns = classes; n/a cells stay blank."""
    if not labels:
        return _empty("no evaluations to show")
    matrix = np.array(
        [[np.nan if value is None else value * 100 for value in row] for row in values], dtype=float
    )
    text = [["n/a" if np.isnan(cell) else f"{cell:.0f}" for cell in row] for row in matrix]
    rows = plot_texts(labels)
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=plot_texts(classes),
            y=rows,
            zmin=0,
            zmax=100,
            colorscale="Blues",
            text=text,
            texttemplate="%{text}",
            hovertemplate="%{y}<br>%{x}: %{text} IoU<extra></extra>",
            colorbar={"title": "IoU %", "thickness": 12},
        )
    )
    figure.update_layout(
        title=plot_text(title),
        margin=MARGINS,
        template=LIGHT,
        xaxis={"tickangle": -45},
        # long names are cut in the middle beside the rows (whole on hover), so the cells keep their width
        yaxis={
            "autorange": "reversed",
            "tickvals": rows,
            "ticktext": plot_texts(short_label(label) for label in labels),
        },
    )
    return figure


def confusion_heatmap(matrix: list[list[int]], classes: list[str], title: str = "") -> go.Figure:
    """Row-normalised confusion matrix (truth rows, prediction columns, last column = no prediction).

    Classes that never occur in the truth are left out of the rows, so the picture stays readable.
    """
    counts = np.asarray(matrix, dtype=float)
    if counts.size == 0:
        return _empty("no confusion matrix")
    present = counts.sum(axis=1) > 0
    normalised = counts[present] / counts[present].sum(axis=1, keepdims=True)
    columns = list(classes) + (["(none)"] if counts.shape[1] == len(classes) + 1 else [])
    rows = [name for name, keep in zip(classes, present) if keep]
    figure = go.Figure(
        go.Heatmap(
            z=normalised * 100,
            x=plot_texts(columns),
            y=plot_texts(rows),
            zmin=0,
            zmax=100,
            colorscale="Viridis",
            hovertemplate="truth %{y}<br>predicted %{x}: %{z:.1f} %<extra></extra>",
            colorbar={"title": "% of row", "thickness": 12},
        )
    )
    figure.update_layout(
        title=plot_text(title),
        margin=MARGINS,
        template=LIGHT,
        xaxis={"title": "predicted", "tickangle": -45},
        yaxis={"title": "truth", "autorange": "reversed"},
    )
    return figure
