"""The Review page's layout and callbacks called as functions, on a ranking written by hand over real
demo images (the ranking job itself is tested in tests/pipeline/inference/test_ranking.py)."""

from __future__ import annotations

import json

import cv2
import numpy as np
from dash import no_update

from cocoseg.app import annotate_saving
from cocoseg.app.ids import Review
from cocoseg.app.links import annotate_link, next_in_queue
from cocoseg.app.main import create_app
from cocoseg.pipeline.data.labels import build_label_map
from cocoseg.pipeline.inference.ranking import RankedImage, Ranking, pictures_folder, ranking_file
from tests.app.test_annotate_page import _by_id, publish_card
from tests.app.test_main import _text, _walk
from tests.app.test_pages import _module
from tests.conftest import DEMO_VAL_IMAGES

FILES = [path.name for path in sorted(DEMO_VAL_IMAGES.glob("*.jpg"))[:3]]


def _write_ranking(workspace, model="voc-model"):
    folder = pictures_folder(workspace, model, "demo", "val")
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "1.jpg"), np.zeros((8, 16, 3), np.uint8))
    rows = [
        RankedImage(FILES[0], 1, {"entropy": 0.2, "margin": 0.9}, ["person"], f"{folder.name}/1.jpg"),
        RankedImage(FILES[1], 2, {"entropy": 0.8, "margin": 0.1}, ["cat", "person"], f"{folder.name}/2.jpg"),
        RankedImage(FILES[2], 3, {"entropy": 0.5, "margin": 0.5}, [], f"{folder.name}/3.jpg"),
    ]
    skipped = [{"file_name": "gone.jpg", "reason": "gone.jpg: file not found"}]
    ranking = Ranking(
        model, "0" * 64, "demo", "val", "entropy", "2026-12-01T10:00:00", 4, False, skipped, rows
    )
    ranking_file(workspace, model, "demo", "val").write_text(json.dumps(ranking.to_dict()))
    return ranking


def _save_correction(workspace, file_name):
    workspace.annotations_dir.mkdir(parents=True, exist_ok=True)
    image = {"id": 1, "file_name": file_name, "width": 10, "height": 10, "saved": "2026-12-01T10:05:00"}
    payload = {"images": [image], "annotations": [], "categories": []}
    (workspace.annotations_dir / "demo.json").write_text(json.dumps(payload))


def _show(app, *arguments):
    with app.server.test_request_context("/review"):
        return _module("review").show_queue(*arguments)


def test_without_models_the_page_says_how_to_get_one(workspace):
    app = create_app(workspace)
    with app.server.test_request_context("/review"):
        text = _text(_module("review").layout())
    assert "No model to rank with yet." in text and "cocoseg models import" in text


def test_the_query_chooses_model_and_split(workspace):
    publish_card(workspace, "voc-model", build_label_map("voc21"))
    publish_card(workspace, "other", build_label_map("voc21"))
    app = create_app(workspace)
    with app.server.test_request_context("/review"):
        components = _by_id(_module("review").layout(model="other", dataset="demo", split="train"))
        plain = _by_id(_module("review").layout(model="deleted", dataset="nowhere"))
    assert components[Review.MODEL].value == "other" and components[Review.SPLIT].value == "demo/train"
    first = plain[Review.MODEL].options[0]["value"]
    assert plain[Review.MODEL].value == first and plain[Review.SPLIT].value == "demo/val"


def test_an_unranked_split_says_so(workspace):
    publish_card(workspace, "voc-model", build_label_map("voc21"))
    cards, summary, options, links = _show(create_app(workspace), "voc-model", "demo/val", "entropy", [], 0)
    assert "not ranked by voc-model yet" in _text(cards) and options == [] and links is no_update


def test_the_queue_is_in_score_order_links_into_annotate_and_puts_corrected_images_last(workspace):
    publish_card(workspace, "voc-model", build_label_map("voc21"))
    _write_ranking(workspace)
    _save_correction(workspace, FILES[1])
    app = create_app(workspace)
    cards, summary, options, links = _show(app, "voc-model", "demo/val", "entropy", [], 0)
    hrefs = [card.href for card in cards]
    assert hrefs == [
        annotate_link("demo", "val", name, "voc-model") for name in (FILES[2], FILES[0], FILES[1])
    ]
    assert ["review-done" in card.className for card in cards] == [False, False, True]
    assert [link["file"] for link in links] == [FILES[2], FILES[0]]  # Annotate's "next": not yet corrected
    assert options == ["cat", "person"]
    text = _text(summary)
    assert "3 of 4 images of demo/val ranked by entropy" in text and "1 corrected, at the end" in text
    assert "1 images could not be read" in text and "gone.jpg: file not found" in text
    pictures = [
        component for component in _walk(cards[1]) if getattr(component, "className", "") == "review-map"
    ]
    assert pictures and pictures[0].src.startswith("data:image/jpeg;base64,")  # the uncertainty picture
    assert "#1" in _text(cards[2]) and "0.800" in _text(cards[2]) and "corrected" in _text(cards[2])


def test_other_scores_and_the_class_filter(workspace):
    publish_card(workspace, "voc-model", build_label_map("voc21"))
    _write_ranking(workspace)
    app = create_app(workspace)
    by_margin, *_ = _show(app, "voc-model", "demo/val", "margin", [], 0)
    assert [card.href.split("image=")[1].split("&")[0] for card in by_margin][0] == FILES[0]
    cats, *_ = _show(app, "voc-model", "demo/val", "entropy", ["cat"], 0)
    assert len(cats) == 1 and FILES[1] in cats[0].href
    unavailable, summary, *_ = _show(app, "voc-model", "demo/val", "disagreement", [], 0)
    assert "ranked by entropy" in _text(summary)  # a score the ranking lacks falls back to its own


def test_rank_is_refused_beside_the_button_for_a_score_the_model_cannot_give(workspace):
    publish_card(workspace, "voc-model", build_label_map("voc21"))
    app = create_app(workspace)
    with app.server.test_request_context("/review"):
        message, queued = _module("review").start_ranking(1, "voc-model", "demo/val", "disagreement")
        missing, _ = _module("review").start_ranking(1, "deleted", "demo/val", "entropy")
        started, job = _module("review").start_ranking(1, "voc-model", "demo/val", "entropy")
    assert "Not started" in _text(message) and "ensemble" in _text(message) and queued is no_update
    assert "Not started" in _text(missing) and "deleted" in _text(missing)
    assert "Ranking demo/val with voc-model" in _text(started) and job["job"].startswith("rank-")


def test_ensemble_scores_are_offered_for_ensembles_only(workspace):
    publish_card(workspace, "voc-model", build_label_map("voc21"))
    card = {"kind": "ensemble", "label_map": build_label_map("voc21").to_dict(), "file": "model.onnx"}
    (workspace.ensembles_dir / "duo").mkdir(parents=True)
    (workspace.ensembles_dir / "duo" / "model.json").write_text(json.dumps({**card, "sha256": "0" * 64}))
    app = create_app(workspace)
    with app.server.test_request_context("/review"):
        single = _module("review").score_choices("voc-model")
        unknown = _module("review").score_choices("deleted")
        ensemble = _module("review").score_choices("duo")

    def disabled(options):
        return {option["value"] for option in options if option["disabled"]}

    assert disabled(single) == disabled(unknown) == {"disagreement", "bald"} and not disabled(ensemble)


def test_next_in_queue_skips_corrected_images_and_wraps_around():
    queue = [{"file": name, "link": f"/annotate?image={name}"} for name in ("a", "b", "c", "d")]
    assert next_in_queue(queue, "b", corrected=["c"]) == "/annotate?image=d"
    assert next_in_queue(queue, "d", corrected=[]) == "/annotate?image=a"
    assert next_in_queue(queue, "elsewhere", corrected=["a"]) == "/annotate?image=b"
    assert next_in_queue(queue, "a", corrected=["b", "c", "d"]) is None
    assert next_in_queue(None, None, corrected=[]) is None


def test_annotate_next_moves_to_the_next_link_or_says_the_queue_is_done(workspace):
    _save_correction(workspace, FILES[1])
    app = create_app(workspace)
    queue = [{"file": name, "link": annotate_link("demo", "val", name, "m")} for name in FILES]
    current = {"key": "k", "source": "", "collection": "demo", "file_name": FILES[0], "width": 1, "height": 1}
    with app.server.test_request_context("/annotate"):
        href, message = annotate_saving.open_next(1, queue, current, "demo/val")
        done_href, done = annotate_saving.open_next(1, queue[:2], current, "demo/val")
    assert href == annotate_link("demo", "val", FILES[2], "m") and message is no_update
    assert done_href is no_update and "Nothing left in the review queue" in _text(done)


def test_showing_annotate_without_a_click_on_next_changes_nothing(workspace):
    """Dash calls ``open_next`` when the page is shown (its url output is the app frame's)."""
    app = create_app(workspace)
    with app.server.test_request_context("/annotate"):
        for queue in ([], None, [{"file": FILES[0], "link": annotate_link("demo", "val", FILES[0])}]):
            assert annotate_saving.open_next(None, queue, None, "demo/val") == (no_update, no_update)


def test_a_split_of_no_images_gives_an_empty_queue_with_a_message(workspace):
    publish_card(workspace, "voc-model", build_label_map("voc21"))
    empty = Ranking("voc-model", "0" * 64, "demo", "val", "entropy", "2026-12-01T10:00:00", 0, False, [], [])
    ranking_file(workspace, "voc-model", "demo", "val").parent.mkdir(parents=True)
    ranking_file(workspace, "voc-model", "demo", "val").write_text(json.dumps(empty.to_dict()))
    cards, summary, options, links = _show(create_app(workspace), "voc-model", "demo/val", "entropy", [], 0)
    assert "demo/val has no images." in _text(cards) and "cocoseg data add" in _text(cards)
    assert "0 of 0 images" in _text(summary) and links == []


def test_a_forged_or_stale_job_in_the_store_runs_and_cancels_nothing(workspace):
    """The Store is the browser's: a name that is no job (a path, empty, missing) is refused quietly."""
    app = create_app(workspace)
    review = _module("review")
    with app.server.test_request_context("/review"):
        for forged in ({"job": "../../etc"}, {"job": ""}, {}, {"job": "rank-20261201-000000-dead"}):
            assert review.watch_ranking(lambda _value: None, forged, 0) == (no_update, no_update)
            assert review.cancel_ranking(1, forged) is no_update
