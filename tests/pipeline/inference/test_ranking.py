"""Ranking a split by uncertainty through ONNX Runtime: order, cache, ensembles, bad input, the queue."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from cocoseg.pipeline.core.settings import DEMO_DATASET_DIR
from cocoseg.pipeline.data.registry import add_dataset
from cocoseg.pipeline.inference import ranking as ranking_module
from cocoseg.pipeline.inference.ensembles import create_ensemble
from cocoseg.pipeline.inference.model_store import get_entry
from cocoseg.pipeline.inference.predictor import Predictor
from cocoseg.pipeline.inference.ranking import (
    RankedImage,
    Ranking,
    RankingError,
    covered_region,
    load_ranking,
    picture_path,
    rank_split,
    review_queue,
)
from cocoseg.pipeline.inference.uncertainty import image_scores
from tests.conftest import LIMIT
from tests.pipeline.shapes import write_shapes_dataset

VAL_JSON = DEMO_DATASET_DIR / "annotations" / "instances_val2017.json"


def _row(name, entropy, classes=("person",), margin=0.5):
    return RankedImage(name, hash(name) % 1000, {"entropy": entropy, "margin": margin}, list(classes), "")


def _ranking(rows, by="entropy"):
    return Ranking("model", "0" * 64, "demo", "val", by, "", len(rows), False, [], rows)


def test_queue_orders_by_score_filters_by_class_and_puts_corrected_last():
    ranking = _ranking(
        [_row("a.jpg", 0.2), _row("b.jpg", 0.9, ("cat",)), _row("c.jpg", 0.5), _row("d.jpg", 0.7)]
    )
    queue = review_queue(ranking, corrected=["d.jpg"])
    assert [item.row.file_name for item in queue] == ["b.jpg", "c.jpg", "a.jpg", "d.jpg"]
    assert [item.rank for item in queue] == [1, 3, 4, 2]
    assert [item.corrected for item in queue] == [False, False, False, True]
    assert [item.row.file_name for item in review_queue(ranking, classes=["cat"])] == ["b.jpg"]
    assert [item.row.file_name for item in review_queue(ranking, by="margin")] == [
        "a.jpg",
        "b.jpg",
        "c.jpg",
        "d.jpg",
    ]  # all tie on margin: by file name
    assert review_queue(_ranking([])) == []


def test_covered_region_leaves_letterbox_padding_out():
    region = covered_region(200, 100, 8, "letterbox")
    assert region[2:6].all() and not region[:2].any() and not region[6:].any()
    assert covered_region(200, 100, 8, "shorter-crop").all()
    assert covered_region(200, 100, 8, "stretch").all()


def _small_split(workspace, tmp_path, count=3, broken=()):
    """A copy of the first ``count`` demo val images (with their annotations) registered as ``small/val``."""
    data = json.loads(VAL_JSON.read_text())
    images = data["images"][:count]
    kept = {image["id"] for image in images}
    folder = tmp_path / "small"
    folder.mkdir()
    for image in images:
        shutil.copy(DEMO_DATASET_DIR / "val2017" / image["file_name"], folder / image["file_name"])
    for index in broken:
        target = folder / images[index]["file_name"]
        target.write_bytes(target.read_bytes()[:200])  # a truncated JPEG: the header reads, the pixels do not
    payload = {
        **data,
        "images": images,
        "annotations": [a for a in data["annotations"] if a["image_id"] in kept],
    }
    annotations = tmp_path / "small.json"
    annotations.write_text(json.dumps(payload))
    add_dataset(workspace, "small", annotations, folder, split="val")
    return images


@pytest.mark.slow
def test_ranking_scores_every_image_in_order_and_saves_pictures(prepared_workspace, exported_models):
    model = exported_models[0]
    ranking = rank_split(prepared_workspace, model, "demo", "val", LIMIT)
    assert ranking.images == 80 and len(ranking.rows) == 80 and not ranking.partial and not ranking.skipped
    entropies = [row.scores["entropy"] for row in ranking.rows]
    assert entropies == sorted(entropies, reverse=True) and len(set(entropies)) > 10
    assert all(0 <= row.scores["margin"] <= 1 and 0 <= row.scores["rarity"] <= 1 for row in ranking.rows)
    assert all(row.scores["disagreement"] is None for row in ranking.rows)
    picture = cv2.imread(str(picture_path(prepared_workspace, ranking, ranking.rows[0])))
    assert picture is not None and picture.shape[1] == ranking_module.MAP_WIDTH
    assert load_ranking(prepared_workspace, model, "demo", "val") == ranking

    # the top image's entropy is what the model's own probabilities give on its covered pixels
    entry = get_entry(prepared_workspace, model)
    predictor = Predictor(entry)
    top = ranking.rows[0]
    image = cv2.cvtColor(cv2.imread(str(DEMO_DATASET_DIR / "val2017" / top.file_name)), cv2.COLOR_BGR2RGB)
    _mask, probabilities = predictor.run_batch(predictor.prepare(image)[None], probabilities=True)
    region = covered_region(image.shape[1], image.shape[0], entry.size, entry.resize)
    assert image_scores(probabilities[0], region=region)["entropy"] == pytest.approx(
        top.scores["entropy"], abs=1e-5
    )


@pytest.mark.slow
def test_ranking_again_reads_the_cache(prepared_workspace, exported_models, monkeypatch):
    model = exported_models[0]
    first = rank_split(prepared_workspace, model, "demo", "val", LIMIT)

    def no_model(*_arguments):
        raise AssertionError("the model ran although every image was cached")

    monkeypatch.setattr(ranking_module._Scorer, "probabilities", no_model)
    again = rank_split(prepared_workspace, model, "demo", "val", LIMIT, by="margin")
    assert {row.file_name: row.scores for row in again.rows} == {
        row.file_name: row.scores for row in first.rows
    }
    margins = [row.scores["margin"] for row in again.rows]
    assert margins == sorted(margins, reverse=True)


@pytest.fixture(scope="module")
def ranking_ensemble(prepared_workspace, exported_models):
    return create_ensemble(prepared_workspace, "rank-mean", exported_models, "mean", LIMIT).name


@pytest.mark.slow
def test_ensemble_ranking_gives_member_disagreement(prepared_workspace, exported_models, ranking_ensemble):
    ranking = rank_split(prepared_workspace, ranking_ensemble, "demo", "val", LIMIT, by="disagreement")
    values = [row.scores["disagreement"] for row in ranking.rows]
    assert values == sorted(values, reverse=True)
    assert all(0 <= value <= 1 for value in values) and max(values) > 0
    assert all(row.scores["bald"] is not None for row in ranking.rows)


@pytest.mark.slow
def test_single_model_cannot_rank_by_disagreement(prepared_workspace, exported_models):
    with pytest.raises(RankingError, match="ensemble"):
        rank_split(prepared_workspace, exported_models[0], "demo", "val", LIMIT, by="disagreement")
    with pytest.raises(RankingError, match="rank by one of"):
        rank_split(prepared_workspace, exported_models[0], "demo", "val", LIMIT, by="loudness")


@pytest.mark.slow
def test_unreadable_image_is_skipped_listed_and_the_rest_ranked(
    prepared_workspace, exported_models, tmp_path
):
    images = _small_split(prepared_workspace, tmp_path, count=3, broken=[1])
    ranking = rank_split(prepared_workspace, exported_models[0], "small", "val", LIMIT)
    assert len(ranking.rows) == 2 and ranking.images == 3
    assert [item["file_name"] for item in ranking.skipped] == [images[1]["file_name"]]
    assert ranking.skipped[0]["reason"]


@pytest.mark.slow
def test_cancel_keeps_the_images_scored_so_far_marked_partial(prepared_workspace, exported_models):
    model = exported_models[1]

    def cancel_after_first_batch(done, total):
        raise KeyboardInterrupt(f"cancelled at {done} of {total}")

    with pytest.raises(KeyboardInterrupt):
        rank_split(prepared_workspace, model, "demo", "val", LIMIT, progress=cancel_after_first_batch)
    saved = load_ranking(prepared_workspace, model, "demo", "val")
    assert saved.partial and len(saved.rows) == ranking_module.BATCH_SIZE and saved.images == 80


@pytest.mark.slow
def test_rarity_needs_labels_that_fit_the_model(prepared_workspace, exported_models, tmp_path):
    annotations, images = write_shapes_dataset(tmp_path / "shapes", 4, seed=3)
    add_dataset(prepared_workspace, "shapes", annotations, images, split="val")
    model = exported_models[0]
    with pytest.raises(RankingError, match=r"voc21 label map .*categories do not give the same classes"):
        rank_split(prepared_workspace, model, "shapes", "val", LIMIT, by="rarity")
    ranking = rank_split(prepared_workspace, model, "shapes", "val", LIMIT)
    assert len(ranking.rows) == 4 and all(row.scores["rarity"] is None for row in ranking.rows)


@pytest.mark.slow
def test_a_split_of_no_images_gives_an_empty_ranking(prepared_workspace, exported_models, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    cv2.imwrite(str(folder / "unlisted.jpg"), np.zeros((8, 8, 3), np.uint8))
    annotations = tmp_path / "empty.json"
    annotations.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    add_dataset(prepared_workspace, "nothing", annotations, folder, split="val")
    ranking = rank_split(prepared_workspace, exported_models[0], "nothing", "val", LIMIT)
    assert ranking.rows == [] and ranking.images == 0 and not ranking.partial


@pytest.mark.slow
def test_the_rank_job_runs_in_its_own_process_and_its_cancel_keeps_a_partial_ranking(
    prepared_workspace, exported_models, ranking_ensemble, monkeypatch
):
    from cocoseg.pipeline.core import settings as settings_module
    from cocoseg.pipeline.jobs import cancel, queue, run_and_watch

    request = {"model": ranking_ensemble, "dataset": "demo", "split": "val", "by": "bald"}
    finished = run_and_watch(
        prepared_workspace, "rank", queue(prepared_workspace, "rank", request).name, "test"
    )
    assert finished.ok and finished.result["ranked"] == 80 and finished.result["by"] == "bald"

    monkeypatch.setenv("COCOSEG_JOB_THROTTLE_SECONDS", "2")  # the job process pauses after each batch
    settings_module.get_settings.cache_clear()
    entry = queue(prepared_workspace, "rank", request)
    seen = []

    def cancel_at_first_batch(event):
        seen.append(event)
        if len(seen) == 1:
            cancel(entry, "test")

    outcome = run_and_watch(prepared_workspace, "rank", entry.name, "test", cancel_at_first_batch)
    assert outcome.status == "cancelled", outcome.message
    saved = load_ranking(prepared_workspace, ranking_ensemble, "demo", "val")
    assert saved.partial and ranking_module.BATCH_SIZE <= len(saved.rows) < 80


@pytest.mark.slow
def test_an_unlabelled_image_folder_is_ranked_with_rarity_from_the_predictions(
    prepared_workspace, exported_models, tmp_path
):
    from cocoseg.pipeline.data.registry import add_image_folder

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in sorted(path.name for path in (DEMO_DATASET_DIR / "val2017").glob("*.jpg"))[:4]:
        shutil.copy(DEMO_DATASET_DIR / "val2017" / name, folder / name)
    (folder / "broken.jpg").write_bytes(b"not a picture")
    add_image_folder(prepared_workspace, "photos", folder, split="new")
    ranking = rank_split(prepared_workspace, exported_models[0], "photos", "new", LIMIT, by="rarity")
    assert ranking.unlabelled and len(ranking.rows) == 4 and ranking.images == 5
    assert [item["file_name"] for item in ranking.skipped] == ["broken.jpg"]
    rarities = [row.scores["rarity"] for row in ranking.rows]
    assert rarities == sorted(rarities, reverse=True) and all(0 <= value <= 1 for value in rarities)
