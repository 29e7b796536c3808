"""Preparation jobs' registry entries (``<workspace>/jobs/prepare-*``): queue, find, list, show.

No TensorFlow: the web process queues a job here (errors appear beside the form before
anything starts) and reads what its card shows; ``prepare.jobs.run_prepare_job`` is the
body that runs in the job process.
"""

from __future__ import annotations

import dataclasses

from cocoseg.pipeline.core.workspace import Workspace, check_name
from cocoseg.pipeline.jobs.control import observe
from cocoseg.pipeline.jobs.registry import RunError, RunFolder, create_run
from cocoseg.pipeline.prepare.config import PrepareConfig, config_to_dict
from cocoseg.pipeline.prepare.plan import plan


def create_prepare_job(workspace: Workspace, config: PrepareConfig, max_bytes: int) -> RunFolder:
    """Check ``config`` against the dataset (splits, label map) and queue a job for it.

    Raises:
        ConfigError / RegistryError / CocoFileError: before anything is recorded.
    """
    planned = plan(workspace, config, max_bytes)
    workspace.jobs_dir.mkdir(parents=True, exist_ok=True)
    images = sum(len(split.tasks) for split in planned.splits)
    job = create_run(
        workspace, {"kind": "prepare", **config_to_dict(config)}, "prepare", parent=workspace.jobs_dir
    )
    job.set_status("queued", target=planned.folder.name, images=images)
    return job


def get_prepare_job(workspace: Workspace, name: str) -> RunFolder:
    check_name(name, "job")
    folder = workspace.jobs_dir / name
    if not (folder / "config.json").is_file():
        raise RunError(f"no preparation job called {name!r}")
    return RunFolder(folder)


def list_prepare_jobs(workspace: Workspace) -> list[RunFolder]:
    """Preparation jobs, newest first."""
    if not workspace.jobs_dir.is_dir():
        return []
    folders = [
        folder
        for folder in workspace.jobs_dir.iterdir()
        if folder.name.startswith("prepare-") and (folder / "config.json").is_file()
    ]
    return [
        RunFolder(folder)
        for folder in sorted(folders, key=lambda folder: folder.stat().st_mtime, reverse=True)
    ]


def active_duplicate(workspace: Workspace, config: PrepareConfig) -> str | None:
    """The active job already preparing exactly these settings (a double click, a second tab), if any."""
    wanted = {"kind": "prepare", **config_to_dict(config)}
    return next(
        (job.name for job in list_prepare_jobs(workspace) if observe(job).active and job.config() == wanted),
        None,
    )


@dataclasses.dataclass(frozen=True)
class PrepareJobView:
    """What a preparation job's card shows; plain JSON values, so polls compare them to redraw on change.

    Attributes:
        name: the job's registry name.
        status: its ``RunStatus.state`` (queued, running, stalled, finished...).
        cancelling: a cancel was requested and the job is still active.
        settings: one line of what it prepares (dataset, splits, label map, size).
        done, total: images written so far and images to write (0 before it is known).
        rate: images per second, once measured.
        eta: seconds left, once estimated.
        target: the prepared set's folder name (the published one once finished).
        message: the line shown under the state (why it failed, how long it has been silent).
    """

    name: str
    status: str
    cancelling: bool
    settings: str
    done: int
    total: int
    rate: float | None
    eta: float | None
    target: str
    message: str


def job_view(job: RunFolder) -> PrepareJobView:
    """The card's facts for ``job``, from its ``RunStatus`` and the settings it was queued with."""
    observed, config = observe(job), job.config() or {}
    status, progress = observed.raw, observed.progress
    settings = (
        f"{config.get('dataset', '?')} · {', '.join(config.get('splits', []))} · "
        f"{config.get('labels') or 'auto'} · {config.get('size', '?')} px"
    )
    return PrepareJobView(
        name=job.name,
        status=observed.state,
        cancelling=observed.cancelling,
        settings=settings,
        done=progress.get("done", 0),
        total=progress.get("total") or status.get("images") or 0,
        rate=progress.get("images_per_second"),
        eta=progress.get("eta_seconds"),
        target=status.get("prepared") or status.get("target", ""),
        message=observed.shown_message,
    )
