"""Click-to-mask: how many clicks each tool needs to reach 85 / 90 % IoU (NoC@85, NoC@90), issue 17.

The protocol of the interactive-segmentation literature, on the demo's val instances (COCO,
area >= 32x32 at source resolution, crowd excluded; by default 50 of the 467, evenly spread
over the split, so that the random-walker baseline's ~0.75 s per click fits the run in 20
minutes on 2 cores; 80 took 26 minutes). Images are scaled so their longer side is 320 px
(INTER_AREA) and each instance's ground truth is rasterised at source resolution and scaled
the same way (a pixel is in when half of it is), as in the issue's baseline. The robot clicker
(``benchmarks/clicker.py``) clicks first at the object's pixel farthest from its boundary, then
at the centre of the largest error, up to 20 clicks; every method gets the same clicks for the
same masks. As in the reference evaluation (RITM), clicking stops once IoU reaches 90 % (after
5 clicks at least, so IoU after 1, 3 and 5 clicks is always measured) and the last IoU stands
for the remaining clicks of the curve; ``--all-clicks`` clicks 20 times regardless. A box counts
as two clicks (the IoU after click 1 is then 0).

Methods (``--methods``):

    baseline_grabcut        the issue's naive baseline: cv2.grabCut from the ground truth's box on the
                            whole image (5 rounds), each click a dot of radius 3 set to sure object /
                            sure background in GrabCut's own mask, then 5 more rounds;
    baseline_random_walker  the issue's other baseline: scikit-image random_walker, the image border
                            as background, each click a dot of radius 3;
    clicks                  cocoseg's ``clicks`` method (``interactive.segment``);
    grabcut_box             cocoseg's ``grabcut_box``: the ground truth's box, then clicks;
    magic_wand, superpixel_snap   cocoseg's editing tools driven by the same clicks;
    model_regions           with ``--model``: the model's region under the first click is accepted
                            (``model_regions``), then ``clicks`` refines it.

Reported per method: NoC@85 and NoC@90 (20 when never reached), the share of instances that
never reach 85 %, mean IoU after 1, 3 and 5 clicks, and the time per call: p50 / p95 over all
calls except the first on each image, and the median first call on an image (cache cold: every
image starts with an empty ``InteractiveCache``; each tool is called once on a small synthetic
picture before timing, so scikit-image's import, once per server process, is not counted).
GrabCut (both box methods and the corrections of ``clicks``) starts from a random k-means draw;
the tools seed it (``interactors.GRABCUT_SEED``), so a user gets one fixed draw, but which draw
moved one run's NoC@85 on 50 instances by up to 0.6. ``--draws K`` runs the methods that use
GrabCut K times: draw 0 with the tools' own seed (what a user gets), draw k > 0 with a seed
derived from k; the naive baseline's generator is seeded per instance from k and the instance.
The table gives the mean over the draws and their range.

``--latency`` instead times every cocoseg method on demo images scaled to 640x480 (the issue's
latency target: p50 <= 150 ms, p95 <= 400 ms, a first click at most 1 s slower).

``--model NAME`` runs an exported model or ensemble of the workspace (``COCOSEG_HOME`` or
./workspace) through ``cocoseg.pipeline.inference``'s Predictor (ONNX Runtime) once per image.
The demo's own tiny models reach a few % mIoU, so their regions say little; use a real model.

Usage: python benchmarks/interactive.py [--limit 50] [--clicks 20] [--all-clicks] [--methods a,b]
    [--draws 5] [--model NAME] [--latency [--latency-images 20]] [--json PATH] [--plot PATH] [--examples PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.clicker import clicks_to_reach, iou, next_click  # noqa: E402
from benchmarks.coco_scale import machine_description  # noqa: E402
from benchmarks.interactive_baselines import BaselineGrabCut, baseline_random_walker  # noqa: E402
from benchmarks.line_chart import Series, draw_line_chart, save_chart  # noqa: E402
from cocoseg.pipeline.annotation import interactive, interactors  # noqa: E402
from cocoseg.pipeline.core.settings import DEMO_DATASET_DIR  # noqa: E402
from cocoseg.pipeline.data.images import read_rgb  # noqa: E402
from cocoseg.pipeline.data.masks import instance_mask, is_crowd  # noqa: E402

logger = logging.getLogger("benchmarks.interactive")

BASELINES = ("baseline_grabcut", "baseline_random_walker")
TOOLS = ("clicks", "grabcut_box", "magic_wand", "superpixel_snap")
EDITING_TOOLS = ("magic_wand", "superpixel_snap")
MODEL_METHOD = "model_regions"
BOX_METHODS = ("baseline_grabcut", "grabcut_box")
# The methods whose result depends on GrabCut's random start (see --draws).
DRAWN_METHODS = ("baseline_grabcut", "clicks", "grabcut_box", MODEL_METHOD)
THRESHOLDS = (0.85, 0.90)
MIN_AREA = 32 * 32
SIDE = 320
LATENCY_SIZE = (640, 480)
TARGET_FEWER_CLICKS, TARGET_NEVER = 0.35, 0.30
DEFAULT_LIMIT, STOP_AT = 50, 0.90


@dataclasses.dataclass
class Instance:
    """One object to segment: its image (already scaled), ground truth and where it comes from."""

    image_key: str
    image: np.ndarray
    truth: np.ndarray
    annotation_id: int
    file_name: str

    @property
    def box(self) -> tuple[int, int, int, int]:
        ys, xs = np.nonzero(self.truth)
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def load_instances(
    split: str = "val", limit: int | None = None, side: int | None = SIDE, size: tuple | None = None
) -> list[Instance]:
    """The demo split's instances (area >= 32x32, no crowd), ``limit`` of them evenly spread.

    Images are scaled to a longer side of ``side`` px, or to exactly ``size`` (width, height).
    """
    coco = json.loads((DEMO_DATASET_DIR / "annotations" / f"instances_{split}2017.json").read_text())
    images = {image["id"]: image for image in coco["images"]}
    chosen = sorted(
        (annotation for annotation in coco["annotations"] if annotation["area"] >= MIN_AREA),
        key=lambda annotation: (annotation["image_id"], annotation["id"]),
    )
    chosen = [annotation for annotation in chosen if not is_crowd(annotation)]
    if limit is not None and limit < len(chosen):
        chosen = [chosen[round(index)] for index in np.linspace(0, len(chosen) - 1, limit)]
    pictures: dict[int, np.ndarray] = {}
    instances = []
    for annotation in chosen:
        record = images[annotation["image_id"]]
        height, width = record["height"], record["width"]
        scaled = size or _scaled_size(width, height, side)
        if record["id"] not in pictures:
            picture = read_rgb(DEMO_DATASET_DIR / f"{split}2017" / record["file_name"])
            pictures[record["id"]] = cv2.resize(picture, scaled, interpolation=cv2.INTER_AREA)
        truth = instance_mask(annotation["segmentation"], height, width).astype(np.float32)
        truth = cv2.resize(truth, scaled, interpolation=cv2.INTER_AREA) >= 0.5
        if truth.any():
            key = f"{split}/{record['file_name']}"
            instances.append(
                Instance(key, pictures[record["id"]], truth, annotation["id"], record["file_name"])
            )
    return instances


def _scaled_size(width: int, height: int, side: int | None) -> tuple[int, int]:
    scale = 1.0 if side is None else min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


# --- one instance under one method ------------------------------------------------------------


def run_instance(
    method: str, instance: Instance, max_clicks: int, cache, prediction=None, stop_at: float | None = None
) -> dict:
    """The robot's clicks on one instance: IoU after each click (index k: k + 1 clicks) and call times.

    With ``stop_at``, clicking stops once IoU reaches it (after five clicks at least, so the IoU
    after 1, 3 and 5 clicks is measured) and the last IoU stands for the remaining clicks.
    """
    clicks: list[tuple[int, int, bool]] = []
    ious: list[float] = []
    seconds: list[float] = []
    mask: np.ndarray | None = None
    baseline = None
    if method in BOX_METHODS:
        started = time.perf_counter()
        if method == "baseline_grabcut":
            baseline = BaselineGrabCut(instance.image, instance.box)
            mask = baseline.mask()
        else:
            mask = _tool(instance, "grabcut_box", [], None, cache, box=instance.box)
        seconds.append(time.perf_counter() - started)
        ious += [0.0, iou(instance.truth, mask)]
    while len(ious) < max_clicks:
        click = next_click(instance.truth, mask)
        if click is None or (stop_at is not None and len(ious) >= 5 and ious[-1] >= stop_at):
            ious.append(ious[-1])
            continue
        clicks.append(click)
        started = time.perf_counter()
        if method == "baseline_grabcut":
            mask = baseline.click(click)
        elif method == "baseline_random_walker":
            mask = baseline_random_walker(instance.image, clicks)
        elif method == MODEL_METHOD:
            mask = _model_then_clicks(instance, clicks, mask, cache, prediction)
        else:
            box = instance.box if method == "grabcut_box" else None
            mask = _tool(instance, method, clicks, mask, cache, box=box)
        seconds.append(time.perf_counter() - started)
        ious.append(iou(instance.truth, mask))
    return {"ious": ious[:max_clicks], "seconds": seconds}


def _tool(instance: Instance, method: str, clicks: list, mask, cache, box=None) -> np.ndarray:
    result = interactive.segment(
        instance.image, clicks, box, mask, method, cache=cache, image_key=instance.image_key
    )
    return result.mask


def _model_then_clicks(instance: Instance, clicks: list, mask, cache, prediction: np.ndarray) -> np.ndarray:
    if len(clicks) == 1:
        accepted = interactive.segment(
            instance.image, clicks, method=MODEL_METHOD, prediction=prediction, cache=cache
        ).mask
        if accepted.any():
            return accepted
    return _tool(instance, "clicks", clicks, mask, cache)


# --- runs and figures ----------------------------------------------------------------------------


def _predictions(model: str | None, instances: list[Instance]) -> dict[str, np.ndarray]:
    if not model:
        return {}
    from cocoseg.pipeline.core.workspace import default_workspace
    from cocoseg.pipeline.inference.model_store import get_entry
    from cocoseg.pipeline.inference.predictor import Predictor

    predictor = Predictor(get_entry(default_workspace(), model))
    predictions = {}
    for instance in instances:
        if instance.image_key not in predictions:
            predictions[instance.image_key] = predictor.predict(instance.image).mask
    return predictions


@contextlib.contextmanager
def grabcut_draw(draw: int):
    """The tools' GrabCut seeded for ``draw`` (0: the tools' own seed) for the duration."""
    kept = interactors.GRABCUT_SEED
    interactors.GRABCUT_SEED = _seed(draw) if draw else kept
    try:
        yield
    finally:
        interactors.GRABCUT_SEED = kept


def _seed(*keys: int) -> int:
    """A seed for OpenCV's generator from ``keys``: nearby small seeds start it on correlated draws."""
    return int(np.random.default_rng(list(keys)).integers(1, 2**31))


def run_method(
    method: str,
    instances: list[Instance],
    max_clicks: int,
    predictions: dict,
    stop_at: float | None = STOP_AT,
    draw: int = 0,
) -> list[dict]:
    """Every instance under one method; each image starts with an empty cache (its first call is cold).

    ``draw`` seeds GrabCut (``grabcut_draw``: the tools' own seed for draw 0), and OpenCV's
    generator before each instance from ``draw`` and the instance (for the naive baseline, which
    does not seed it).
    """
    rows, cache, current = [], None, None
    for index, instance in enumerate(instances):
        first = instance.image_key != current
        if first:
            cache, current = interactive.InteractiveCache(), instance.image_key
        cv2.setRNGSeed(_seed(draw, instance.annotation_id))
        with grabcut_draw(draw):
            prediction = predictions.get(instance.image_key)
            row = run_instance(method, instance, max_clicks, cache, prediction, stop_at)
        rows.append(row | {"first_on_image": first, "annotation_id": instance.annotation_id})
        if (index + 1) % 50 == 0:
            logger.info("%s: %d/%d instances", method, index + 1, len(instances))
    return rows


def _percentile(values: list[float], share: float) -> float | None:
    return float(np.percentile(values, share)) if values else None


def summarise(rows: list[dict], max_clicks: int) -> dict:
    """NoC@85/90, never-85 share, IoU after 1/3/5 clicks, the mean IoU curve and call times (ms)."""
    curves = np.array([row["ious"] for row in rows])
    first = [row["seconds"][0] * 1000 for row in rows if row["first_on_image"] and row["seconds"]]
    later = [value * 1000 for row in rows for value in row["seconds"][1 if row["first_on_image"] else 0 :]]
    never = [clicks_to_reach(row["ious"], THRESHOLDS[0], max_clicks + 1) > max_clicks for row in rows]
    summary = {
        "instances": len(rows),
        "never_85": float(np.mean(never)),
        "mean_iou": [float(value) for value in curves.mean(axis=0)],
        "ms_p50": _percentile(later, 50),
        "ms_p95": _percentile(later, 95),
        "first_ms_p50": _percentile(first, 50),
        "first_ms_max": max(first) if first else None,
    }
    for threshold in THRESHOLDS:
        noc = [clicks_to_reach(row["ious"], threshold, max_clicks) for row in rows]
        summary[f"noc_{round(threshold * 100)}"] = float(np.mean(noc))
    for clicks in (1, 3, 5):
        summary[f"iou_{clicks}"] = float(curves[:, clicks - 1].mean()) if clicks <= max_clicks else None
    return summary


def boundary_cap(instances: list[Instance]) -> list[float]:
    """Per instance, the IoU of its ground truth with itself shrunk by one pixel all round.

    A polygon drawn around an object is rarely closer than a pixel to its edge; where even a
    one-pixel error everywhere is under 85 % IoU, no method can be trusted to reach 85 %.
    """
    kernel = np.ones((3, 3), np.uint8)
    return [
        iou(item.truth, cv2.erode(item.truth.astype(np.uint8), kernel).astype(bool)) for item in instances
    ]


def summarise_draws(draws: list[list[dict]], max_clicks: int) -> dict:
    """``summarise`` over every draw's rows together (means over draws), and each draw's NoC@85."""
    summary = summarise([row for rows in draws for row in rows], max_clicks)
    each = [summarise(rows, max_clicks)["noc_85"] for rows in draws]
    return summary | {"draws": len(draws), "noc_85_draws": each}


def compare(summaries: dict) -> dict:
    """The issue's targets: the best tool against the better naive baseline; the model against that tool.

    With several draws, ``fewer_clicks_draws`` pairs draw k of the tool with draw k of the baseline.
    """
    baselines = {name: summaries[name]["noc_85"] for name in BASELINES if name in summaries}
    tools = {name: summaries[name]["noc_85"] for name in TOOLS if name in summaries}
    outcome: dict = {}
    if baselines and tools:
        baseline, best = min(baselines, key=baselines.get), min(tools, key=tools.get)
        fewer = 1 - tools[best] / baselines[baseline]
        never = summaries[best]["never_85"]
        outcome |= {"baseline": baseline, "best": best, "fewer_clicks": fewer, "never_85": never}
        outcome |= {"holds": fewer >= TARGET_FEWER_CLICKS and never < TARGET_NEVER}
        paired = zip(_draws(summaries[best]), _draws(summaries[baseline]))
        outcome["fewer_clicks_draws"] = [1 - tool / naive for tool, naive in paired]
    if tools and MODEL_METHOD in summaries:
        best = min(tools, key=tools.get)
        outcome["model_fewer_clicks"] = 1 - summaries[MODEL_METHOD]["noc_85"] / tools[best]
    return outcome


def _draws(summary: dict) -> list[float]:
    """Each draw's NoC@85; a method without draws (its result has no random part) is the same in each."""
    return summary.get("noc_85_draws") or [summary["noc_85"]]


def run(
    methods: list[str],
    limit: int | None,
    max_clicks: int,
    model: str | None,
    stop_at: float | None = STOP_AT,
    side: int | None = SIDE,
    draws: int = 1,
) -> dict:
    """The NoC benchmark: every method over the same instances and clicks (``side``: None, own size).

    The methods in ``DRAWN_METHODS`` run ``draws`` times (see ``run_method``); per-instance
    figures and examples are draw 0's.
    """
    started = time.perf_counter()
    warm_up(methods)
    instances = load_instances(limit=limit, side=side)
    predictions = _predictions(model, instances)
    logger.info("%d instances from %d images", len(instances), len({item.image_key for item in instances}))
    results: dict = {"machine": machine_description(), "instances": len(instances), "max_clicks": max_clicks}
    results |= {"stop_at": stop_at, "side": side}
    results |= {"images": len({item.image_key for item in instances}), "model": model, "methods": {}}
    results["draws"] = draws
    per_instance = {}
    for method in methods:
        method_started = time.perf_counter()
        count = draws if method in DRAWN_METHODS else 1
        runs = [
            run_method(method, instances, max_clicks, predictions, stop_at, draw) for draw in range(count)
        ]
        rows = runs[0]
        results["methods"][method] = summarise_draws(runs, max_clicks) | {
            "seconds": time.perf_counter() - method_started
        }
        per_instance[method] = [{"annotation_id": row["annotation_id"], "ious": row["ious"]} for row in rows]
        logger.info(
            "%s: %s",
            method,
            {key: value for key, value in results["methods"][method].items() if key != "mean_iou"},
        )
    results["comparison"] = compare(results["methods"])
    cap = boundary_cap(instances)
    results["one_pixel_iou_under_85"] = float(np.mean([value < THRESHOLDS[0] for value in cap]))
    results["examples"] = _cap_examples(instances, cap, per_instance, results["comparison"].get("best"))
    results["per_instance"] = per_instance
    results["seconds"] = time.perf_counter() - started
    return results


def _cap_examples(instances, cap, per_instance, best) -> list[dict]:
    """Instances the best tool never brings to 85 %, smallest one-pixel IoU first (up to 5)."""
    if best is None:
        return []
    rows = per_instance[best]
    missed = [index for index, row in enumerate(rows) if max(row["ious"]) < THRESHOLDS[0]]
    missed.sort(key=lambda index: cap[index])
    return [
        {
            "file": instances[index].file_name,
            "annotation_id": instances[index].annotation_id,
            "area_px": int(instances[index].truth.sum()),
            "one_pixel_iou": round(cap[index], 3),
            "best_iou": round(max(rows[index]["ious"]), 3),
        }
        for index in missed[:5]
    ]


def warm_up(methods: list[str]) -> None:
    """One call per tool on a small synthetic picture: the process's first call also imports
    scikit-image's segmentation module (~0.7 s, once per server process, not once per image)."""
    picture = np.random.default_rng(0).integers(0, 255, (48, 64, 3)).astype(np.uint8)
    for method in methods:
        if method in TOOLS:
            box = (16, 12, 48, 36) if method == "grabcut_box" else None
            interactive.segment(picture, [(32, 24, True)], box, None, method)


def run_latency(methods: list[str], images: int, clicks: int) -> dict:
    """Call times at 640x480: the largest instance of each of ``images`` demo images, ``clicks`` clicks.

    The tools are warmed up once first (``warm_up``): the first click on each image is still cold
    (a new cache: working copy, gradient, superpixels), the process-wide imports are not counted.
    """
    started = time.perf_counter()
    warm_up(methods)
    largest: dict[str, Instance] = {}
    for instance in load_instances(size=LATENCY_SIZE):
        kept = largest.get(instance.image_key)
        if kept is None or instance.truth.sum() > kept.truth.sum():
            largest[instance.image_key] = instance
    chosen = list(largest.values())[:images]
    results: dict = {"machine": machine_description(), "images": len(chosen), "clicks": clicks, "methods": {}}
    for method in methods:
        rows = [
            run_instance(method, instance, clicks, interactive.InteractiveCache()) | {"first_on_image": True}
            for instance in chosen
        ]
        summary = summarise(rows, clicks)
        results["methods"][method] = {
            key: summary[key] for key in ("ms_p50", "ms_p95", "first_ms_p50", "first_ms_max")
        }
        logger.info("%s: %s", method, results["methods"][method])
    results["seconds"] = time.perf_counter() - started
    return results


def _number(value, pattern: str = "{:.1f}") -> str:
    return "-" if value is None else pattern.format(value)


def format_table(results: dict) -> str:
    """The NoC table, the targets and the cap of the ground truth, as markdown."""
    draws = results.get("draws", 1)
    lines = [
        f"Machine: {results['machine']}.",
        f"{results['instances']} demo val instances from {results['images']} images (area >= 32x32, "
        f"no crowd), "
        + (
            f"images scaled to {results['side']} px on the longer side"
            if results["side"]
            else "images at their own size"
        )
        + f", up to {results['max_clicks']} clicks"
        + (f" (stopping at {results['stop_at'] * 100:.0f} % IoU)" if results["stop_at"] else "")
        + f"; {results['seconds']:.0f} s."
        + (
            f" The methods that use GrabCut ran {draws} draws of its random start: their figures are "
            "means over the draws, NoC@85 with the draws' range."
            if draws > 1
            else ""
        ),
        "",
        "| method | NoC@85 | NoC@90 | never 85 % | IoU@1 | IoU@3 | IoU@5 | ms/click p50 | p95 "
        "| first click ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, row in results["methods"].items():
        noc = _number(row["noc_85"], "{:.2f}")
        if row.get("draws", 1) > 1:
            noc += f" ({min(row['noc_85_draws']):.2f}-{max(row['noc_85_draws']):.2f})"
        cells = [noc, _number(row["noc_90"], "{:.2f}")]
        cells.append(f"{row['never_85'] * 100:.0f} %")
        cells += [_number(row[f"iou_{clicks}"] and row[f"iou_{clicks}"] * 100) for clicks in (1, 3, 5)]
        cells += [_number(row[key], "{:.0f}") for key in ("ms_p50", "ms_p95", "first_ms_p50")]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    comparison = results["comparison"]
    if "best" in comparison:
        verdict = "holds" if comparison["holds"] else "does not hold"
        lines += [
            "",
            f"Best tool: {comparison['best']}, {comparison['fewer_clicks'] * 100:.0f} % fewer clicks to 85 % "
            f"than {comparison['baseline']} (target >= {TARGET_FEWER_CLICKS * 100:.0f} %); "
            f"{comparison['never_85'] * 100:.0f} % never reach 85 % (target < {TARGET_NEVER * 100:.0f} %): "
            f"the target {verdict}."
            + (
                " Draw by draw: "
                + ", ".join(f"{value * 100:.0f} %" for value in comparison["fewer_clicks_draws"])
                + " fewer."
                if draws > 1
                else ""
            ),
        ]
    if "model_fewer_clicks" in comparison:
        share = comparison["model_fewer_clicks"]
        lines.append(
            f"Model regions + clicks: {abs(share) * 100:.0f} % {'fewer' if share >= 0 else 'more'} clicks "
            "than the best tool."
        )
    lines.append(
        f"Ground truth: for {results['one_pixel_iou_under_85'] * 100:.0f} % of the instances a one-pixel "
        "error all round is already under 85 % IoU."
    )
    for example in results["examples"]:
        lines.append(
            f"- {example['file']} annotation {example['annotation_id']}: {example['area_px']} px, one-pixel "
            f"IoU {example['one_pixel_iou'] * 100:.0f} %, best reached {example['best_iou'] * 100:.0f} %"
        )
    return "\n".join(lines)


def format_latency(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}.",
        f"{results['images']} demo val images scaled to {LATENCY_SIZE[0]}x{LATENCY_SIZE[1]}, the largest "
        f"instance of each, {results['clicks']} robot clicks, a new cache per image; "
        f"{results['seconds']:.0f} s.",
        "",
        "| method | ms/click p50 | p95 | first click p50 | first click max | target holds |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for method, row in results["methods"].items():
        holds = row["ms_p50"] <= 150 and row["ms_p95"] <= 400 and row["first_ms_max"] <= row["ms_p50"] + 1000
        cells = [_number(row[key], "{:.0f}") for key in ("ms_p50", "ms_p95", "first_ms_p50", "first_ms_max")]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {'yes' if holds else 'no'} |")
    return "\n".join(lines)


def draw(results: dict) -> np.ndarray:
    """Mean IoU (%) against clicks, one line per method; the editing tools (wand, snap) are left to
    the table when there are more lines than the chart has colours."""
    methods = list(results["methods"])
    if len(methods) > 6:
        methods = [method for method in methods if method not in EDITING_TOOLS]
    series = [
        Series(method, list(range(1, len(row["mean_iou"]) + 1)), [value * 100 for value in row["mean_iou"]])
        for method, row in ((method, results["methods"][method]) for method in methods)
    ]
    return draw_line_chart(series, "Click-to-mask on the demo val instances", "clicks", "mean IoU %")


def draw_examples(instances: list[Instance], examples: list[dict], height: int = 200) -> np.ndarray | None:
    """The instances the best tool never brought to 85 %: ground truth over the picture and its edges.

    Per example, left: the picture around the object, enlarged (nearest neighbour) with the
    ground truth's outline in green; right: the colour gradient (what the tools follow), same
    outline. Where the outline does not lie on the gradient's ridges, no edge-following tool
    can match the polygon to within a pixel.
    """
    by_id = {item.annotation_id: item for item in instances}
    rows = []
    for example in examples:
        item = by_id.get(example["annotation_id"])
        if item is None:
            continue
        x0, y0, x1, y1 = item.box
        rows_, columns = item.truth.shape
        window = np.s_[max(0, y0 - 6) : min(rows_, y1 + 6), max(0, x0 - 6) : min(columns, x1 + 6)]
        crop, truth = item.image[window], item.truth[window].astype(np.uint8)
        scale = max(1, round(height / crop.shape[0]))
        size = crop.shape[1] * scale, crop.shape[0] * scale
        picture = cv2.resize(crop, size, interpolation=cv2.INTER_NEAREST)
        lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
        gradient = np.sqrt(
            (cv2.Sobel(lab, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(lab, cv2.CV_32F, 0, 1) ** 2).sum(axis=2)
        )
        gradient = np.clip(255 * gradient / max(float(gradient.max()), 1.0), 0, 255).astype(np.uint8)
        edges = cv2.cvtColor(cv2.resize(gradient, size, interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2RGB)
        outline = cv2.resize(truth, size, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(outline, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        for panel in (picture, edges):
            cv2.drawContours(panel, contours, -1, (0, 220, 0), 1)
        row = np.concatenate([picture, np.full((size[1], 6, 3), 255, np.uint8), edges], axis=1)
        text = (
            f"{example['file']} #{example['annotation_id']}: {example['area_px']} px, 1-px IoU "
            f"{example['one_pixel_iou'] * 100:.0f} %, best {example['best_iou'] * 100:.0f} %"
        )
        text_width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)[0][0] + 8
        caption = np.full((22, max(row.shape[1], text_width), 3), 255, np.uint8)
        cv2.putText(caption, text, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (40, 40, 40), 1, cv2.LINE_AA)
        row = np.pad(row, ((0, 0), (0, caption.shape[1] - row.shape[1]), (0, 0)), constant_values=255)
        rows.append(np.concatenate([caption, row], axis=0))
    if not rows:
        return None
    width = max(row.shape[1] for row in rows)
    padded = [np.pad(row, ((0, 8), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    return cv2.cvtColor(np.concatenate(padded, axis=0), cv2.COLOR_RGB2BGR)


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="instances, evenly spread (0: all)")
    parser.add_argument("--clicks", type=int, default=20, help="clicks per instance (default 20)")
    parser.add_argument("--all-clicks", action="store_true", help="do not stop at 90 %% IoU")
    parser.add_argument(
        "--side",
        type=int,
        default=SIDE,
        help=f"longer side of the images in px (default {SIDE}; 0: their own)",
    )
    parser.add_argument(
        "--methods", help=f"comma-separated, of {', '.join(BASELINES + TOOLS + (MODEL_METHOD,))}"
    )
    parser.add_argument(
        "--draws", type=int, default=1, help="runs of the methods that use GrabCut, each seeded differently"
    )
    parser.add_argument("--model", help="an exported model or ensemble in the workspace, for model_regions")
    parser.add_argument("--latency", action="store_true", help="time the tools at 640x480 instead")
    parser.add_argument("--latency-images", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--plot", type=Path, help="save IoU against clicks here (PNG)")
    parser.add_argument(
        "--examples", type=Path, help="save the best tool's misses, ground truth over picture and edges (PNG)"
    )
    options = parser.parse_args(arguments)
    known = BASELINES + TOOLS + (MODEL_METHOD,)
    default = TOOLS if options.latency else BASELINES + TOOLS + ((MODEL_METHOD,) if options.model else ())
    methods = options.methods.split(",") if options.methods else list(default)
    unknown = [method for method in methods if method not in known]
    if unknown or (MODEL_METHOD in methods and not options.model):
        parser.error(f"unknown methods {unknown}" if unknown else "model_regions needs --model NAME")
    if options.clicks < 1 or options.draws < 1 or options.limit < 0 or options.side < 0:
        parser.error("--clicks and --draws must be at least 1, --limit and --side at least 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if options.latency:
        results = run_latency(methods, options.latency_images, options.clicks)
        table = format_latency(results)
    else:
        stop_at = None if options.all_clicks else STOP_AT
        side = options.side or None
        limit = options.limit or None
        results = run(methods, limit, options.clicks, options.model, stop_at, side, options.draws)
        table = format_table(results)
        if options.plot:
            save_chart(draw(results), options.plot)
        if options.examples:
            figure = draw_examples(
                load_instances(limit=options.limit or None, side=side), results["examples"]
            )
            if figure is not None:
                save_chart(figure, options.examples)
    if options.json:
        options.json.write_text(json.dumps(results, indent=1, allow_nan=False))
    sys.stdout.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
