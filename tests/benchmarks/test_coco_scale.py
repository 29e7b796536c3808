"""The COCO-scale benchmark script works end to end at a small scale (figures are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cocoseg.pipeline.data.coco import load_coco
from cocoseg.pipeline.data.stats import compute_stats

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "coco_scale.py"


@pytest.fixture(scope="module")
def benchmark_module():
    spec = importlib.util.spec_from_file_location("coco_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_file_is_valid_coco_with_the_promised_shape(benchmark_module, tmp_path):
    path = tmp_path / "synthetic.json"
    counts = benchmark_module.write_synthetic_coco(path, images=300, per_image=6.8, seed=1)
    dataset = load_coco(path, None, 1024**3)
    assert dataset.report.errors == 0
    assert len(dataset.images) == 300 and len(dataset.annotations) == counts["annotations"] > 1500
    crowd = [a for a in dataset.annotations if a["iscrowd"]]
    assert len(crowd) == counts["crowd"] and all(isinstance(a["segmentation"]["counts"], list) for a in crowd)
    category_counts = sorted(
        (sum(a["category_id"] == c["id"] for a in dataset.annotations) for c in dataset.categories),
        reverse=True,
    )
    assert category_counts[0] > 5 * category_counts[40]  # long tail
    assert compute_stats(path, 1024**3)["totals"]["annotations_used"] == counts["annotations"]


@pytest.mark.slow
def test_run_measures_all_cases_in_fresh_processes(benchmark_module):
    results = benchmark_module.run(images=200, per_image=5.0, keep=False)
    assert (
        results["pycocotools"]["annotations"]
        == results["stats_cold"]["annotations"]
        == results["counts"]["annotations"]
    )
    assert results["stats_cold"]["cached"] is False and results["stats_cached"]["cached"] is True
    table = benchmark_module.format_table(results)
    assert results["cli_cached"]["exit"] == 0 and results["cli_cached"]["cached"] is True
    assert table.count("\n| ") == 5 and "pycocotools `COCO(path)`" in table
