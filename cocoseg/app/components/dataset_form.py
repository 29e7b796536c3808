"""The add-dataset form's layout: name, split, annotation file and image folder (paths on the machine
that runs the server), a folder browser limited to the allowed roots, and the validation job's
progress and report beside it. Pure builders; the callbacks are ``cocoseg.app.add_dataset``.
"""

from __future__ import annotations

from pathlib import Path

import dash_bootstrap_components as dbc
from dash import dcc, html

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.forms import FormFields
from cocoseg.app.components.jobs import duration_text, progress_bar
from cocoseg.app.ids import AddDataset
from cocoseg.pipeline.data import ValidationReport
from cocoseg.pipeline.data.validation import report_lines

FIELDS = FormFields(
    ids={
        "name": AddDataset.NAME,
        "split": AddDataset.SPLIT,
        "annotations": AddDataset.ANNOTATIONS,
        "images": AddDataset.IMAGES,
    },
    inputs=("name", "split", "annotations", "images"),
)
BROWSE_LIMIT = 200  # entries listed per folder (a folder of 118k images lists its sub-folders first)


def _field(field: str, label: str, placeholder: str, value: str = "") -> html.Div:
    return html.Div(
        [
            dbc.Label(label, html_for=FIELDS.ids[field], className="small mb-0"),
            dbc.Input(id=FIELDS.ids[field], placeholder=placeholder, value=value, size="sm", debounce=False),
            FIELDS.feedback(field),
        ],
        className="mb-2",
    )


def roots_note(roots: tuple[Path, ...] | None, browse: tuple[Path, ...]) -> html.Small:
    """Where paths may come from, in one line."""
    if roots is None:
        return html.Small(
            "Paths on this machine. The server listens on this machine only, so any readable path "
            "can be added.",
            className="text-muted d-block mb-2",
        )
    if not roots:
        return html.Small(
            "This server is reachable from other machines and COCOSEG_DATA_ROOTS is not set: "
            "no path can be registered from the app (set it and restart, or use cocoseg data add).",
            className="text-danger d-block mb-2",
        )
    return html.Small(
        "This server is reachable from other machines: only paths under "
        + ", ".join(str(root) for root in roots)
        + " (COCOSEG_DATA_ROOTS) can be registered.",
        className="text-muted d-block mb-2",
    )


def browser(browse: tuple[Path, ...]) -> html.Div:
    """A folder browser over the allowed roots: folders open, a .json file fills the annotation field."""
    hidden = {} if browse else {"style": {"display": "none"}}  # no roots: nothing to browse
    browse = browse or (Path("/"),)
    return html.Details(
        [
            html.Summary("Browse folders", className="small"),
            html.Div(
                [
                    dcc.Dropdown(
                        id=AddDataset.BROWSE_ROOT,
                        options=[str(root) for root in browse],
                        value=str(browse[0]),
                        clearable=False,
                        className="small mb-1",
                    ),
                    html.Div(
                        [
                            dbc.Button("up", id=AddDataset.BROWSE_UP, size="sm", color="light"),
                            html.Code(id=AddDataset.BROWSE_PATH, className="small ms-2"),
                            dbc.Button(
                                "use this folder for images",
                                id=AddDataset.BROWSE_USE_IMAGES,
                                size="sm",
                                color="light",
                                className="ms-auto",
                            ),
                        ],
                        className="d-flex align-items-center mb-1",
                    ),
                    html.Div(id=AddDataset.BROWSE_LIST, className="browse-list small"),
                ],
                className="mt-1",
            ),
        ],
        className="mb-2",
        **hidden,
    )


def browse_entries(folder: Path) -> list:
    """Sub-folders, then .json files, of ``folder`` (at most ``BROWSE_LIMIT``), as clickable rows."""
    try:
        children = sorted(folder.iterdir(), key=lambda path: path.name.lower())
    except OSError as error:
        return [html.Div(f"cannot list {folder}: {error.strerror}", className="text-danger")]
    folders = [path for path in children if path.is_dir() and not path.name.startswith(".")]
    files = [path for path in children if path.suffix.lower() == ".json" and path.is_file()]
    rows = [
        html.Button(
            [html.I(className=f"bi bi-{'folder' if path.is_dir() else 'filetype-json'} me-1"), path.name],
            id={"type": AddDataset.BROWSE_ENTRY, "path": str(path)},
            className="browse-entry btn btn-link btn-sm d-block p-0 text-start",
            n_clicks=0,
        )
        for path in (folders + files)[:BROWSE_LIMIT]
    ]
    hidden = len(folders) + len(files) - len(rows)
    if hidden > 0:
        rows.append(html.Div(f"... {hidden} more", className="text-muted"))
    return rows or [html.Div("no folders or .json files here", className="text-muted")]


def dataset_form(roots: tuple[Path, ...] | None, browse: tuple[Path, ...]) -> html.Div:
    """The form and, beside it, the validation job's progress and report."""
    form = html.Div(
        [
            roots_note(roots, browse),
            dbc.Row(
                [
                    dbc.Col(_field("name", "Name", "my-dataset"), md=7),
                    dbc.Col(_field("split", "Split", "train", "train"), md=5),
                ],
                className="g-2",
            ),
            _field("annotations", "Annotation file (COCO JSON)", "/data/my-dataset/instances_train.json"),
            _field("images", "Image folder", "/data/my-dataset/train"),
            browser(browse),
            dbc.Checklist(
                id=AddDataset.REPLACE,
                options=[{"label": "replace the split if it exists", "value": "replace"}],
                value=[],
                switch=True,
                className="small mb-2",
            ),
            html.Div(
                [
                    dbc.Button("Add and validate", id=AddDataset.ADD, size="sm", color="primary"),
                    dbc.Button(
                        "Remove dataset",
                        id=AddDataset.REMOVE,
                        size="sm",
                        color="outline-danger",
                        className="ms-2",
                    ),
                ]
            ),
            html.Div(id=AddDataset.MESSAGE, className="small mt-2"),
            dcc.Store(id=AddDataset.QUEUED),
            dcc.Store(id=AddDataset.RESULT),
            dcc.Store(id=AddDataset.DONE),
            dcc.Interval(id=AddDataset.POLL, interval=500, disabled=True),
        ]
    )
    side = html.Div(
        [html.Div(id=AddDataset.PROGRESS), html.Div(id=AddDataset.REPORT)], className="add-dataset-side"
    )
    return html.Div(dbc.Row([dbc.Col(form, lg=6), dbc.Col(side, lg=6)], className="g-3"), id=AddDataset.FORM)


def progress_view(dataset: str, split: str, state: str, progress: dict, elapsed: float | None) -> list:
    """The job's bar: its stage, the counts of images and annotations checked, and an ETA."""
    stage = progress.get("stage", "starting")
    done, total = progress.get("done", 0), progress.get("total", 0) or 0
    fraction = done / total if total else 0.0
    if stage == "structure":
        words = f"checking the file's structure: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB"
    elif stage in ("images", "annotations"):
        words = (
            f"{progress.get('images', 0):,}/{progress.get('images_total', 0):,} images, "
            f"{progress.get('annotations', 0):,}/{progress.get('annotations_total', 0):,} annotations checked"
        )
    else:
        words = "reading the annotation file"
    eta = ""
    if elapsed and 0.02 < fraction < 1:
        eta = f" · about {duration_text(elapsed * (1 - fraction) / fraction)} left"
    return [
        html.Div(f"Validating {dataset}/{split} ({state})", className="small fw-bold"),
        progress_bar(fraction, f"{fraction:.0%}" if total else "", state),
        html.Div(words + eta, className="small text-muted"),
        dbc.Button("Cancel", id=AddDataset.CANCEL, size="sm", color="outline-secondary", className="mt-1"),
    ]


def report_view(dataset: str, split: str, payload: dict) -> list:
    """The validation report beside the form: the codes and lines of ``cocoseg data validate``."""
    report = ValidationReport.from_dict(payload)
    lines = report_lines(f"{dataset}/{split}", report)
    colour = "danger" if report.errors else ("warning" if report.warnings else "success")
    explore = dcc.Link("Open it in Explore", href=f"/explore?split={dataset}/{split}", className="ms-2")
    verdict = "registered and validated"
    return [
        alert(
            [f"{dataset}/{split} {verdict}: {report.errors} errors, {report.warnings} warnings.", explore],
            colour,
        ),
        html.Pre("\n".join(lines), className="small validation-report mt-2"),
    ]
