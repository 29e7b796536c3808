"""Preparation jobs' registry entries (``<workspace>/jobs/prepare-*``): queue, find, list.

No TensorFlow: the web process queues a job here (errors appear beside the form before
anything starts); ``prepare.jobs.run_prepare_job`` is the body that runs in the job process.
"""

from __future__ import annotations

from cocoseg.pipeline.core.workspace import Workspace, check_name
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
