"""COCO-train-scale statistics: pycocotools ``COCO(path)`` versus ``cocoseg data stats``.

Writes a synthetic annotation file shaped like COCO train2017 (118,287 images, ~800k
annotations, polygons of 8-48 vertices, ~1% crowd regions as uncompressed RLE,
long-tailed classes over COCO's non-contiguous ids), then measures in fresh
processes, one after the other:

1. pycocotools ``COCO(path)`` alone (json.load + index);
2. ``cocoseg.pipeline.data.stats.dataset_stats`` cold (hash + stream + rasterise + cache write);
3. the same call again in a new process (cache hit);
4. the whole ``cocoseg data stats NAME --json`` command in a new process (cache hit),
   timed from outside: interpreter start and imports included.

Children report their own peak RSS; cases 1-3 time the call itself. Usage::

    python benchmarks/coco_scale.py [--images 118287] [--annotations-per-image 6.8] [--keep]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cocoseg.pipeline.core.devices import cpu_info  # noqa: E402
from cocoseg.pipeline.data.labels import COCO_CATEGORIES  # noqa: E402

logger = logging.getLogger("benchmarks.coco_scale")

IMAGE_SHAPES = [(640, 480, 0.45), (640, 427, 0.25), (480, 640, 0.15), (500, 375, 0.1), (640, 640, 0.05)]

# The long print lines below are split into adjacent literals only to keep the source short.
CHILD_PYCOCOTOOLS = (
    """
import contextlib, io, json, resource, sys, time
from pycocotools.coco import COCO
started = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO(sys.argv[1])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_rss_mb": """
    """resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "annotations": len(coco.anns)}))
"""
)

CHILD_STATS = (
    """
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
from cocoseg.pipeline.data.stats import dataset_stats
from cocoseg.pipeline.core.workspace import Workspace
started = time.perf_counter()
result = dataset_stats(Workspace(sys.argv[2]), sys.argv[1], max_bytes=4 * 1024**3)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_rss_mb": """
    """resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "annotations": result["totals"]["annotations_used"], "cached": result["cached"]}))
"""
)


CHILD_CLI = """
import contextlib, io, json, resource, sys
sys.path.insert(0, sys.argv[1])
from cocoseg import cli
captured = io.StringIO()
with contextlib.redirect_stdout(captured):
    code = cli.main(["data", "stats", "bench", "--json"])
print(json.dumps({"exit": code, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "cached": json.loads(captured.getvalue())["train"]["cached"]}))
"""


def _polygon(rng: np.random.Generator, width: int, height: int) -> list[float]:
    vertices = int(rng.integers(8, 49))
    radius = float(np.exp(rng.uniform(np.log(4), np.log(min(width, height) / 2.2))))
    centre_x = rng.uniform(radius, width - radius)
    centre_y = rng.uniform(radius, height - radius)
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radii = radius * rng.uniform(0.55, 1.0, vertices)
    points = np.stack([centre_x + radii * np.cos(angles), centre_y + radii * np.sin(angles)], axis=1)
    return np.round(np.clip(points, 0, [width, height]), 2).ravel().tolist()


def _crowd_rle(rng: np.random.Generator, width: int, height: int) -> list[int]:
    runs = int(rng.integers(10, 80)) * 2
    cuts = np.sort(rng.choice(width * height - 1, size=runs - 1, replace=False) + 1)
    counts = np.diff(np.concatenate([[0], cuts, [width * height]]))
    return counts.astype(int).tolist()


def _area_and_box(polygon: list[float]) -> tuple[float, list[float]]:
    points = np.asarray(polygon).reshape(-1, 2)
    x, y = points[:, 0], points[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    box = [float(x.min()), float(y.min()), float(x.max() - x.min()), float(y.max() - y.min())]
    return round(area, 2), [round(value, 2) for value in box]


def write_synthetic_coco(
    path: Path, images: int, per_image: float, seed: int = 0, own_names: bool = False
) -> dict[str, int]:
    """Stream a COCO-train-shaped annotation file to ``path``; returns its counts.

    ``own_names``: categories named ``class_1`` ... ``class_80`` (COCO's ids, not its names), as a
    user's own dataset would be (``benchmarks/own_dataset.py``).
    """
    rng = np.random.default_rng(seed)
    category_ids = np.array([category_id for category_id, _name, _super in COCO_CATEGORIES])
    popularity = 1.0 / np.arange(1, len(category_ids) + 1) ** 1.1  # long tail, person first
    popularity /= popularity.sum()
    shapes = np.array([(width, height) for width, height, _share in IMAGE_SHAPES])
    shape_choice = rng.choice(len(IMAGE_SHAPES), size=images, p=[share for _w, _h, share in IMAGE_SHAPES])
    annotation_id = 0
    crowd = 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(
            '{"info": {"description": "synthetic COCO-train-scale benchmark file"}, '
            '"licenses": [], "images": ['
        )
        for index in range(images):
            width, height = shapes[shape_choice[index]]
            separator = "," if index else ""
            handle.write(
                f'{separator}{{"id": {index + 1}, "file_name": "{index + 1:012d}.jpg", '
                f'"width": {width}, "height": {height}}}'
            )
        handle.write('], "annotations": [')
        counts = rng.poisson(per_image, size=images)
        pieces = []
        for index in range(images):
            width, height = (int(side) for side in shapes[shape_choice[index]])
            for _ in range(counts[index]):
                annotation_id += 1
                category = int(rng.choice(category_ids, p=popularity))
                if rng.random() < 0.01:
                    crowd += 1
                    rle = _crowd_rle(rng, width, height)
                    segmentation: object = {"counts": rle, "size": [height, width]}
                    area, box = float(sum(rle[1::2])), [0.0, 0.0, float(width), float(height)]
                    is_crowd = 1
                else:
                    polygon = _polygon(rng, width, height)
                    segmentation = [polygon]
                    area, box = _area_and_box(polygon)
                    is_crowd = 0
                pieces.append(
                    json.dumps(
                        {
                            "segmentation": segmentation,
                            "area": area,
                            "iscrowd": is_crowd,
                            "image_id": index + 1,
                            "bbox": box,
                            "category_id": category,
                            "id": annotation_id,
                        }
                    )
                )
            if len(pieces) > 5000 or index == images - 1:
                handle.write(("," if annotation_id > len(pieces) else "") + ",".join(pieces))
                pieces = []
        categories = [
            {
                "supercategory": supercategory,
                "id": category_id,
                "name": f"class_{index}" if own_names else name,
            }
            for index, (category_id, name, supercategory) in enumerate(COCO_CATEGORIES, start=1)
        ]
        handle.write('], "categories": ' + json.dumps(categories) + "}")
    return {"images": images, "annotations": annotation_id, "crowd": crowd}


def _run_child(code: str, *arguments: str, environment: dict | None = None) -> dict:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", code, *arguments], capture_output=True, text=True, check=False, env=environment
    )
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{completed.stderr[-2000:]}")
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    figures.setdefault("seconds", wall)
    return figures


def _cli_cached(path: Path, workspace: Path) -> dict:
    """Register the file as dataset ``bench`` and time the whole cached CLI command."""
    from PIL import Image

    images = path.parent / "images"
    images.mkdir(exist_ok=True)
    Image.new("RGB", (1, 1)).save(images / "placeholder.png")
    environment = {**os.environ, "COCOSEG_HOME": str(workspace), "COCOSEG_MAX_ANNOTATION_MB": "4096"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cocoseg",
            "data",
            "add",
            "bench",
            "--annotations",
            str(path),
            "--images",
            str(images),
        ],
        cwd=ROOT,
        env=environment,
        check=True,
        capture_output=True,
    )
    return _run_child(CHILD_CLI, str(ROOT), environment=environment)


def machine_description() -> str:
    cpu = cpu_info()
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{cpu.model}, {os.cpu_count()} cores, {memory_gb:.0f} GiB, Python {platform.python_version()}"


def run(images: int, per_image: float, keep: bool) -> dict:
    """Generate the file and measure all three cases; returns the figures."""
    folder = Path(tempfile.mkdtemp(prefix="cocoseg-bench-"))
    path = folder / "instances_synthetic.json"
    started = time.perf_counter()
    counts = write_synthetic_coco(path, images, per_image)
    logger.info(
        "wrote %s (%.0f MB, %s) in %.0f s",
        path,
        path.stat().st_size / 1024**2,
        counts,
        time.perf_counter() - started,
    )
    workspace = folder / "workspace"
    results = {
        "file_mb": path.stat().st_size / 1024**2,
        "counts": counts,
        "pycocotools": _run_child(CHILD_PYCOCOTOOLS, str(path)),
        "stats_cold": _run_child(CHILD_STATS, str(path), str(workspace), str(ROOT)),
        "stats_cached": _run_child(CHILD_STATS, str(path), str(workspace), str(ROOT)),
        "cli_cached": _cli_cached(path, workspace),
        "machine": machine_description(),
    }
    if not keep:
        path.unlink()
    return results


def format_table(results: dict) -> str:
    reference = results["pycocotools"]
    rows = [
        ("pycocotools `COCO(path)`", reference),
        ("`cocoseg data stats` (cold)", results["stats_cold"]),
        ("`cocoseg data stats` (cached, new process)", results["stats_cached"]),
        ("`cocoseg data stats NAME --json` whole command (cached)", results["cli_cached"]),
    ]
    counts = results["counts"]
    lines = [
        (
            f"File: {results['file_mb']:.0f} MB, {counts['images']:,} images, "
            f"{counts['annotations']:,} annotations, {counts['crowd']:,} crowd RLE."
        ),
        f"Machine: {results['machine']}.",
        "",
        "| case | wall s | x pycocotools time | peak RSS MB | x pycocotools RSS |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, figures in rows:
        lines.append(
            f"| {name} | {figures['seconds']:.2f} | {figures['seconds'] / reference['seconds']:.2f} "
            f"| {figures['peak_rss_mb']:.0f} | {figures['peak_rss_mb'] / reference['peak_rss_mb']:.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=118_287)
    parser.add_argument("--annotations-per-image", type=float, default=6.8)
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run(arguments.images, arguments.annotations_per_image, arguments.keep)
    if arguments.json:
        sys.stdout.write(json.dumps(results) + "\n")
    sys.stdout.write(format_table(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
