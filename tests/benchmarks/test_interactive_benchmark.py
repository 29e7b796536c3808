"""The robot clicker's placement on hand-made masks, NoC arithmetic, and a tiny run of the click benchmark."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from benchmarks import interactive as interactive_benchmark
from benchmarks.clicker import clicks_to_reach, iou, next_click
from benchmarks.interactive import (
    Instance,
    compare,
    draw_examples,
    format_table,
    load_instances,
    main,
    run,
    summarise,
)
from cocoseg.pipeline.annotation import interactors


def test_the_first_click_is_the_pixel_farthest_from_the_boundary():
    truth = np.zeros((30, 40), bool)
    truth[5:10, 2:38] = True  # a thin bar, 5 rows high...
    truth[12:25, 10:23] = True  # ...and a 13x13 square, whose centre is the farthest from any edge
    assert next_click(truth, None) == (16, 18, True)


def test_the_image_border_counts_as_a_boundary():
    truth = np.zeros((20, 20), bool)
    truth[5:15, :10] = True  # touches the left border: its centre is 5 px from it, not 0
    x, y, positive = next_click(truth, None)
    assert positive and x in (4, 5) and 9 <= y <= 10


def test_the_next_click_goes_to_the_largest_error_with_its_sign():
    truth = np.zeros((40, 60), bool)
    truth[5:35, 5:35] = True
    prediction = truth.copy()
    prediction[15:25, 25:35] = False  # a 10x10 part missed: false negative
    prediction[10:14, 40:44] = True  # a 4x4 blob too many: false positive, smaller
    x, y, positive = next_click(truth, prediction)
    assert positive and 29 <= x <= 30 and 19 <= y <= 20
    prediction[15:25, 25:35] = True
    prediction[10:30, 40:58] = True  # now the extra part is the larger error
    x, y, positive = next_click(truth, prediction)
    assert not positive and 40 <= x < 58 and 10 <= y < 30 and not truth[y, x]


def test_no_click_is_left_when_the_mask_is_right():
    truth = np.zeros((10, 10), bool)
    truth[2:5, 2:5] = True
    assert next_click(truth, truth.copy()) is None
    assert iou(truth, truth) == 1.0 and iou(np.zeros_like(truth), np.zeros_like(truth)) == 1.0


def test_clicks_to_reach_counts_from_one_and_caps_at_the_budget():
    ious = [0.5, 0.8, 0.86, 0.91]
    assert clicks_to_reach(ious, 0.85, 20) == 3 and clicks_to_reach(ious, 0.9, 20) == 4
    assert clicks_to_reach(ious, 0.95, 20) == 20 and clicks_to_reach(ious, 0.5, 20) == 1


def test_summary_and_targets_on_hand_made_rows():
    rows = [
        {"ious": [0.5, 0.86, 0.92], "seconds": [0.2, 0.01, 0.03], "first_on_image": True},
        {"ious": [0.1, 0.2, 0.3], "seconds": [0.02, 0.02, 0.02], "first_on_image": False},
    ]
    summary = summarise(rows, 3)
    assert summary["noc_85"] == (2 + 3) / 2 and summary["noc_90"] == 3 and summary["never_85"] == 0.5
    assert summary["iou_1"] == 0.3 and summary["iou_5"] is None and summary["first_ms_p50"] == 200
    outcome = compare({"baseline_grabcut": {"noc_85": 10.0}, "clicks": {"noc_85": 6.0, "never_85": 0.2}})
    assert outcome["best"] == "clicks" and abs(outcome["fewer_clicks"] - 0.4) < 1e-9 and outcome["holds"]


def test_a_tiny_run_has_every_figure(tmp_path):
    results = run(["baseline_grabcut", "clicks", "magic_wand"], limit=2, max_clicks=3, model=None)
    assert results["instances"] == 2 and set(results["methods"]) == {
        "baseline_grabcut",
        "clicks",
        "magic_wand",
    }
    for method, row in results["methods"].items():
        assert len(row["mean_iou"]) == 3 and 1 <= row["noc_85"] <= 3 and 0 <= row["never_85"] <= 1
        assert row["ms_p50"] is not None and len(results["per_instance"][method]) == 2
    assert results["methods"]["baseline_grabcut"]["iou_1"] == 0.0  # the box costs two clicks
    assert results["comparison"]["best"] in ("clicks", "magic_wand")
    table_path, plot_path = tmp_path / "result.json", tmp_path / "plot.png"
    arguments = ["--limit", "2", "--clicks", "2", "--methods", "clicks,grabcut_box"]
    assert main([*arguments, "--json", str(table_path), "--plot", str(plot_path)]) == 0
    assert set(json.loads(table_path.read_text())["methods"]) == {"clicks", "grabcut_box"}
    assert cv2.imread(str(plot_path)) is not None


def test_draws_run_grabcut_methods_again_with_other_seeds_and_report_their_range():
    methods = ["baseline_grabcut", "grabcut_box", "magic_wand"]
    results = run(methods, limit=3, max_clicks=4, model=None, draws=2)
    box, wand = results["methods"]["grabcut_box"], results["methods"]["magic_wand"]
    assert box["draws"] == 2 and len(box["noc_85_draws"]) == 2 and wand["draws"] == 1
    assert box["noc_85"] == pytest.approx(sum(box["noc_85_draws"]) / 2)
    assert len(results["comparison"]["fewer_clicks_draws"]) == 2
    assert interactors.GRABCUT_SEED == 0  # the tools' own seed is back
    table = format_table(results)
    low, high = min(box["noc_85_draws"]), max(box["noc_85_draws"])
    assert f"{box['noc_85']:.2f} ({low:.2f}-{high:.2f})" in table and "ran 2 draws" in table


def test_side_zero_keeps_the_images_at_their_own_size(tmp_path, capsys):
    path = tmp_path / "own-size.json"
    assert (
        main(["--limit", "1", "--clicks", "1", "--methods", "magic_wand", "--side", "0", "--json", str(path)])
        == 0
    )
    assert (
        json.loads(path.read_text())["side"] is None and "images at their own size" in capsys.readouterr().out
    )
    own, scaled = load_instances(limit=1, side=None)[0], load_instances(limit=1)[0]
    assert max(own.image.shape[:2]) > max(scaled.image.shape[:2]) == 320
    assert own.truth.shape == own.image.shape[:2]
    with pytest.raises(SystemExit) as refused:
        main(["--side", "-1"])
    assert refused.value.code == 2 and "--side" in capsys.readouterr().err


def test_the_latency_mode_times_the_tools_at_640_by_480(tmp_path, capsys):
    path = tmp_path / "latency.json"
    arguments = ["--latency", "--latency-images", "1", "--clicks", "2", "--methods", "magic_wand"]
    assert main([*arguments, "--json", str(path)]) == 0
    figures = json.loads(path.read_text())
    assert figures["images"] == 1 and figures["methods"]["magic_wand"]["ms_p50"] > 0
    assert "640x480" in capsys.readouterr().out


def test_model_regions_plus_clicks_with_a_perfect_model(monkeypatch):
    def truth_as_prediction(model, instances):
        predictions = {}
        for instance in instances:
            predictions.setdefault(instance.image_key, np.zeros(instance.truth.shape, np.uint8))
            predictions[instance.image_key][instance.truth] = 7
        return predictions

    monkeypatch.setattr(interactive_benchmark, "_predictions", truth_as_prediction)
    results = run(["clicks", "model_regions"], limit=2, max_clicks=2, model="a perfect oracle")
    share = results["comparison"]["model_fewer_clicks"]
    assert results["methods"]["model_regions"]["iou_1"] > 0.9 and share > 0
    assert f"{share * 100:.0f} % fewer clicks than the best tool" in format_table(results)
    # A model worse than the tools is reported as costing clicks, not as "-26 % fewer".
    results["comparison"]["model_fewer_clicks"] = -0.26
    assert "26 % more clicks than the best tool" in format_table(results)


def test_the_examples_figure_outlines_each_missed_instance():
    truth = np.zeros((60, 80), bool)
    truth[20:40, 30:50] = True
    picture = np.full((60, 80, 3), 90, np.uint8)
    picture[truth] = 200
    instance = Instance("val/a.jpg", picture, truth, 7, "a.jpg")
    example = {"file": "a.jpg", "annotation_id": 7, "area_px": 400, "one_pixel_iou": 0.81, "best_iou": 0.8}
    figure = draw_examples([instance], [example, example | {"annotation_id": 8}])
    assert figure.ndim == 3 and figure.shape[0] >= 150 and (figure == (0, 220, 0)).all(axis=2).any()
    assert draw_examples([instance], []) is None
