"""The add-dataset form's callbacks (its layout is ``components.dataset_form``).

Add runs every check of ``registry.preflight`` in the request, so a refusal (a path that does
not exist, one outside the data roots, a file that is not COCO JSON, a folder without images,
a name already taken) shows at once beside its field and nothing is registered. A file above
``CHECK_IN_REQUEST_BYTES`` gets its streaming pass in the job instead, with a progress bar.
The job (``validate``, a fresh process like every job) registers the split and validates it;
the poll shows its progress with counts and an ETA, then the report with ``data validate``'s
codes. Cancel is a request in the registry, as on the Prepare page.

Registered by ``main.CALLBACK_MODULES``; used by the pages that show the form (Home, and Explore
while only the demo is registered).
"""

from __future__ import annotations

import time
from pathlib import Path

from dash import ALL, Input, Output, State, callback, ctx, no_update

from cocoseg.app.components.alerts import alert
from cocoseg.app.components.dataset_form import FIELDS, browse_entries, progress_view, report_view
from cocoseg.app.context import browse_roots, current_settings, current_workspace, registration_roots
from cocoseg.app.ids import AddDataset
from cocoseg.app.jobs import cancel_stored_job, run_stored_job, stored_job
from cocoseg.pipeline.core import UnsafePathError
from cocoseg.pipeline.data import RegistryError, remove_dataset
from cocoseg.pipeline.data.registry import NewSplit, preflight
from cocoseg.pipeline.jobs import RunError, observe, queue, supervise

CHECK_IN_REQUEST_BYTES = 64 * 1024 * 1024

MARKS = FIELDS.outputs(allow_duplicate=True)  # ``invalid`` flags, then the line under each field
UNCHANGED = [no_update] * len(MARKS)


def _field_of(error: Exception) -> str:
    if isinstance(error, RegistryError) and error.field in FIELDS.ids:
        return error.field
    if isinstance(error, UnsafePathError):
        return "split" if "split name" in str(error) else "name"
    return "annotations"


@callback(
    *MARKS,
    Output(AddDataset.MESSAGE, "children"),
    Output(AddDataset.QUEUED, "data"),
    Output(AddDataset.POLL, "disabled"),
    Output(AddDataset.REPORT, "children"),
    Input(AddDataset.ADD, "n_clicks"),
    State(AddDataset.NAME, "value"),
    State(AddDataset.SPLIT, "value"),
    State(AddDataset.ANNOTATIONS, "value"),
    State(AddDataset.IMAGES, "value"),
    State(AddDataset.REPLACE, "value"),
    prevent_initial_call=True,
    running=[(Output(AddDataset.ADD, "disabled"), True, False)],
)
def add(_clicks, name, split, annotations, images, replace):
    """Check everything here (one line beside the field at fault), then queue the registering job."""
    workspace, settings, roots = current_workspace(), current_settings(), registration_roots()
    name, split = (name or "").strip(), (split or "").strip() or "train"
    replace = "replace" in (replace or [])
    annotations, images = (annotations or "").strip(), (images or "").strip()
    try:
        small = not annotations or (
            Path(annotations).expanduser().is_file()
            and Path(annotations).expanduser().stat().st_size < CHECK_IN_REQUEST_BYTES
        )
        source = preflight(
            workspace,
            NewSplit(name, annotations, images, split, replace),
            settings.max_annotation_bytes,
            check=small,
            roots=roots,
        )
        job = queue(
            workspace,
            "validate",
            {
                "dataset": name,
                "split": split,
                "register": {
                    "annotations": str(source.annotations),
                    "images": str(source.images),
                    "replace": replace,
                    "check": not small,
                    "roots": None if roots is None else [str(root) for root in roots],
                },
            },
        )
    except (RegistryError, UnsafePathError, OSError) as error:
        field = _field_of(error)
        taken = "already has" in str(error)
        note = (
            alert("Tick 'replace the split if it exists' to point it here.", "secondary") if taken else None
        )
        return [*FIELDS.marks(field, str(error)), note, no_update, no_update, no_update]
    except RunError as error:
        return [*FIELDS.marks(), alert(f"Not started: {error}", "danger"), no_update, no_update, no_update]
    queued = {"job": job.name, "dataset": name, "split": split, "started": time.time()}
    return [
        *FIELDS.marks(),
        alert(f"Checking and registering {name}/{split}...", "info"),
        queued,
        False,
        None,
    ]


@callback(
    Output(AddDataset.RESULT, "data"),
    Input(AddDataset.QUEUED, "data"),
    background=True,
    prevent_initial_call=True,
)
def run(queued):
    """Run the queued job in a fresh process; the registry records its progress and outcome."""
    return run_stored_job("validate", queued) or no_update


@callback(
    Output(AddDataset.PROGRESS, "children"),
    Output(AddDataset.REPORT, "children", allow_duplicate=True),
    Output(AddDataset.POLL, "disabled", allow_duplicate=True),
    Output(AddDataset.DONE, "data"),
    *MARKS,
    Output(AddDataset.MESSAGE, "children", allow_duplicate=True),
    Input(AddDataset.POLL, "n_intervals"),
    State(AddDataset.QUEUED, "data"),
    prevent_initial_call=True,
)
def poll(_ticks, queued):
    """The job's progress while it runs; its report (or the line that refused the file) once it ends."""
    entry = stored_job(queued)
    if entry is None:
        return [no_update, no_update, True, no_update, *UNCHANGED, no_update]
    supervise(entry)
    status = observe(entry)
    dataset, split = queued["dataset"], queued["split"]
    if status.active:
        elapsed = time.time() - float(queued.get("started") or time.time())
        view = progress_view(dataset, split, status.state, status.progress, elapsed)
        return [view, no_update, False, no_update, *UNCHANGED, no_update]
    if status.state == "finished":
        from cocoseg.pipeline.core.workspace import read_json

        result = read_json(entry.folder / "result.json", default={}) or {}
        report = report_view(dataset, split, result.get("report", {}))
        return [None, report, True, {"dataset": dataset, "split": split}, *FIELDS.marks(), None]
    if status.state == "cancelled":
        registered = _registered(dataset, split)
        note = " It is registered, not validated." if registered else " Nothing was registered."
        return [None, alert(f"Cancelled.{note}", "secondary"), True, no_update, *FIELDS.marks(), None]
    message = status.message or status.state
    field = "images" if "image folder" in message or message.startswith("no images") else "annotations"
    return [
        None,
        None,
        True,
        no_update,
        *FIELDS.marks(field, message),
        alert("Nothing was registered.", "warning"),
    ]


def _registered(dataset: str, split: str) -> bool:
    from cocoseg.pipeline.data import get_dataset

    try:
        return split in get_dataset(current_workspace(), dataset).splits
    except (RegistryError, ValueError):
        return False


@callback(
    Output(AddDataset.MESSAGE, "children", allow_duplicate=True),
    Input(AddDataset.CANCEL, "n_clicks"),
    State(AddDataset.QUEUED, "data"),
    prevent_initial_call=True,
)
def cancel_job(clicks, queued):
    """Ask the job to stop (it checks at every progress step)."""
    return cancel_stored_job(clicks, queued)


@callback(
    *MARKS,
    Output(AddDataset.MESSAGE, "children", allow_duplicate=True),
    Output(AddDataset.DONE, "data", allow_duplicate=True),
    Input(AddDataset.REMOVE, "n_clicks"),
    State(AddDataset.NAME, "value"),
    prevent_initial_call=True,
)
def remove(_clicks, name):
    """Forget the dataset named in the form (its files stay)."""
    name = (name or "").strip()
    if not name:
        return [*FIELDS.marks("name", "give the name of the dataset to remove"), None, no_update]
    try:
        remove_dataset(current_workspace(), name)
    except (RegistryError, UnsafePathError) as error:
        return [*FIELDS.marks("name", str(error)), None, no_update]
    return [
        *FIELDS.marks(),
        alert(f"Removed {name} (its files are untouched).", "secondary"),
        {"removed": name},
    ]


@callback(
    Output(AddDataset.BROWSE_PATH, "children"),
    Output(AddDataset.BROWSE_LIST, "children"),
    Output(AddDataset.ANNOTATIONS, "value"),
    Input(AddDataset.BROWSE_ROOT, "value"),
    Input({"type": AddDataset.BROWSE_ENTRY, "path": ALL}, "n_clicks"),
    Input(AddDataset.BROWSE_UP, "n_clicks"),
    State(AddDataset.BROWSE_PATH, "children"),
)
def browse(root, entry_clicks, _up, current):
    """Open a folder (never outside the allowed roots); a .json file fills the annotation field.

    Every value here comes from the browser (a dropdown, the clicked entry's id, the path shown),
    so each is checked against the roots: a forged one opens the first root instead.
    """
    roots = browse_roots()
    if not roots:
        return "", [], no_update
    chosen = Path(root).resolve() if root else None
    base = chosen if chosen in roots else roots[0]
    target = base
    if ctx.triggered_id == AddDataset.BROWSE_UP and current:
        target = Path(current).parent
    elif isinstance(ctx.triggered_id, dict):
        if not any(entry_clicks or []):
            return no_update, no_update, no_update
        target = Path(str(ctx.triggered_id.get("path", "")))
    resolved = target.resolve()
    if not any(resolved == allowed or allowed in resolved.parents for allowed in roots):
        resolved = base
    if resolved.is_file():
        return no_update, no_update, str(resolved) if resolved.suffix.lower() == ".json" else no_update
    return str(resolved), browse_entries(resolved), no_update


@callback(
    Output(AddDataset.IMAGES, "value"),
    Input(AddDataset.BROWSE_USE_IMAGES, "n_clicks"),
    State(AddDataset.BROWSE_PATH, "children"),
    prevent_initial_call=True,
)
def use_folder_for_images(_clicks, current):
    return current or no_update
