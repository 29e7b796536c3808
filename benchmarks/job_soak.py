"""Job start/cancel soak (issue 19): N cycles against the registry; no orphan process, no job stuck active.

Each cycle starts one job exactly as a background callback does (``runner.run_and_watch`` in a
thread: a fresh ``python -m cocoseg.pipeline.jobs`` interpreter, watched to its end) and, every
``PAIR_EVERY``-th cycle, a second one at once, which must wait ``queued`` for the training slot
(``jobs.slots``; one slot, the default). The kind is the test-only ``hold`` (a detached job that
takes a training slot and only counts, ``COCOSEG_TEST_JOBS=1``), so the figures are the job
machinery's own: process start, slot wait, heartbeat, cancel and supervision.

Each job is cancelled through the registry (``control.cancel``) at a seeded random moment: a
fifth of them (``EARLY_SHARE``) at once, 0 to ``EARLY_DELAY_S`` after the start, usually before
their process has taken the entry; the others once their process has taken it (its pid
recorded: waiting for the slot or running), plus 0 to ``MAX_DELAY_S``. So every path runs,
whatever the machine's speed: cancelled before it started, while it waited for the slot, and
while it ran. The watcher returns when the job process has ended. The soak records the state
each job was in when cancelled, its outcome, and the seconds from the cancel to the end of its
process (including, for an early cancel, the interpreter's start). At the end, and every
``CHECK_EVERY`` cycles, it checks that

- no process started by the soak is left (``psutil`` children of this process, recursively);
- no registry entry is still ``queued`` or ``running`` after ``supervise`` (the registry's truth).

Usage: ``python benchmarks/job_soak.py [--cycles 200] [--json out.json]``; prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 19
PAIR_EVERY = 4
MAX_DELAY_S = 1.5
EARLY_SHARE = 0.2
EARLY_DELAY_S = 0.3
TAKE_TIMEOUT_S = 120  # a loaded machine can take a while to start an interpreter
CHECK_EVERY = 25
HOLD_REQUEST = {"steps": 600, "step_seconds": 0.05}  # 30 s: always cancelled long before


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


def _live_children() -> set[int]:
    """This process's live descendants (zombies and processes gone meanwhile left out)."""
    import psutil

    alive = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _leftovers(workspace, before: set[int]) -> tuple[list[int], list[str]]:
    """Processes this soak started that still run (not those alive ``before`` it, such as a test
    session's servers), and registry entries still active after supervise."""
    from cocoseg.pipeline.jobs import observe, supervise
    from cocoseg.pipeline.jobs.registry import RunFolder

    alive = sorted(_live_children() - before)
    active = []
    for parent in (workspace.runs_dir, workspace.jobs_dir):
        for folder in sorted(parent.iterdir()) if parent.is_dir() else ():
            entry = RunFolder(folder)
            supervise(entry)
            if observe(entry).active:
                active.append(folder.name)
    return alive, active


def _one_job(workspace, rng: random.Random, record: dict) -> threading.Thread:
    """Queue a hold job, start its watcher thread, cancel it after a random delay (in another thread)."""
    from cocoseg.pipeline.jobs import cancel, observe, queue, run_and_watch

    entry = queue(workspace, "hold", HOLD_REQUEST)
    early = rng.random() < EARLY_SHARE
    delay = rng.uniform(0, EARLY_DELAY_S if early else MAX_DELAY_S)
    record.update(entry=entry.name, early=early, delay_s=round(delay, 3))

    def watch() -> None:
        outcome = run_and_watch(workspace, "hold", entry.name, "soak")
        record["ended"] = time.perf_counter()
        record["outcome"] = outcome.status

    def cancel_later() -> None:
        deadline = time.monotonic() + TAKE_TIMEOUT_S
        while not early and entry.status().get("pid") is None and "ended" not in record:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(delay)
        status = observe(entry)
        record["cancelled_when"] = "waiting" if status.raw.get("waiting") else status.state
        record["cancelled"] = time.perf_counter()
        cancel(entry, "soak")

    watcher = threading.Thread(target=watch)
    canceller = threading.Thread(target=cancel_later)
    watcher.start()
    canceller.start()
    return threading.Thread(target=lambda: (canceller.join(), watcher.join()))


def run(cycles: int = 200, home: Path | None = None, seed: int = SEED) -> dict:
    """Run the soak; returns the figures (and every job's record)."""
    os.environ["COCOSEG_TEST_JOBS"] = "1"
    from cocoseg.pipeline.core import settings as settings_module
    from cocoseg.pipeline.core.workspace import Workspace

    home = home or Path(tempfile.mkdtemp(prefix="cocoseg-soak-"))
    os.environ["COCOSEG_HOME"] = str(home)
    settings_module.get_settings.cache_clear()
    workspace = Workspace(home).ensure()
    rng = random.Random(seed)
    records: list[dict] = []
    checks = []
    before = _live_children()
    started = time.perf_counter()
    for cycle in range(1, cycles + 1):
        jobs = 2 if cycle % PAIR_EVERY == 0 else 1
        waiters = []
        for _ in range(jobs):
            record = {"cycle": cycle}
            records.append(record)
            waiter = _one_job(workspace, rng, record)
            waiter.start()
            waiters.append(waiter)
        for waiter in waiters:
            waiter.join(timeout=120)
            if waiter.is_alive():
                raise RuntimeError(f"cycle {cycle}: a job did not end within 120 s of its cancel")
        if cycle % CHECK_EVERY == 0 or cycle == cycles:
            alive, active = _leftovers(workspace, before)
            checks.append({"cycle": cycle, "orphans": alive, "active": active})
    seconds = time.perf_counter() - started
    stops = [record["ended"] - record["cancelled"] for record in records if "ended" in record]
    outcomes: dict[str, int] = {}
    moments: dict[str, int] = {}
    for record in records:
        outcomes[record.get("outcome", "none")] = outcomes.get(record.get("outcome", "none"), 0) + 1
        moment = record.get("cancelled_when", "none")
        moments[moment] = moments.get(moment, 0) + 1
    return {
        "cycles": cycles,
        "jobs": len(records),
        "seconds": round(seconds, 1),
        "outcomes": outcomes,
        "cancelled_when": moments,
        "cancel_to_end_s": {
            "p50": round(statistics.median(stops), 3) if stops else None,
            "p95": round(_percentile(stops, 0.95), 3),
            "max": round(max(stops), 3) if stops else None,
        },
        "orphans": sorted({pid for check in checks for pid in check["orphans"]}),
        "stuck": sorted({name for check in checks for name in check["active"]}),
        "checks": len(checks),
        "records": records,
    }


def format_table(results: dict) -> str:
    stop = results["cancel_to_end_s"]
    return "\n".join(
        [
            f"cycles {results['cycles']}, jobs {results['jobs']}, {results['seconds']} s",
            f"cancelled while: {results['cancelled_when']}",
            f"outcomes: {results['outcomes']}",
            f"cancel -> process ended: p50 {stop['p50']} s, p95 {stop['p95']} s, max {stop['max']} s",
            f"orphan processes: {len(results['orphans'])}; "
            f"entries left queued/running: {len(results['stuck'])} ({results['checks']} checks)",
        ]
    )


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--json", type=Path, help="write every figure and record here")
    options = parser.parse_args(arguments)
    results = run(options.cycles)
    print(format_table(results))
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))
    return 0 if not results["orphans"] and not results["stuck"] else 1


if __name__ == "__main__":
    sys.exit(main())
