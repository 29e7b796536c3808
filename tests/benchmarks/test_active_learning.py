"""The active-learning benchmark: its picks and target arithmetic on hand-made arrays, and one tiny
end-to-end simulation (figures are not asserted, only the structure and invariants)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from benchmarks.active_learning import (
    STRATEGIES,
    choose,
    format_table,
    labels_to_reach,
    main,
    rarest_class,
    target,
)
from benchmarks.line_chart import Series, _emptiest_corner, draw_line_chart, nice_ticks
from cocoseg.pipeline.inference.uncertainty import pixel_entropy


def _probabilities(first: float) -> np.ndarray:
    """A 2x2 two-class map with probability ``first`` for class 0 everywhere."""
    return np.broadcast_to(np.array([first, 1.0 - first], np.float32), (2, 2, 2)).copy()


def test_uncertainty_strategies_pick_the_least_sure_images():
    candidates = np.array([10, 11, 12, 13])
    probabilities = np.stack([_probabilities(value) for value in (0.99, 0.5, 0.9, 0.6)])
    for strategy in ("entropy", "margin"):
        chosen, scores = choose(strategy, candidates, 2, np.random.default_rng(0), probabilities)
        assert chosen.tolist() == [11, 13] and len(scores) == 4
    member = np.stack([_probabilities(value) for value in (0.99, 0.6, 0.1, 0.55)])  # disagrees on 12
    chosen, scores = choose("disagreement", candidates, 1, np.random.default_rng(0), probabilities, member)
    assert chosen.tolist() == [12] and scores == [0.0, 0.0, 1.0, 0.0]
    chosen, scores = choose("random", candidates, 3, np.random.default_rng(0), probabilities)
    assert scores is None and len(set(chosen.tolist())) == 3 and set(chosen.tolist()) <= set(candidates)


def test_labels_to_reach_interpolates_between_rounds():
    assert labels_to_reach([8, 16, 24], [0.2, 0.4, 0.8], 0.6) == pytest.approx(20.0)
    assert labels_to_reach([8, 16, 24], [0.7, 0.4, 0.8], 0.6) == 8.0
    assert labels_to_reach([8, 16, 24], [0.2, 0.4, 0.5], 0.6) is None


def test_target_holds_only_at_or_under_seventy_percent():
    def rows(means):
        return [{"labelled": 10 * (index + 1), "mean": mean, "std": 0.0} for index, mean in enumerate(means)]

    summary = {"random": rows([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])}
    summary |= {"entropy": rows([0.1, 0.3, 0.5, 0.7, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0])}
    summary |= {"margin": rows([0.1] * 10), "disagreement": rows([0.1] * 9 + [1.0])}
    goal = target(summary)
    assert goal["best"] == "entropy" and goal["share"] == pytest.approx(0.6) and goal["holds"]
    assert goal["labels_needed"]["margin"] is None and goal["labels_needed"]["disagreement"] == 100
    summary["entropy"] = rows([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.0])
    assert not target(summary)["holds"]


def test_rarest_class_counts_images_not_pixels():
    masks = np.zeros((4, 2, 2), np.uint8)
    masks[:, 0, 0] = 1  # class 1 in every image
    masks[0] = 2  # class 2 fills one image
    index, present = rarest_class(masks, 4)  # class 3 is absent: not the rarest
    assert index == 2 and present.tolist() == [True, False, False, False]


def test_line_chart_draws_every_series():
    assert nice_ticks(8, 48) == [0, 10, 20, 30, 40, 50]
    series = [Series("a", [1, 2, 3], [1, 2, 3], [0, 1, 2], [2, 3, 4]), Series("b", [1, 2, 3], [3, 2, 1])]
    picture = draw_line_chart(series, "title", "x", "y", size=(400, 300))
    assert picture.shape == (300, 400, 3) and len(np.unique(picture.reshape(-1, 3), axis=0)) > 10


def test_the_legend_goes_to_the_corner_the_lines_leave_empty():
    plot, size = (0, 0, 200, 100), (50, 30)
    rising = [(x, 100 - x // 2) for x in range(0, 200, 5)]  # from bottom left to top right
    assert _emptiest_corner(rising, plot, size) == (6, 6)  # top left is free
    falling = [(x, x // 2) for x in range(0, 200, 5)] + [(10, 10)]  # and top left is taken
    assert _emptiest_corner(falling, plot, size) == (144, 6)  # top right


@pytest.mark.slow
def test_tiny_simulation_keeps_its_invariants(tmp_path, capsys):
    """One run through the command line: shapes at 32 px, 2 rounds of 4, 1 seed, 2 steps per training."""
    plot, figures = tmp_path / "curves.png", tmp_path / "figures.json"
    arguments = "--seeds 1 --rounds 2 --per-round 4 --steps 2 --size 32 --base-filters 4 --pool 24 --val 8"
    arguments = [*arguments.split(), "--rare-share", "0.2", "--plot", str(plot), "--json", str(figures)]
    assert main(arguments) == 0
    results = json.loads(figures.read_text())
    runs = results["runs"]
    assert set(runs) == set(STRATEGIES) and all(len(seeds) == 1 for seeds in runs.values())
    first_round = runs["random"][0][0]
    for strategy, (rounds,) in runs.items():
        assert [row["labelled"] for row in rounds] == [4, 8, 12]
        assert rounds[0]["chosen"] == first_round["chosen"]  # one shared random start
        labelled = [image for row in rounds for image in row["chosen"]]
        assert len(labelled) == len(set(labelled)) == 12
        assert all(0.0 <= row["miou"] <= 1.0 for row in rounds)
        for number, row in enumerate(rounds[1:], start=1):
            earlier = {image for previous in rounds[:number] for image in previous["chosen"]}
            assert set(row["candidates"]) == set(range(results["pool_images"])) - earlier
            if strategy != "random":
                scores = dict(zip(row["candidates"], row["scores"]))
                others = [scores[image] for image in row["candidates"] if image not in row["chosen"]]
                assert min(scores[image] for image in row["chosen"]) >= max(others)
    assert all(0.0 <= value <= 1.0 for value in runs["entropy"][0][1]["scores"])
    assert [row["labelled"] for row in results["summary"]["entropy"]] == [4, 8, 12]
    picture = cv2.imread(str(plot))
    assert picture is not None and picture.shape[2] == 3
    table = capsys.readouterr().out
    assert "| labelled | random | entropy | margin | disagreement |" in table
    assert "Random's final mean val mIoU" in table and "70%" in table
    assert format_table(results) in table


def test_entropy_scores_match_the_uncertainty_module():
    probabilities = np.stack([_probabilities(value) for value in (0.7, 0.5)])
    _, scores = choose("entropy", np.array([0, 1]), 1, np.random.default_rng(0), probabilities)
    assert scores == pytest.approx(
        [float(pixel_entropy(probability).mean()) for probability in probabilities]
    )
