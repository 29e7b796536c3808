"""Your own dataset at COCO scale (issue 20): the CLI's cold statistics, pycocotools, and the Explore page.

Writes a COCO-train-shaped file (``coco_scale.write_synthetic_coco``: 118,287 images, ~805k
annotations) whose categories are named ``class_1`` ... ``class_80`` (not COCO's names, so the
default label map is ``all``), its images absent (a one-pixel placeholder in the image folder).
Then, one after the other:

1. pycocotools ``COCO(path)`` in a fresh process: seconds and peak RSS (the memory reference);
2. ``cocoseg data add`` (its streaming structural check included) into workspace A, then
   ``cocoseg data stats NAME`` cold in a fresh process into that workspace: seconds and peak RSS;
3. workspace B: ``cocoseg data add`` the same file, then ``cocoseg serve`` and the system Chromium.
   ``/explore?split=own/train`` in a new page (statistics not cached). In the page
   (``performance.now()``, from the navigation's start): the first frame where the statistics
   job's progress line shows, and the first frame where the summary reads the label map ``all``
   and the chart has its bars. Meanwhile the server's RSS (its own process, not the job's) and the
   job process's RSS are sampled every 100 ms;
4. cached: switching the split dropdown between ``own/train`` and ``demo/val`` (the demo's statistics
   computed once before) until the new split's summary and chart show, ``--switches`` times;
   and reloads of ``/explore?split=own/train`` until the summary and chart show, ``--reloads`` times.

Targets (issue 20): progress visible within 1 s; first Explore total at most 1.3x the CLI's cold
``data stats``; switching p50 <= 2 s; reload p50 <= 1.5 s; the server's peak RSS while the job runs
under pycocotools' ``COCO()`` peak.

Usage: python benchmarks/own_dataset.py [--images 118287] [--annotations-per-image 6.8]
       [--switches 6] [--reloads 6] [--json FILE] [--file EXISTING.json] [--core 1]

``--core 1`` runs pycocotools, the CLI, the server and its jobs on CPU 1 and this script with
Chromium on the others, so the browser's work never competes with what is measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.app_latency import serving, summarise  # noqa: E402
from benchmarks.browser import launch_chromium  # noqa: E402
from benchmarks.coco_scale import CHILD_PYCOCOTOOLS, _run_child, machine_description, write_synthetic_coco  # noqa: E402
from benchmarks.server_process import clean_environment  # noqa: E402
from cocoseg.app.ids import Explore  # noqa: E402

logger = logging.getLogger("benchmarks.own_dataset")

NAME = "own"
STEP_TIMEOUT_MS = 600_000
TARGET_PROGRESS_MS = 1000.0
TARGET_FIRST_RATIO = 1.3
TARGET_SWITCH_MS = 2000.0
TARGET_RELOAD_MS = 1500.0

CHILD_CLI_STATS = """
import contextlib, io, json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from cocoseg import cli
captured = io.StringIO()
started = time.perf_counter()
with contextlib.redirect_stdout(captured):
    code = cli.main(["data", "stats", sys.argv[2], "--json"])
seconds = time.perf_counter() - started
stats = json.loads(captured.getvalue())["train"]
print(json.dumps({"exit": code, "seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "cached": stats["cached"], "label_map": stats["label_map"]["name"],
                  "images": stats["totals"]["images"], "annotations": stats["totals"]["annotations"]}))
"""

# The first frame where the statistics job's progress shows, and where the split's view is drawn.
_PROGRESS_SHOWN = """([progress]) => {
    const line = document.getElementById(progress);
    return line && line.textContent.includes('Computing the statistics') ? performance.now() : false;
}"""
_VIEW_READY = """([chart, summary, split, labels]) => {
    const plot = document.querySelector('#' + chart + ' .js-plotly-plot');
    const bars = document.querySelector('#' + chart + ' .bars path');
    const cards = document.getElementById(summary);
    const meta = plot && plot.layout && plot.layout.meta;
    return bars && meta && meta.ready && meta.split === split && cards
        && cards.textContent.includes('label map ' + labels) ? performance.now() : false;
}"""


def _environment(home: Path) -> dict:
    return clean_environment(COCOSEG_HOME=str(home), COCOSEG_MAX_ANNOTATION_MB="4096")


def register(path: Path, images: Path, home: Path) -> float:
    """``cocoseg data add`` with its streaming check; returns its wall seconds (fresh process)."""
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cocoseg",
            "data",
            "add",
            NAME,
            "--annotations",
            str(path),
            "--images",
            str(images),
        ],
        cwd=ROOT,
        env=_environment(home),
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


class RssSampler:
    """Peak RSS of the server process alone, and of its job processes (children), every 100 ms."""

    def __init__(self, server_pid: int) -> None:
        import psutil

        self.server = psutil.Process(server_pid)
        self.server_mb = 0.0
        self.jobs_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self.server_mb = max(self.server_mb, self.server.memory_info().rss / 1024**2)
                for child in self.server.children(recursive=True):
                    if "cocoseg.pipeline.jobs" in child.cmdline():
                        self.jobs_mb = max(self.jobs_mb, child.memory_info().rss / 1024**2)
            except psutil.Error:
                pass
            time.sleep(0.25)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()


def _server_pid() -> int:
    """The pid of the ``cocoseg serve`` process this benchmark started (``app_latency.serving``)."""
    import psutil

    for child in psutil.Process().children():
        try:
            if "serve" in child.cmdline():
                return child.pid
        except psutil.Error:
            continue
    raise RuntimeError("no cocoseg serve child process")


def _visit(page, url: str, split: str, labels: str, progress: bool = False) -> dict:
    page.goto(url, wait_until="commit")
    figures = {}
    if progress:
        figures["progress_ms"] = float(
            page.wait_for_function(_PROGRESS_SHOWN, arg=[Explore.STATS_PROGRESS], polling="raf").json_value()
        )
    figures["ready_ms"] = float(
        page.wait_for_function(
            _VIEW_READY, arg=[Explore.CLASSES, Explore.SUMMARY, split, labels], polling="raf"
        ).json_value()
    )
    return figures


def _switch(page, split: str, labels: str) -> float:
    """Choose ``split`` in the dropdown; milliseconds until its view is drawn."""
    page.locator(f"#{Explore.DATASET}").click()
    started = page.evaluate("performance.now()")
    page.get_by_role("option", name=split, exact=True).click()
    ready = page.wait_for_function(
        _VIEW_READY, arg=[Explore.CLASSES, Explore.SUMMARY, split, labels], polling="raf"
    ).json_value()
    return float(ready) - float(started)


def measure_app(
    path: Path, images: Path, home: Path, switches: int, reloads: int, driver: set[int] | None = None
) -> dict:
    """The server (and the jobs it starts) on this process's CPUs; the browser on ``driver``'s."""
    results = {"data_add_seconds": register(path, images, home)}
    with serving(home, home / "server.log") as url:
        server_cpus = os.sched_getaffinity(0)
        if driver:
            os.sched_setaffinity(0, driver)  # Playwright's driver and Chromium start from here
        try:
            results.update(_browse(url, switches, reloads))
        finally:
            os.sched_setaffinity(0, server_cpus)
    return results


def _browse(url: str, switches: int, reloads: int) -> dict:
    from playwright.sync_api import sync_playwright

    results: dict = {}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            _visit(page, url + "/explore?split=demo/val", "demo/val", "coco80")  # the demo's own statistics
            with RssSampler(_server_pid()) as sampler:
                first = _visit(
                    page, url + f"/explore?split={NAME}/train", f"{NAME}/train", "all", progress=True
                )
            results["first"] = {
                **first,
                "server_peak_rss_mb": sampler.server_mb,
                "job_peak_rss_mb": sampler.jobs_mb,
            }
            logger.info("first Explore: %s", results["first"])
            switch_ms = []
            for index in range(switches):
                split, labels = ("demo/val", "coco80") if index % 2 == 0 else (f"{NAME}/train", "all")
                switch_ms.append(_switch(page, split, labels))
            results["switch"] = summarise(switch_ms) | {"values": switch_ms}
            reload_ms = [
                _visit(page, url + f"/explore?split={NAME}/train", f"{NAME}/train", "all")["ready_ms"]
                for _ in range(reloads)
            ]
            results["reload"] = summarise(reload_ms) | {"values": reload_ms}
        finally:
            browser.close()
    return results


def _count(path: Path) -> dict[str, int]:
    from cocoseg.pipeline.data.coco import check_structure

    counts = check_structure(path, 4 * 1024**3)
    return {"images": counts["images"], "annotations": counts["annotations"]}


def run(
    images: int,
    per_image: float,
    switches: int,
    reloads: int,
    keep: bool = False,
    file: Path | None = None,
    core: int | None = None,
) -> dict:
    """Measure every case. ``file``: an existing file of ``write_synthetic_coco(..., own_names=True)``
    (else one is written, and deleted at the end unless ``keep``). ``core``: the CPU the measured
    processes run on (pycocotools, the CLI, the server and its jobs); this script and the browser
    then run on the other CPUs."""
    folder = Path(tempfile.mkdtemp(prefix="cocoseg-own-"))
    everywhere = set(os.sched_getaffinity(0))
    measured = {core} if core is not None else everywhere
    driver = (everywhere - measured) or everywhere
    if file is None:
        path = folder / "instances_own.json"
        started = time.perf_counter()
        counts = write_synthetic_coco(path, images, per_image, own_names=True)
        logger.info(
            "wrote %s (%.0f MB) in %.0f s", path, path.stat().st_size / 1024**2, time.perf_counter() - started
        )
    else:
        path, keep = Path(file), True
        counts = _count(path)
    image_folder = folder / "images"
    image_folder.mkdir()
    from PIL import Image

    Image.new("RGB", (1, 1)).save(image_folder / "placeholder.png")
    cli_home = folder / "workspace-cli"
    os.sched_setaffinity(0, measured)  # the measured children inherit it
    try:
        results = {
            "file_mb": path.stat().st_size / 1024**2,
            "counts": counts,
            "machine": machine_description(),
            "measured_cpus": sorted(measured),
            "driver_cpus": sorted(driver),
            "pycocotools": _run_child(CHILD_PYCOCOTOOLS, str(path)),
        }
        results["cli_data_add_seconds"] = register(path, image_folder, cli_home)
        results["cli_cold"] = _run_child(CHILD_CLI_STATS, str(ROOT), NAME, environment=_environment(cli_home))
        results["app"] = measure_app(path, image_folder, folder / "workspace-app", switches, reloads, driver)
    finally:
        os.sched_setaffinity(0, everywhere)
    if not keep:
        path.unlink()
    return results


def target_checks(results: dict) -> list[tuple[str, str, bool]]:
    app, cli = results["app"], results["cli_cold"]
    first_s = app["first"]["ready_ms"] / 1000
    ratio = first_s / cli["seconds"]
    return [
        (
            "progress visible",
            f"{app['first']['progress_ms']:.0f} ms (<= {TARGET_PROGRESS_MS:.0f})",
            app["first"]["progress_ms"] <= TARGET_PROGRESS_MS,
        ),
        (
            "first Explore total",
            f"{first_s:.1f} s = {ratio:.2f}x the CLI's cold {cli['seconds']:.1f} s "
            f"(<= {TARGET_FIRST_RATIO}x)",
            ratio <= TARGET_FIRST_RATIO,
        ),
        (
            "switching split p50",
            f"{app['switch']['p50']:.0f} ms (<= {TARGET_SWITCH_MS:.0f})",
            app["switch"]["p50"] <= TARGET_SWITCH_MS,
        ),
        (
            "reload p50",
            f"{app['reload']['p50']:.0f} ms (<= {TARGET_RELOAD_MS:.0f})",
            app["reload"]["p50"] <= TARGET_RELOAD_MS,
        ),
        (
            "server peak RSS while the job runs",
            f"{app['first']['server_peak_rss_mb']:.0f} MB vs pycocotools "
            f"{results['pycocotools']['peak_rss_mb']:.0f} MB",
            app["first"]["server_peak_rss_mb"] < results["pycocotools"]["peak_rss_mb"],
        ),
    ]


def format_table(results: dict) -> str:
    counts, app = results["counts"], results["app"]
    lines = [
        f"File: {results['file_mb']:.0f} MB, {counts['images']:,} images, "
        f"{counts['annotations']:,} annotations, categories class_1 ... class_80, images absent.",
        f"Machine: {results['machine']}; measured processes (pycocotools, the CLI, the server and its "
        f"jobs) on CPU {results['measured_cpus']}, this script and Chromium on {results['driver_cpus']}.",
        "",
        "| case | seconds | peak RSS MB |",
        "|---|---:|---:|",
        f"| pycocotools `COCO(path)` | {results['pycocotools']['seconds']:.1f} "
        f"| {results['pycocotools']['peak_rss_mb']:.0f} |",
        f"| `cocoseg data add` (streaming check, whole command) | {results['cli_data_add_seconds']:.1f} "
        "| - |",
        f"| `cocoseg data stats` cold | {results['cli_cold']['seconds']:.1f} "
        f"| {results['cli_cold']['peak_rss_mb']:.0f} |",
        f"| Explore, first visit: progress shown | {app['first']['progress_ms'] / 1000:.2f} | - |",
        f"| Explore, first visit: summary and chart | {app['first']['ready_ms'] / 1000:.1f} "
        f"| server {app['first']['server_peak_rss_mb']:.0f}, job {app['first']['job_peak_rss_mb']:.0f} |",
        f"| Explore, switching split (cached), p50 / p95 | {app['switch']['p50'] / 1000:.2f} / "
        f"{app['switch']['p95'] / 1000:.2f} | - |",
        f"| Explore, reload (cached), p50 / p95 | {app['reload']['p50'] / 1000:.2f} / "
        f"{app['reload']['p95'] / 1000:.2f} | - |",
        "",
        "| target | measured | holds |",
        "|---|---|---|",
    ]
    for name, measured, holds in target_checks(results):
        lines.append(f"| {name} | {measured} | {'yes' if holds else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=118_287)
    parser.add_argument("--annotations-per-image", type=float, default=6.8)
    parser.add_argument("--switches", type=int, default=6)
    parser.add_argument("--reloads", type=int, default=6)
    parser.add_argument("--json", help="write the raw figures here")
    parser.add_argument(
        "--file", type=Path, help="an existing file from write_synthetic_coco(own_names=True)"
    )
    parser.add_argument(
        "--core", type=int, help="run the measured processes on this CPU, the browser on the others"
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run(
        arguments.images,
        arguments.annotations_per_image,
        arguments.switches,
        arguments.reloads,
        file=arguments.file,
        core=arguments.core,
    )
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(results, indent=2))
    sys.stdout.write(format_table(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
