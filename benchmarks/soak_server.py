"""Serving soak (issue 19): N upload -> segment cycles through the real server, with its memory sampled.

What runs:

- a workspace in a temporary folder holding one model, ``bench-unet-<size>`` (the random default
  UNet as ONNX, ``benchmarks.app_latency.build_workspace``);
- the real server, ``python -m cocoseg serve --port P`` (waitress, the production server; the
  default access settings: loopback, no token), ``COCOSEG_HOME`` that workspace;
- this process as the browser, over HTTP with one kept-alive connection, sending what the Segment
  page sends for one upload: the upload callback (``segment-upload.contents``: a 640x480 JPEG
  as a data URL, a new picture under a new name each cycle, the uploads list carried back as the
  browser does), the segment callback for the key it returned (model, ``fp32``), and the display
  picture ``/uploads/<key>.jpg``. A cycle's latency is the three requests together.

After each cycle the server's resident memory (``psutil``, the server process plus any child) is
sampled. A cycle is an error when a request does not answer 200, the upload is refused, or the
segment callback returns no mask layer (``data:image/png``).

Targets (issue 19): no error; resident memory grows by at most 100 MB from the end of the first
``--warmup`` (100) cycles to any later sample; p95 latency stable within 20 %: the p95 of the last
window of ``--window`` (100) cycles within 20 % of the p95 of the first window after the warm-up.

Wall-clock latency on a shared machine follows the neighbours' load, so the server's own CPU
time per cycle (user + system of the server process, ``psutil``) is measured beside it: a server
that did more work per cycle as it ran (a cache or list growing with every upload) would show
there whatever the load, and it is judged by the same 20 % rule.
Each upload also stays in the workspace cache for an hour (``cocoseg.pipeline.inference.uploads``):
that is disk, not memory, and its size at the end is reported.

Usage: python benchmarks/soak_server.py [--cycles 1000] [--warmup 100] [--window 100] [--size 256]
       [--json results.json]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import http.client
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from benchmarks.app_latency import build_workspace, summarise, upload_pictures  # noqa: E402
from benchmarks.coco_scale import machine_description  # noqa: E402
from benchmarks.server_process import page_answers, serving  # noqa: E402
from cocoseg.app.ids import Segment  # noqa: E402
from cocoseg.pipeline.core.devices import cpu_info  # noqa: E402

logger = logging.getLogger("benchmarks.soak_server")

CYCLES = 1000
WARMUP = 100
WINDOW = 100
SIZE = 256
DISTINCT_PICTURES = 50  # demo val images in turn; each cycle sends its picture under a new name
UPLOADS_LISTED = 20  # what the page keeps in its uploads store (segment_panels.UPLOADS_LISTED)
TARGET_RSS_GROWTH_MB = 100.0
TARGET_P95_DRIFT = 0.20


class Client:
    """One kept-alive HTTP connection to the server, reopened if the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, dict]:
        headers = {"Host": f"127.0.0.1:{self.port}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read(), dict(response.headers)
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str) -> tuple[int, bytes, dict]:
        return self.request("GET", path)

    def callback(self, payload: dict) -> tuple[int, dict | None]:
        status, body, _ = self.request("POST", "/_dash-update-component", json.dumps(payload).encode())
        return status, (json.loads(body) if status == 200 else None)


def _callback_outputs(dependencies: list[dict], output_id: str) -> str:
    """The ``output`` string Dash registered for the callback writing ``output_id``."""
    for dependency in dependencies:
        if f"..{output_id}." in dependency["output"] or dependency["output"].startswith(f"{output_id}."):
            return dependency["output"]
    raise RuntimeError(f"no callback writes {output_id}")


def _outputs_list(output: str) -> list[dict]:
    parts = output.strip(".").split("...")
    return [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]} for part in parts]


def upload_payload(output: str, content: str, name: str, uploads: list) -> dict:
    return {
        "output": output,
        "outputs": _outputs_list(output),
        "inputs": [{"id": Segment.UPLOAD, "property": "contents", "value": [content]}],
        "changedPropIds": [f"{Segment.UPLOAD}.contents"],
        "state": [
            {"id": Segment.UPLOAD, "property": "filename", "value": [name]},
            {"id": Segment.UPLOADS, "property": "data", "value": uploads},
        ],
    }


def segment_payload(output: str, key: str, model: str) -> dict:
    return {
        "output": output,
        "outputs": _outputs_list(output),
        "inputs": [
            {"id": Segment.CURRENT, "property": "value", "value": key},
            {"id": Segment.MODEL, "property": "value", "value": model},
            {"id": Segment.VARIANT, "property": "value", "value": "fp32"},
        ],
        "changedPropIds": [f"{Segment.CURRENT}.value"],
        "state": [],
    }


def rss_mb(process: psutil.Process) -> float:
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / 1024**2


def _folder_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1024**2


def run(cycles: int = CYCLES, warmup: int = WARMUP, window: int = WINDOW, size: int = SIZE) -> dict:
    """Build the workspace, start the server, run the cycles; returns the figures and per-cycle rows."""
    if not 0 < warmup < cycles or window <= 0:
        raise ValueError("need 0 < warmup < cycles and a positive window")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cocoseg-soak-") as scratch:
        home = Path(scratch) / "home"
        model = build_workspace(home, size)
        pictures = [
            "data:image/jpeg;base64," + base64.b64encode(data).decode()
            for _, data in upload_pictures(DISTINCT_PICTURES)
        ]
        log_path = Path(scratch) / "server.log"
        rows: list[dict] = []
        errors: list[str] = []
        with serving(home, log_path, ready=page_answers) as (port, process):
            server = psutil.Process(process.pid)
            client = Client(port)
            status, body, headers = client.get("/_dash-dependencies")
            dependencies = json.loads(body)
            upload_output = _callback_outputs(dependencies, Segment.UPLOADS)
            segment_output = _callback_outputs(dependencies, Segment.LAYER)
            server_header = headers.get("Server", "")
            uploads: list = []
            rss_start = rss_mb(server)
            for cycle in range(cycles):
                name = f"soak-{cycle:05d}.jpg"
                problem = None
                begun = time.perf_counter()
                cpu_before = _cpu_seconds(server)
                status, answer = client.callback(
                    upload_payload(upload_output, pictures[cycle % len(pictures)], name, uploads)
                )
                upload_ms = (time.perf_counter() - begun) * 1000
                key = None
                if status != 200 or answer is None:
                    problem = f"upload answered {status}"
                else:
                    response = answer["response"]
                    key = response.get(Segment.CURRENT, {}).get("value")
                    uploads = response.get(Segment.UPLOADS, {}).get("data", uploads)[-UPLOADS_LISTED:]
                    if not key:
                        problem = f"upload refused: {json.dumps(response.get(Segment.MESSAGES))[:200]}"
                segment_ms = picture_ms = 0.0
                if problem is None:
                    mark = time.perf_counter()
                    status, answer = client.callback(segment_payload(segment_output, key, model))
                    segment_ms = (time.perf_counter() - mark) * 1000
                    layer = (answer or {}).get("response", {}).get(Segment.LAYER, {}).get("src") or ""
                    if status != 200 or not layer.startswith("data:image/png"):
                        problem = f"segment answered {status} without a mask layer"
                if problem is None:
                    mark = time.perf_counter()
                    status, body, _ = client.get(f"/uploads/{key}.jpg")
                    picture_ms = (time.perf_counter() - mark) * 1000
                    if status != 200 or not body.startswith(b"\xff\xd8"):
                        problem = f"display picture answered {status}"
                total_ms = (time.perf_counter() - begun) * 1000
                cpu_ms = (_cpu_seconds(server) - cpu_before) * 1000
                if problem is not None:
                    errors.append(f"cycle {cycle}: {problem}")
                rows.append(
                    {
                        "cycle": cycle,
                        "ms": total_ms,
                        "cpu_ms": cpu_ms,
                        "upload_ms": upload_ms,
                        "segment_ms": segment_ms,
                        "picture_ms": picture_ms,
                        "rss_mb": rss_mb(server),
                        "error": problem,
                    }
                )
                if (cycle + 1) % 100 == 0:
                    logger.info(
                        "cycle %d: %.0f ms, RSS %.0f MB, %d errors",
                        cycle + 1,
                        total_ms,
                        rows[-1]["rss_mb"],
                        len(errors),
                    )
            server_alive = process.poll() is None
        cache_mb = _folder_mb(home / "cache") if (home / "cache").exists() else 0.0
    return summarise_soak(rows, errors, warmup, window) | {
        "cycles": cycles,
        "warmup": warmup,
        "window": window,
        "size": size,
        "model": model,
        "server_header": server_header,
        "server_alive": server_alive,
        "rss_start_mb": rss_start,
        "cache_mb": cache_mb,
        "rows": rows,
        "wall_seconds": time.perf_counter() - started,
        "machine": machine_description(),
        "cpu_flags": cpu_info().named_flags,
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
    }


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _drift(windows: list[dict], key: str) -> tuple[float, float, float]:
    """(first window's value, last window's value, their relative change)."""
    first, last = windows[0][key], windows[-1][key]
    return first, last, (last / first - 1 if first else 0.0)


def summarise_soak(rows: list[dict], errors: list[str], warmup: int, window: int) -> dict:
    """Memory growth after the warm-up, wall-clock latency and server CPU per window, and the targets."""
    after = rows[warmup - 1 :]
    rss_at_warmup = rows[warmup - 1]["rss_mb"]
    growth = max(row["rss_mb"] for row in after) - rss_at_warmup
    windows = []
    for start in range(warmup, len(rows), window):
        chunk = rows[start : start + window]
        if chunk:
            wall = summarise([row["ms"] for row in chunk])
            cpu = summarise([row["cpu_ms"] for row in chunk])
            windows.append(
                {
                    "first": start,
                    "last": start + len(chunk) - 1,
                    "p50": wall["p50"],
                    "p95": wall["p95"],
                    "cpu_p50": cpu["p50"],
                    "cpu_p95": cpu["p95"],
                }
            )
    first_p95, last_p95, drift = _drift(windows, "p95")
    first_cpu, last_cpu, cpu_drift = _drift(windows, "cpu_p95")
    return {
        "errors": errors,
        "rss_at_warmup_mb": rss_at_warmup,
        "rss_end_mb": rows[-1]["rss_mb"],
        "rss_max_after_warmup_mb": max(row["rss_mb"] for row in after),
        "rss_growth_mb": growth,
        "latency_ms": summarise([row["ms"] for row in rows]),
        "segment_ms": summarise([row["segment_ms"] for row in rows if not row["error"]] or [0.0]),
        "upload_ms": summarise([row["upload_ms"] for row in rows if not row["error"]] or [0.0]),
        "cpu_ms": summarise([row["cpu_ms"] for row in rows]),
        "windows": windows,
        "p95_drift": drift,
        "cpu_p95_drift": cpu_drift,
        "targets": [
            ("no error", f"{len(errors)} errors", not errors),
            (
                f"RSS growth after cycle {warmup} <= {TARGET_RSS_GROWTH_MB:.0f} MB",
                f"{growth:+.1f} MB",
                growth <= TARGET_RSS_GROWTH_MB,
            ),
            (
                f"p95 of the last window within {TARGET_P95_DRIFT:.0%} of the first after warm-up",
                f"{first_p95:.0f} -> {last_p95:.0f} ms ({drift:+.1%})",
                abs(drift) <= TARGET_P95_DRIFT,
            ),
            (
                f"the same for the server's CPU per cycle (p95, within {TARGET_P95_DRIFT:.0%})",
                f"{first_cpu:.0f} -> {last_cpu:.0f} ms ({cpu_drift:+.1%})",
                abs(cpu_drift) <= TARGET_P95_DRIFT,
            ),
        ],
    }


def format_report(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}; CPU flags: {', '.join(results['cpu_flags']) or 'none known'}; "
        f"CPUs this process may use: {results['affinity']}; load average at the end "
        f"{', '.join(f'{value:.2f}' for value in results['load_average'])}",
        f"{results['cycles']} upload -> segment cycles through `cocoseg serve` "
        f"(Server: {results['server_header']}), model {results['model']} ({results['size']} px), "
        f"{results['wall_seconds']:.0f} s in all; server alive at the end: {results['server_alive']}",
        "",
        "| cycles | p50 ms | p95 ms | server CPU p50 ms | server CPU p95 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {w['first'] + 1}-{w['last'] + 1} | {w['p50']:.0f} | {w['p95']:.0f} "
        f"| {w['cpu_p50']:.0f} | {w['cpu_p95']:.0f} |"
        for w in results["windows"]
    ]
    latency, segment, upload = results["latency_ms"], results["segment_ms"], results["upload_ms"]
    lines += [
        "",
        f"Whole cycle p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms, max {latency['max']:.0f} ms; "
        f"upload callback p50 {upload['p50']:.0f} ms; segment callback p50 {segment['p50']:.0f} ms, "
        f"p95 {segment['p95']:.0f} ms.",
        f"Server RSS: {results['rss_start_mb']:.0f} MB before the first cycle, "
        f"{results['rss_at_warmup_mb']:.0f} MB after cycle {results['warmup']}, "
        f"at most {results['rss_max_after_warmup_mb']:.0f} MB later, "
        f"{results['rss_end_mb']:.0f} MB at the end; "
        f"upload cache on disk at the end {results['cache_mb']:.0f} MB.",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += [
        f"| {name} | {measured} | {'yes' if met else 'no'} |" for name, measured, met in results["targets"]
    ]
    if results["errors"]:
        lines += ["", "First errors: " + "; ".join(results["errors"][:5])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=CYCLES)
    parser.add_argument("--warmup", type=int, default=WARMUP)
    parser.add_argument("--window", type=int, default=WINDOW)
    parser.add_argument("--size", type=int, default=SIZE, help="model input size in px")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results to this file")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logger.setLevel(logging.INFO)
    results = run(arguments.cycles, arguments.warmup, arguments.window, arguments.size)
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    sys.stdout.write(format_report(results) + "\n")
    return 0 if all(met for _, _, met in results["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
