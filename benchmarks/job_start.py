"""What a job process costs before its body runs: the job entry point against the whole command line.

Every background job runs in a new interpreter (``cocoseg.pipeline.jobs.runner``). The runner
starts ``python -m cocoseg.pipeline.jobs KIND NAME``; before, it started ``python -m cocoseg
jobs run KIND NAME``, which imports every sub-command (ONNX among them) first. Both still work
(the second by hand), so this measures them in one run, alternating, on the same job: the
test-only ``sleep`` kind with one step of no length (``COCOSEG_TEST_JOBS=1``), so the wall and
CPU seconds are the interpreter's start, the imports and the registry's bookkeeping alone.

Usage: python benchmarks/job_start.py [--repeats 9] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.coco_scale import machine_description  # noqa: E402
from cocoseg.pipeline.core.devices import cpu_info  # noqa: E402

ENTRY_POINTS = {
    "job entry point (python -m cocoseg.pipeline.jobs)": ["-m", "cocoseg.pipeline.jobs"],
    "command line (python -m cocoseg jobs run)": ["-m", "cocoseg", "jobs", "run"],
}


def _one(home: Path, arguments: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one job process, from its start to its exit."""
    from cocoseg.pipeline.core.workspace import Workspace
    from cocoseg.pipeline.jobs import observe, queue

    entry = queue(Workspace(home), "sleep", {"steps": 1, "step_seconds": 0.0})
    environment = {**os.environ, "COCOSEG_HOME": str(home), "COCOSEG_TEST_JOBS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *arguments, "sleep", entry.name],
        cwd=ROOT,
        env=environment,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if observe(entry).state != "finished":
        raise RuntimeError(f"{entry.name} ended {observe(entry).state}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def run(repeats: int = 9) -> dict:
    """Alternate the two entry points ``repeats`` times each (after one warm-up of each)."""
    samples: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in ENTRY_POINTS}
    with tempfile.TemporaryDirectory(prefix="cocoseg-job-start-") as folder:
        home = Path(folder) / "home"
        from cocoseg.pipeline.core.workspace import Workspace

        Workspace(home).ensure()
        for arguments in ENTRY_POINTS.values():
            _one(home, arguments)  # the file cache warm for both
        for _ in range(repeats):
            for name, arguments in ENTRY_POINTS.items():
                wall, cpu = _one(home, arguments)
                samples[name]["wall"].append(wall)
                samples[name]["cpu"].append(cpu)
    medians = {
        name: {kind: statistics.median(values) for kind, values in figures.items()}
        for name, figures in samples.items()
    }
    new, old = (medians[name] for name in ENTRY_POINTS)
    return {
        "machine": machine_description(),
        "cpu_flags": cpu_info().named_flags,
        "load_average": list(os.getloadavg()),
        "repeats": repeats,
        "samples": samples,
        "medians": medians,
        "wall_ratio": old["wall"] / new["wall"],
        "cpu_ratio": old["cpu"] / new["cpu"],
    }


def format_table(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}; CPU flags: {', '.join(results['cpu_flags']) or 'none known'}; "
        f"load average at the end {results['load_average'][0]:.2f}",
        f"{results['repeats']} runs of each, alternating; medians",
        "",
        "| job process | wall s | CPU s |",
        "|---|---:|---:|",
    ]
    for name, figures in results["medians"].items():
        lines.append(f"| {name} | {figures['wall']:.2f} | {figures['cpu']:.2f} |")
    lines += [
        "",
        f"The command line costs {results['wall_ratio']:.1f}x the wall time and "
        f"{results['cpu_ratio']:.1f}x the CPU time of the job entry point.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args(argv)
    results = run(arguments.repeats)
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2))
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
