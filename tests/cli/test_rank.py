"""``cocoseg rank`` as a user runs it: two tiny exported models and their ensemble on the demo."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.cli.test_cli import run_cocoseg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(prepared_workspace, exported_models, tmp_path_factory):
    """A copy of the session workspace, with an ensemble of the two models made through the CLI."""
    target = tmp_path_factory.mktemp("cli-rank") / "home"
    shutil.copytree(prepared_workspace.root, target, ignore=shutil.ignore_patterns("locks"))
    created = run_cocoseg("ensemble", "create", "duo", "--members", *exported_models, home=target)
    assert created.returncode == 0, created.stderr
    return target


def test_rank_prints_the_most_uncertain_images_first_and_writes_the_ranking(home, exported_models):
    finished = run_cocoseg("rank", exported_models[0], "demo", "--split", "val", "--top", "5", home=home)
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[0].split()[:3] == ["rank", "file", "entropy"]
    scores = [float(line.split()[2]) for line in lines[1:6]]
    assert scores == sorted(scores, reverse=True) and len(lines[1:6]) == 5
    assert "80 images ranked" in finished.stdout
    saved = home / "rankings" / exported_models[0] / "demo.val.json"
    assert f"ranking written to {saved}" in finished.stdout
    assert len(json.loads(saved.read_text())["rows"]) == 80


def test_rank_json_of_the_second_model_by_margin(home, exported_models):
    finished = run_cocoseg(
        "rank", exported_models[1], "demo", "--by", "margin", "--top", "3", "--json", home=home
    )
    assert finished.returncode == 0, finished.stderr
    payload = json.loads(finished.stdout)
    assert payload["model"] == exported_models[1] and payload["by"] == "margin" and not payload["partial"]
    margins = [row["scores"]["margin"] for row in payload["rows"]]
    assert len(margins) == 3 and margins == sorted(margins, reverse=True)


def test_rank_an_ensemble_by_disagreement_and_bald(home):
    for score in ("disagreement", "bald"):
        finished = run_cocoseg("rank", "duo", "demo", "--by", score, "--json", "--top", "0", home=home)
        assert finished.returncode == 0, finished.stderr
        rows = json.loads(finished.stdout)["rows"]
        values = [row["scores"][score] for row in rows]
        assert len(values) == 80 and values == sorted(values, reverse=True) and max(values) > 0


def test_rank_refusals_are_one_line_without_a_traceback(home, exported_models):
    single = run_cocoseg("rank", exported_models[0], "demo", "--by", "disagreement", home=home)
    assert single.returncode == 3 and "cocoseg: error:" in single.stderr and "ensemble" in single.stderr
    unknown = run_cocoseg("rank", exported_models[0], "nowhere", home=home)
    assert unknown.returncode == 3 and "no dataset called 'nowhere'" in unknown.stderr
    missing = run_cocoseg("rank", "no-such-model", "demo", home=home)
    assert missing.returncode == 3 and "no-such-model" in missing.stderr
    for finished in (single, unknown, missing):
        assert "Traceback" not in finished.stderr
