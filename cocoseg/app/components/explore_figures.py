"""Plotly figures of dataset statistics (``cocoseg.pipeline.data.stats`` output) for the Explore page."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from cocoseg.app.components.figures import LIGHT, MARGINS, plot_texts
from cocoseg.pipeline.data import COCO_CATEGORIES

METRICS = {
    "instances": "instances",
    "images": "images containing the class",
    "pixel_share": "share of all pixels",
}
SUPERCATEGORY = {category_id: supercategory for category_id, _name, supercategory in COCO_CATEGORIES}


def supercategory_of(row: dict, label_map: dict) -> str:
    """The COCO supercategory of a class (from its first COCO id), or its label map's name."""
    ids = next((entry["coco_ids"] for entry in label_map["classes"] if entry["index"] == row["index"]), [])
    return SUPERCATEGORY.get(ids[0], label_map["name"]) if ids else label_map["name"]


def class_bars(stats: dict, metric: str, order: str, log_scale: bool, by_supercategory: bool) -> go.Figure:
    """One bar per foreground class; sorted by value, by name, or grouped by supercategory."""
    rows = [row for row in stats["classes"] if row["index"] > 0]
    value = (lambda row: row[metric] * 100) if metric == "pixel_share" else (lambda row: row[metric])
    groups = {row["index"]: supercategory_of(row, stats["label_map"]) for row in rows}
    if by_supercategory:
        rows.sort(key=lambda row: (groups[row["index"]], -value(row)))
    elif order == "name":
        rows.sort(key=lambda row: row["name"])
    else:
        rows.sort(key=lambda row: -value(row))
    colours = [f"rgb{tuple(row['color'])}" for row in rows]
    figure = go.Figure(
        go.Bar(
            x=plot_texts(row["name"] for row in rows),
            y=[value(row) for row in rows],
            marker_color=colours,
            customdata=plot_texts(groups[row["index"]] for row in rows),
            hovertemplate="%{x} (%{customdata})<br>%{y:,.3g}<extra></extra>",
        )
    )
    title = METRICS[metric] + (" (%)" if metric == "pixel_share" else "")
    figure.update_layout(
        title=title,
        margin=MARGINS,
        template=LIGHT,
        xaxis={"tickangle": -60},
        yaxis={"type": "log" if log_scale else "linear"},
        bargap=0.15,
    )
    return figure


def size_scatter(stats: dict) -> go.Figure:
    sizes = stats["image_sizes"]["sizes"]
    counts = np.array([count for _w, _h, count in sizes] or [1])
    figure = go.Figure(
        go.Scatter(
            x=[width for width, _h, _c in sizes],
            y=[height for _w, height, _c in sizes],
            mode="markers",
            marker={"size": 6 + 18 * np.sqrt(counts / counts.max()), "color": "#2f80ed", "opacity": 0.6},
            customdata=counts,
            hovertemplate="%{x} x %{y}: %{customdata} images<extra></extra>",
        )
    )
    figure.update_layout(
        title="image sizes (px)", margin=MARGINS, template=LIGHT, xaxis_title="width", yaxis_title="height"
    )
    return figure


def objects_histogram(stats: dict) -> go.Figure:
    counts = stats["objects_per_image"]
    figure = go.Figure(
        go.Bar(
            x=list(range(len(counts))),
            y=counts,
            marker_color="#6c8ebf",
            hovertemplate="%{x} objects: %{y} images<extra></extra>",
        )
    )
    figure.update_layout(
        title="objects per image (crowd excluded)",
        margin=MARGINS,
        template=LIGHT,
        xaxis_title="objects",
        yaxis_title="images",
        bargap=0.05,
    )
    return figure


def object_sizes(stats: dict) -> go.Figure:
    """COCO small (< 32^2 px), medium and large (>= 96^2 px) instances per class."""
    rows = sorted(
        (row for row in stats["classes"] if row["index"] > 0 and row["instances"]),
        key=lambda row: -row["instances"],
    )
    figure = go.Figure(
        [
            go.Bar(
                name=bucket,
                x=plot_texts(row["name"] for row in rows),
                y=[row[bucket] for row in rows],
                marker_color=colour,
            )
            for bucket, colour in (("small", "#f2c14e"), ("medium", "#f78154"), ("large", "#4d9078"))
        ]
    )
    figure.update_layout(
        title="object size (COCO: small < 32², large ≥ 96² px)",
        barmode="stack",
        margin=MARGINS,
        template=LIGHT,
        xaxis={"tickangle": -60},
        legend={"orientation": "h", "y": 1.1},
    )
    return figure


def cooccurrence_heatmap(stats: dict, top: int = 30) -> go.Figure:
    """Images in which two classes appear together, for the ``top`` classes by images."""
    rows = [row for row in stats["classes"] if row["index"] > 0]
    matrix = np.asarray(stats["cooccurrence"], dtype=float)
    chosen = sorted(range(len(rows)), key=lambda position: -rows[position]["images"])[:top]
    names = plot_texts(rows[position]["name"] for position in chosen)
    values = matrix[np.ix_(chosen, chosen)] if matrix.size else np.zeros((0, 0))
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=names,
            y=names,
            colorscale="Blues",
            hovertemplate="%{y} + %{x}: %{z} images<extra></extra>",
            colorbar={"thickness": 12},
        )
    )
    figure.update_layout(
        title=f"co-occurrence (images), top {len(names)} classes",
        margin=MARGINS,
        template=LIGHT,
        xaxis={"tickangle": -60},
        yaxis={"autorange": "reversed"},
    )
    return figure
