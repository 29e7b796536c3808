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


# A heatmap's row height in pixels: every class's name fits beside its row, and a panel scrolls
# through a long label map (COCO's 81 classes) instead of squeezing it until labels drop out.
ROW_PIXELS = 18
# Up to this many categories every tick is labelled; past it Plotly thins them (hover still names each).
EVERY_TICK_UP_TO = 40


def _colour_bar(title: str) -> dict:
    """A heatmap's colour bar: a fixed 200 px at the top, however tall the figure grows."""
    return {"title": title, "thickness": 12, "lenmode": "pixels", "len": 200, "yanchor": "top", "y": 1}


def _every_tick(count: int) -> dict:
    return {"dtick": 1} if count <= EVERY_TICK_UP_TO else {}


def iou_heatmap(labels: list[str], classes: list[str], values: list[list[float | None]]) -> go.Figure:
    """Rows = classes, columns = models/ensembles; n/a cells stay blank. No title: the models' names
    stand above the columns, and the panel and the colour bar say what the numbers are.

    Classes run down (a label map has many, a comparison few models), so each cell keeps room for
    its number and each class its name; the figure grows with the classes."""
    if not labels:
        return _empty("no evaluations to show")
    matrix = np.array(
        [[np.nan if value is None else value * 100 for value in row] for row in values], dtype=float
    ).T
    text = [["n/a" if np.isnan(cell) else f"{cell:.0f}" for cell in row] for row in matrix]
    columns = plot_texts(labels)
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=columns,
            y=plot_texts(classes),
            zmin=0,
            zmax=100,
            colorscale="Blues",
            text=text,
            texttemplate="%{text}",
            hovertemplate="%{x}<br>%{y}: %{text} IoU<extra></extra>",
            colorbar=_colour_bar("IoU %"),
        )
    )
    figure.update_layout(
        margin=MARGINS,
        template=LIGHT,
        height=140 + ROW_PIXELS * len(classes),
        # long names are cut in the middle above the columns (whole on hover), so the cells keep their width
        xaxis={
            "side": "top",
            "tickangle": -20,
            "tickvals": columns,
            "ticktext": plot_texts(short_label(label, 24) for label in labels),
        },
        yaxis={"autorange": "reversed", **_every_tick(len(classes))},
    )
    return figure


def confusion_heatmap(matrix: list[list[int]], classes: list[str], title: str = "") -> go.Figure:
    """Row-normalised confusion matrix (truth rows, prediction columns, last column = no prediction).

    Classes that never occur in the truth are left out of the rows, so the picture stays readable;
    the figure grows with the rows so every truth class is named.
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
            colorbar=_colour_bar("% of row"),
        )
    )
    figure.update_layout(
        title=plot_text(title),
        margin=MARGINS,
        template=LIGHT,
        height=max(260, 170 + ROW_PIXELS * len(rows)),
        xaxis={"title": "predicted", "tickangle": -45, **_every_tick(len(columns))},
        yaxis={"title": "truth", "autorange": "reversed", **_every_tick(len(rows))},
    )
    return figure
