"""The Annotate page in a real browser: pre-fill from a model, paint a stroke, save, read it back with
pycocotools.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from cocoseg.pipeline.data.labels import build_label_map
from tests.conftest import DEMO_VAL_JSON

pytestmark = [pytest.mark.browser]

VOC_PERSON = 15


def open_first_image(page, url: str, index: int = 0) -> str:
    page.goto(url + "/annotate")
    page.locator("#annotate-image").click()
    option = page.get_by_role("option").nth(index)
    name = option.inner_text().strip()
    option.click()
    page.locator("#annotate-message", has_text="Opened").wait_for(timeout=30_000)
    return name


def upper_canvas(page):
    canvas = page.locator(".annotate-canvas canvas.upper-canvas")
    canvas.wait_for(timeout=10_000)
    return canvas


def paint_stroke(page, class_name: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Pick ``class_name`` and drag the brush from ``start`` to ``end`` (fractions of the canvas)."""
    page.locator("#annotate-class label", has_text=class_name).click()
    box = upper_canvas(page).bounding_box()
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=12)
    page.mouse.up()


def test_prefill_paint_save_and_read_back_with_pycocotools(model_server, page, screenshot_dir):
    file_name = open_first_image(page, model_server.url)
    page.get_by_role("button", name="Pre-fill").click()
    page.locator("#annotate-message", has_text="Pre-filled with").wait_for(timeout=60_000)
    paint_stroke(page, "person", (0.30, 0.50), (0.60, 0.50))  # the brush at its default, 12 canvas pixels
    page.keyboard.press(" ")  # preview
    page.locator("#annotate-legend", has_text="person").wait_for(timeout=30_000)
    page.keyboard.press("Control+s")
    page.locator("#annotate-message", has_text="Saved").wait_for(timeout=30_000)
    page.screenshot(path=str(screenshot_dir / "annotate.png"))

    saved = json.loads((model_server.home / "annotations" / "demo.json").read_text())
    image = next(item for item in saved["images"] if item["file_name"] == file_name)
    label_map = build_label_map("voc21", json.loads(DEMO_VAL_JSON.read_text())["categories"])
    person_ids = set(label_map.class_to_categories[VOC_PERSON])
    people = [
        item
        for item in saved["annotations"]
        if item["image_id"] == image["id"] and item["category_id"] in person_ids
    ]
    assert len(people) == 1
    mask = coco_mask.decode(
        coco_mask.frPyObjects(people[0]["segmentation"], image["height"], image["width"])
        if isinstance(people[0]["segmentation"]["counts"], list)
        else people[0]["segmentation"]
    )
    row = int(image["height"] * 0.50)
    drawn = mask[row, int(image["width"] * 0.35) : int(image["width"] * 0.55)]
    assert drawn.mean() > 0.95, "the stroke's pixels are person in the saved mask"
    assert int(np.round(people[0]["area"])) == int(mask.sum())

    page.fill("#annotate-register-name", "demo-fixed")  # back into training: the demo with this correction
    page.get_by_role("button", name="Register").click()
    page.locator("#annotate-register-message", has_text="Registered demo-fixed").wait_for(timeout=30_000)
    from cocoseg.pipeline.core.workspace import Workspace
    from cocoseg.pipeline.prepare.config import PrepareConfig
    from cocoseg.pipeline.prepare.plan import plan
    from tests.conftest import LIMIT

    planned = plan(Workspace(model_server.home), PrepareConfig("demo-fixed", labels="voc21", size=64), LIMIT)
    assert {split.name for split in planned.splits} == {"train", "val"}
    assert page.problems.all() == []


def test_a_second_tab_cannot_overwrite_a_save_it_has_not_seen(model_server, browser, page):
    file_name = open_first_image(page, model_server.url)
    other_context = browser.new_context(viewport={"width": 1400, "height": 900})
    other = other_context.new_page()
    try:
        assert open_first_image(other, model_server.url) == file_name
        for tab in (page, other):
            tab.locator("#annotate-class label", has_text="cat").click()
            box = upper_canvas(tab).bounding_box()
            tab.mouse.move(box["x"] + 40, box["y"] + 40)
            tab.mouse.down()
            tab.mouse.move(box["x"] + 120, box["y"] + 60, steps=8)
            tab.mouse.up()
        page.get_by_role("button", name="Save (Ctrl+S)").click()
        page.locator("#annotate-message", has_text="Saved").wait_for(timeout=30_000)
        other.get_by_role("button", name="Save (Ctrl+S)").click()
        other.locator("#annotate-message", has_text="changed since you opened it: reload").wait_for(
            timeout=30_000
        )
    finally:
        other_context.close()


def test_an_empty_canvas_is_refused_and_nothing_is_written(model_server, page):
    open_first_image(page, model_server.url, index=5)  # an image no other test saves
    before = (
        (model_server.home / "annotations" / "demo.json").read_bytes()
        if (model_server.home / "annotations" / "demo.json").exists()
        else None
    )
    page.get_by_role("button", name="Save (Ctrl+S)").click()
    page.locator("#annotate-message", has_text="Not saved").wait_for(timeout=30_000)
    after = (
        (model_server.home / "annotations" / "demo.json").read_bytes()
        if (model_server.home / "annotations" / "demo.json").exists()
        else None
    )
    assert before == after
    page.locator("#annotate-legend", has_text="dataset's own annotations").wait_for(
        timeout=30_000
    )  # shown before any stroke
    page.get_by_role(
        "button", name="From annotations"
    ).click()  # correct the dataset itself: its labels are the start
    page.locator("#annotate-message", has_text="Started from the dataset's annotations").wait_for(
        timeout=30_000
    )
    page.get_by_role("button", name="Save (Ctrl+S)").click()
    page.locator("#annotate-message", has_text="Saved").wait_for(timeout=30_000)
    assert page.problems.all() == []


STORED_PROP = """([componentId, prop]) => {
    const state = window.store.getState();
    let node = state.layout;
    for (const key of state.paths.strs[componentId]) node = node[key];
    return node.props[prop] === undefined ? null : node.props[prop];
}"""


def _image_opens(request) -> bool:
    """A callback request that would open an image from the image dropdown's value."""
    if not request.url.endswith("/_dash-update-component") or not request.post_data:
        return False
    inputs = json.loads(request.post_data).get("inputs", [])
    return any(item.get("id") == "annotate-image" and item.get("value") for item in inputs)


def test_a_deep_link_opens_the_image_pre_filled_by_its_model(model_server, exported_models, page):
    from cocoseg.app.links import annotate_link

    model = exported_models[0]
    image = json.loads(DEMO_VAL_JSON.read_text())["images"][10]  # an image no other test opens
    dropdown_opens = []
    page.on("request", lambda request: dropdown_opens.append(request.url) if _image_opens(request) else None)
    page.goto(model_server.url + annotate_link("demo", "val", image["file_name"], model))
    page.locator("#annotate-message", has_text=f"Pre-filled with {model}").wait_for(timeout=60_000)
    current = page.evaluate(STORED_PROP, ["annotate-current", "data"])
    assert (current["file_name"], current["width"], current["height"]) == (
        image["file_name"],
        image["width"],
        image["height"],
    )
    assert current["base"]  # the model's mask is the starting layer
    page.locator(f"#annotate-holder-{current['key'][:12]}-{model} canvas.upper-canvas").wait_for()
    page.wait_for_function(  # the split's images fill the dropdown, which still names the linked file
        f"() => ({STORED_PROP})(['annotate-image', 'options']).length > 1", timeout=30_000
    )
    assert page.evaluate(STORED_PROP, ["annotate-image", "value"]) == image["file_name"]
    page.locator("#annotate-image", has_text=image["file_name"]).wait_for()
    page.locator("#annotate-model", has_text=model).wait_for()
    page.wait_for_function(  # the new canvas paints with the chosen class (the first), not the eraser
        f"() => {{ const prop = {STORED_PROP}; const chosen = prop(['annotate-class', 'value']);"
        " return Boolean(chosen) && prop(['annotate-canvas', 'lineColor']) === chosen; }",
        timeout=30_000,
    )
    page.locator(f'#annotate-preview img[alt="{image["file_name"]}"]').wait_for(timeout=30_000)
    assert dropdown_opens == [], "the link's image is opened once, by the link, not again by the dropdown"
    assert page.problems.all() == []


def test_a_deep_link_to_an_unknown_image_says_so_and_opens_nothing(model_server, page):
    from cocoseg.app.links import annotate_link

    page.goto(model_server.url + annotate_link("demo", "val", "missing.jpg", "pair-mean"))
    page.locator(
        "#annotate-message", has_text="This link cannot be opened: no image 'missing.jpg' in demo/val"
    ).wait_for(timeout=30_000)
    assert page.evaluate(STORED_PROP, ["annotate-link", "data"]) is None  # nothing for the page to open
    assert page.evaluate(STORED_PROP, ["annotate-current", "data"]) is None
    page.locator("#annotate-holder-empty").wait_for()
    page.locator("#annotate-preview", has_text="Open an image to start.").wait_for()
    assert page.problems.all() == []
