"""``cocoseg jobs``: the job runner's entry point, and every background job in the registry.

``jobs run KIND NAME`` does by hand (to retry a queued job) what the app and the Celery workers
start as a new interpreter for each job: ``python -m cocoseg.pipeline.jobs KIND NAME``, the same
without the command line's imports (``cocoseg.pipeline.jobs.runner``).
"""

from __future__ import annotations

import time

from cocoseg.cli.output import write
from cocoseg.pipeline.core import Settings, Workspace
from cocoseg.pipeline.jobs import KINDS, TEST_KINDS, RunFolder, cancel, find_entry, observe, supervise
from cocoseg.pipeline.jobs.execution import run_and_report


def command_jobs_run(arguments, settings: Settings, workspace: Workspace) -> int:
    """Run one queued job in this process; 0 when it finished or was cancelled, 1 when it failed."""
    return run_and_report(workspace, arguments.kind, arguments.name, arguments.export)


def _entries(workspace: Workspace) -> list[RunFolder]:
    folders = []
    for parent in (workspace.runs_dir, workspace.jobs_dir):
        if parent.is_dir():
            folders += [folder for folder in parent.iterdir() if (folder / "status.json").is_file()]
    return [RunFolder(folder) for folder in sorted(folders, key=lambda folder: folder.name)]


def command_jobs_list(arguments, settings: Settings, workspace: Workspace) -> int:
    """Every registry entry with its observed state (``stalled`` included), active ones by default."""
    shown = 0
    for entry in _entries(workspace):
        supervise(entry)
        status = observe(entry)
        if not arguments.all and not status.active:
            continue
        shown += 1
        age = (
            f"heartbeat {status.heartbeat_age:.0f} s ago"
            if status.heartbeat_age is not None and status.active
            else ""
        )
        note = status.stalled_text if status.state == "stalled" else status.message
        write(f"{entry.name:<44} {status.state:<11} {age:<22} {note}".rstrip())
    if not shown:
        write("no active jobs" + ("" if arguments.all else " (--all lists ended ones too)"))
    return 0


def command_jobs_cancel(arguments, settings: Settings, workspace: Workspace) -> int:
    """Cancel a job (a training run or any other job) through the registry, whoever started it."""
    entry = find_entry(workspace, arguments.name)
    write(cancel(entry, "cli"))
    return _wait_until_ended(entry, arguments.wait)


def _wait_until_ended(entry: RunFolder, seconds: float) -> int:
    """Supervise the cancelled job for up to ``seconds`` (a stalled one is killed after its grace period)."""
    deadline = time.monotonic() + seconds
    while observe(entry).active and time.monotonic() < deadline:
        supervise(entry)
        time.sleep(0.5)
    status = observe(entry)
    write(
        f"{entry.name}: {status.state}"
        + (f" ({status.message})" if status.message and not status.active else "")
    )
    return 0


def add_job_commands(commands) -> None:
    """Register ``jobs run|list|cancel`` on the top-level subparsers."""
    jobs = commands.add_parser("jobs", help="background jobs (each runs in its own process)").add_subparsers(
        dest="jobs_command", required=True
    )
    run = jobs.add_parser(
        "run", help="run one queued job in this process (the app starts this for every job)"
    )
    run.add_argument(
        "kind",
        choices=list(KINDS),
        metavar="KIND",
        help=", ".join(kind for kind in KINDS if kind not in TEST_KINDS),
    )
    run.add_argument("name", help="the run (train, resume) or job entry (the others)")
    run.add_argument("--export", action="store_true", help="train/resume: export to ONNX when finished")
    run.set_defaults(handler=command_jobs_run)
    listing = jobs.add_parser(
        "list", help="active jobs with their state (stalled when the heartbeat stopped)"
    )
    listing.add_argument("--all", action="store_true", help="ended jobs too")
    listing.set_defaults(handler=command_jobs_list)
    cancel_parser = jobs.add_parser(
        "cancel", help="ask a job to stop; one that cannot is killed after a grace period"
    )
    cancel_parser.add_argument("name")
    cancel_parser.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help=(
            "wait this long for the job to end, killing it after the grace period "
            "(default 30; 0: return at once)"
        ),
    )
    cancel_parser.set_defaults(handler=command_jobs_cancel)
