"""What the Prepare page shows of its results: the dry run's chart and note, previews, job cards, sets.

Pure builders (no callbacks) over the pipeline's typed results: ``dry_run``'s dict, a job's
``PrepareJobView`` and a set's ``manifest_facts``.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.figures import LIGHT, plot_text, plot_texts
from cocoseg.app.components.jobs import duration_text, message_line, progress_bar
from cocoseg.app.components.panels import ACTIVE_STATES, empty_state, status_badge
from cocoseg.app.ids import Prepare
from cocoseg.pipeline.prepare import PreparedSet, PrepareError, PrepareJobView, manifest_facts, training_split


def distribution_figure(result: dict | None) -> go.Figure:
    """The dry run's images per class per epoch in its training split, before and after sampling.

    Classes absent from the split are left out; no result (settings the dry run refused) draws empty axes.
    """
    figure = go.Figure()
    title = "no dry run"
    if result:
        split = training_split(list(result["splits"]))
        names = [row["name"] for row in result["label_map"]["classes"]]
        distribution = result["splits"][split]["distribution"]
        before, after = distribution["before"], distribution["after"]
        order = sorted(
            (index for index in range(1, len(names)) if before["images"][index] > 0),
            key=lambda index: -before["images"][index],
        )
        classes = plot_texts(names[index] for index in order)
        method = distribution["method"]
        figure.add_bar(
            x=classes,
            y=[before["images"][index] for index in order],
            name="before sampling",
            marker_color="#9aa5b1",
        )
        figure.add_bar(
            x=classes,
            y=[round(after["images"][index], 2) for index in order],
            marker_color="#3b5bdb",
            name="after sampling"
            if method == "none"
            else plot_text(f"after {method} sampling (t={distribution['threshold']:g})"),
        )
        title = plot_text(f"{split}: images per class in one epoch")
    # classes are sorted by count, so the top right corner of the plot is free for the legend
    figure.update_layout(
        template=LIGHT,
        barmode="group",
        title={"text": title, "font": {"size": 13}, "x": 0.01, "xanchor": "left"},
        margin={"l": 40, "r": 10, "t": 36, "b": 80},
        xaxis={"tickangle": -45},
        yaxis={"title": "images"},
        legend={
            "x": 0.99,
            "y": 0.98,
            "xanchor": "right",
            "yanchor": "top",
            "bgcolor": "rgba(255,255,255,0.8)",
        },
    )
    return figure


def dry_run_note(result: dict) -> list:
    """What Start would write, and each split's images kept, filtered and read per epoch."""
    where = result["folder"].rsplit("/", 1)[-1]
    lines = [f"Start writes {where}" + (" (already prepared: Start reuses it)." if result["exists"] else ".")]
    for split, summary in result["splits"].items():
        filtered = (
            f", {summary['filtered_by_area']} below the labelled-area filter"
            if summary["filtered_by_area"]
            else ""
        )
        left_out = (
            f", {summary['left_out_by_validation']} left out by validation"
            if summary["left_out_by_validation"]
            else ""
        )
        sampling = summary["distribution"]
        epoch = (
            f"; {sampling['method']} sampling reads {sampling['after']['epoch_images']:.1f} per epoch"
            if sampling["method"] != "none"
            else ""
        )
        lines.append(f"{split}: {summary['images']} images{filtered}{left_out}{epoch}.")
    lines.append("Sampling changes how often training reads each image, never the written bytes.")
    return [html.Div(line) for line in lines]


def preview_pictures(pictures: list[str]) -> list[html.Img]:
    """The preview's data-URL thumbnails as grid cells."""
    return [
        html.Img(src=picture, className="preview-cell", alt=f"augmentation {number + 1}")
        for number, picture in enumerate(pictures)
    ]


def no_jobs() -> html.Div:
    return empty_state("No preparation job yet.", "Start one with the form.", icon="activity")


def job_card(view: PrepareJobView) -> dbc.Card:
    """A job's name, state, settings, progress, speed and last message; Cancel while it is active."""
    status, done, total = view.status, view.done, view.total
    if status == "finished":
        fraction, label = 1.0, (f"{done}/{total} images" if done and done == total else "done")
    elif status == "queued":
        fraction, label = None, "waiting to start"
    else:
        fraction, label = (done / total if total else None), (f"{done}/{total} images" if total else status)
    stats = [
        f"{view.rate:.1f} images/s" if view.rate else "",
        f"ETA {duration_text(view.eta)}" if status == "running" and view.eta is not None else "",
        f"→ {view.target}" if view.target else "",
    ]
    cancel = (
        dbc.Button(
            [html.I(className="bi bi-stop-fill me-1"), "Cancel"],
            id={"type": Prepare.CANCEL, "job": view.name},
            size="sm",
            color="outline-danger",
            disabled=view.cancelling,
        )
        if status in ACTIVE_STATES
        else None
    )
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    [
                        html.Span(view.name, className="fw-semibold me-2 job-name"),
                        status_badge(status, cancelling=view.cancelling),
                        html.Div(cancel, className="ms-auto"),
                    ],
                    className="d-flex align-items-center mb-1",
                ),
                html.Div(view.settings, className="small text-muted"),
                progress_bar(fraction, label, status),
                html.Div(
                    " · ".join(part for part in stats if part), className="small text-muted mt-1 job-stats"
                ),
                message_line(status, view.message),
            ]
        ),
        className="prepare-job-card mb-2",
        id={"type": Prepare.CARD, "job": view.name},
    )


def job_result_alert(result: dict, status: str | None) -> dbc.Alert:
    """One line on how the job this tab started ended; ``status`` is its registry state, when readable."""
    name, error = result["job"], result.get("error")
    if result.get("prepared"):
        ready = f"{name} finished: {result['prepared']} is ready. "
        return alert([ready, dcc.Link("Train on it", href="/train")], "success")
    if status == "cancelled":
        return alert(f"{name} was cancelled; nothing was published.", "secondary")
    return alert(f"{name}: {error or status}", "danger" if error else "secondary")


def _set_row(prepared: PreparedSet) -> html.Tr:
    try:
        cells, details = manifest_facts(prepared.manifest)
    except PrepareError as error:  # edited by hand, or torn: what training reads is missing
        cells, details = ["?"] * 4, [str(error)]
    except (KeyError, TypeError, AttributeError):  # a field only this table shows is missing
        cells, details = ["?"] * 4, ["its manifest.json could not be read"]
    details.append(f"folder {prepared.folder}")
    summary = html.Details(
        [
            html.Summary(prepared.name, className="set-name"),
            html.Ul([html.Li(line) for line in details], className="small mb-0"),
        ]
    )
    return html.Tr([html.Td(summary)] + [html.Td(cell) for cell in cells])


def sets_table(prepared_sets: list[PreparedSet]):
    """One row per finished set, newest first; its details fold out under its name."""
    if not prepared_sets:
        return empty_state(
            "No prepared sets yet.",
            "Start one with the form (or `cocoseg prepare demo --labels voc21`).",
            icon="database",
        )
    header = html.Thead(
        html.Tr([html.Th(title) for title in ("Set", "Label map", "Size", "Examples", "Created")])
    )
    return dbc.Table(
        [header, html.Tbody([_set_row(prepared) for prepared in prepared_sets])],
        size="sm",
        hover=True,
        responsive=True,
        className="prepare-sets mb-0",
    )
