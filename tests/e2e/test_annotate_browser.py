"""The Annotate page in a real browser: pre-fill from a model, paint a stroke, save, read it back with
pycocotools.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from cocoseg.pipeline.data.labels import build_label_map
from tests.conftest import DEMO_TRAIN_JSON, DEMO_VAL_JSON
from tests.e2e.conftest import assert_fits_window

pytestmark = [pytest.mark.browser]

VOC_PERSON = 15


# dash-canvas loads its picture only after it mounts (and fabric loads it once more): until then the drawing
# is 200 px high, has no picture to place a click on, and loses any stroke when the picture comes (it clears
# the drawing). Shown: the picture is on the fabric drawing, and the canvas has its height.
PICTURE_SHOWN = """() => {
    const frame = document.querySelector("#annotate-canvas-area .canvas-container");
    const fabric = frame && cocosegFabric(frame);
    const picture = fabric && fabric.getObjects().find((item) => item.type === "image");
    return Boolean(picture) && Math.abs(fabric.getHeight() - picture.height * picture.scaleY) < 1;
}"""

# The brush paints with the chosen class: the class's radio is checked and the canvas's brush has its colour
# (lineColor reaches dash-canvas through a server callback, a moment after the click).
BRUSH_PAINTS = """(name) => {
    const choice = [...document.querySelectorAll("#annotate-class .form-check")]
        .find((item) => item.querySelector("label").textContent.toLowerCase().includes(name.toLowerCase()));
    const radio = choice && choice.querySelector("input");
    const frame = document.querySelector("#annotate-canvas-area .canvas-container");
    const fabric = frame && cocosegFabric(frame);
    return Boolean(radio && radio.checked && fabric) && fabric.freeDrawingBrush.color === radio.value;
}"""


def wait_for_picture(page) -> None:
    """Wait until the canvas mounted last shows its picture (call it after the message that mounted it)."""
    page.wait_for_function(PICTURE_SHOWN, timeout=30_000)


def open_first_image(page, url: str, index: int = 0) -> str:
    page.goto(url + "/annotate")
    page.locator("#annotate-image").click()
    option = page.get_by_role("option").nth(index)
    name = option.inner_text().strip()
    option.click()
    page.locator("#annotate-message", has_text="Opened").wait_for(timeout=30_000)
    wait_for_picture(page)
    return name


def upper_canvas(page):
    canvas = page.locator(".annotate-canvas canvas.upper-canvas")
    canvas.wait_for(timeout=10_000)
    return canvas


def paint_stroke(page, class_name: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Pick ``class_name`` and drag the brush from ``start`` to ``end`` (fractions of the canvas)."""
    page.locator("#annotate-class label", has_text=class_name).click()
    wait_for_picture(page)  # the caller may just have mounted a new canvas (a pre-fill)
    page.wait_for_function(BRUSH_PAINTS, arg=class_name, timeout=30_000)
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
    assert_fits_window(page)
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


# The picture's scale on dash-canvas's fabric drawing (cocosegFabric is cocoseg.js's way in).
PICTURE_SCALE = """() => {
    const fabric = cocosegFabric(document.querySelector("#annotate-canvas-area .canvas-container"));
    const picture = fabric && fabric.getObjects().find((item) => item.type === "image");
    return picture ? picture.scaleX : 0;
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
    page.locator("#annotate-holder-empty", has_text="No image open: pick a dataset image").wait_for()
    page.locator("#annotate-preview", has_text="Open an image to start.").wait_for()
    assert page.problems.all() == []


WAIT_FOR_NEW_LAYER = """(before) => {
    const layer = document.getElementById('annotate-layer');
    return Boolean(layer) && layer.src !== before;
}"""  # the Result panel shows another layer


def displayed_classes(page, label_map) -> np.ndarray:
    """The class mask the Result panel shows: its layer PNG (full resolution) read back colour by colour."""
    import base64

    import cv2

    source = page.locator("#annotate-layer").get_attribute("src")
    rgba = cv2.imdecode(
        np.frombuffer(base64.b64decode(source.split(",", 1)[1]), np.uint8), cv2.IMREAD_UNCHANGED
    )
    rgb = cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA)
    classes = np.zeros(rgb.shape[:2], np.uint8)
    for index, colour in enumerate(label_map.palette[1 : label_map.num_classes], 1):
        classes[(rgb[..., :3] == colour).all(axis=2) & (rgb[..., 3] > 0)] = index
    return classes


def test_box_then_a_negative_click_then_save_keeps_exactly_the_displayed_mask(server, page, screenshot_dir):
    """Box tool (B) around a demo object -> a mask; a right click inside removes a part; the saved RLE
    is the mask the page showed."""
    import cv2

    name = open_first_image(page, server.url, index=2)  # on this server no other test saves
    split = page.evaluate(STORED_PROP, ["annotate-dataset", "value"])
    data = json.loads({"demo/train": DEMO_TRAIN_JSON, "demo/val": DEMO_VAL_JSON}[split].read_text())
    image = next(item for item in data["images"] if item["file_name"] == name)
    objects = [
        item for item in data["annotations"] if item["image_id"] == image["id"] and not item["iscrowd"]
    ]
    x, y, width, height = max(objects, key=lambda item: item["area"])["bbox"]
    # the image's dropdown still has the focus: the key picks the tool, and does not open its search
    page.keyboard.press("b")
    page.locator("#annotate-tool input[value=box]:checked").wait_for(timeout=10_000)
    assert page.locator("#annotate-image").get_attribute("aria-expanded") == "false"
    assert page.locator(".dash-dropdown-search").count() == 0
    page.locator("#annotate-class label", has_text="cat").click()
    page.locator("#annotate-layer").wait_for(timeout=30_000)  # the dataset's own annotations, at first
    first_layer = page.locator("#annotate-layer").get_attribute("src")
    canvas = upper_canvas(page).bounding_box()
    scale = canvas["width"] / image["width"]
    page.mouse.move(canvas["x"] + max(0, x - 4) * scale, canvas["y"] + max(0, y - 4) * scale)
    page.mouse.down()
    page.mouse.move(canvas["x"] + (x + width + 4) * scale, canvas["y"] + (y + height + 4) * scale, steps=10)
    page.mouse.up()
    page.locator("#annotate-tool-status", has_text="Box → mask:").wait_for(timeout=30_000)
    page.locator("#annotate-tool-marks .tool-box").wait_for()
    wait_for_picture(page)  # the box's result is a new canvas: the right click below is placed on its picture
    label_map = build_label_map(page.evaluate(STORED_PROP, ["annotate-labels", "value"]), data["categories"])
    cat = label_map.class_names.index("cat")
    page.wait_for_function(WAIT_FOR_NEW_LAYER, arg=first_layer, timeout=30_000)
    boxed = displayed_classes(page, label_map) == cat
    assert boxed.sum() > 0.05 * width * height, "the box tool made a mask"
    inside = cv2.distanceTransform(boxed.astype(np.uint8), cv2.DIST_L2, 5)
    row, column = np.unravel_index(np.argmax(inside), inside.shape)  # deep inside the mask
    status = page.locator("#annotate-tool-status").inner_text()
    boxed_layer = page.locator("#annotate-layer").get_attribute("src")
    page.mouse.click(canvas["x"] + (column + 0.5) * scale, canvas["y"] + (row + 0.5) * scale, button="right")
    page.wait_for_function(
        "(before) => document.getElementById('annotate-tool-status').innerText !== before",
        arg=status,
        timeout=30_000,
    )
    page.locator("#annotate-tool-marks .tool-click-negative").wait_for()
    page.wait_for_function(WAIT_FOR_NEW_LAYER, arg=boxed_layer, timeout=30_000)
    shown = displayed_classes(page, label_map)
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "annotate-click-to-mask.png"))
    assert shown[row, column] != cat and (shown == cat).sum() < boxed.sum(), (
        "the negative click removed a part"
    )

    page.keyboard.press("Control+s")
    page.locator("#annotate-message", has_text="Saved").wait_for(timeout=30_000)
    saved = json.loads((server.home / "annotations" / "demo.json").read_text())
    entry = next(item for item in saved["images"] if item["file_name"] == image["file_name"])
    cat_ids = set(label_map.class_to_categories[cat])
    rles = [
        item["segmentation"]
        for item in saved["annotations"]
        if item["image_id"] == entry["id"] and item["category_id"] in cat_ids
    ]
    assert len(rles) == 1
    decoded = coco_mask.decode(rles[0]).astype(bool)
    assert (decoded == (shown == cat)).all(), "the saved RLE is exactly the displayed mask"
    assert page.problems.all() == []


def test_a_click_after_zooming_in_lands_on_the_picture_point_under_the_pointer(server, page):
    """dash-canvas's zoom (+) scales the drawing from its corner: a click-to-mask click is placed through
    fabric's own pointer, so it names the picture point under it, not the same share of the element."""
    open_first_image(page, server.url, index=3)
    page.locator("#annotate-class label", has_text="cat").click()
    page.keyboard.press("c")
    unzoomed = page.evaluate(PICTURE_SCALE)
    page.locator(".annotate-canvas button").first.click()  # zoom in, 1.25 times
    # The button re-renders the drawing a moment later; a click before that would meet the unzoomed picture.
    page.wait_for_function(f"() => ({PICTURE_SCALE})() > {unzoomed} * 1.2", timeout=10_000)
    canvas = upper_canvas(page).bounding_box()
    page.mouse.click(canvas["x"] + 0.4 * canvas["width"], canvas["y"] + 0.4 * canvas["height"])
    page.locator("#annotate-tool-status", has_text="Clicks:").wait_for(timeout=30_000)
    current = page.evaluate(STORED_PROP, ["annotate-current", "data"])
    state = page.evaluate(STORED_PROP, ["annotate-tool-state", "data"])
    (x, y, positive), *_ = state["object"]["clicks"]
    assert positive
    assert x / current["width"] == pytest.approx(0.4 / 1.25, abs=0.01)
    assert y / current["height"] == pytest.approx(0.4 / 1.25, abs=0.01)
    assert page.problems.all() == []


def test_grow_shows_the_models_uncertainty_and_a_click_on_it_grows_an_object(
    model_server, page, screenshot_dir
):
    """G before a pre-fill is refused with a message; after one the uncertainty picture lies over the
    canvas (clicks pass through it) and a click there builds an object; another tool hides it."""
    open_first_image(page, model_server.url, index=1)
    page.locator("#annotate-class label", has_text="person").click()
    page.keyboard.press("g")
    canvas = upper_canvas(page).bounding_box()
    page.mouse.click(canvas["x"] + canvas["width"] * 0.5, canvas["y"] + canvas["height"] * 0.5)
    page.locator("#annotate-message", has_text="pre-fill the image with a model first").wait_for(
        timeout=30_000
    )
    overlay = page.locator("#annotate-uncertainty")
    assert not overlay.is_visible()

    page.get_by_role("button", name="Pre-fill").click()
    page.locator("#annotate-message", has_text="Pre-filled with").wait_for(timeout=60_000)
    wait_for_picture(page)  # the pre-fill's new canvas at its height, before it is measured and clicked
    overlay.wait_for(state="visible", timeout=30_000)
    page.wait_for_function(
        "() => { const image = document.getElementById('annotate-uncertainty');"
        " return image.complete && image.naturalWidth > 0; }",
        timeout=30_000,
    )
    shown = overlay.bounding_box()
    canvas = upper_canvas(page).bounding_box()
    assert abs(shown["width"] - canvas["width"]) <= 2 and abs(shown["x"] - canvas["x"]) <= 2
    assert 0 <= canvas["y"] and canvas["y"] + canvas["height"] <= page.viewport_size["height"]  # all in view
    page.mouse.click(canvas["x"] + canvas["width"] * 0.5, canvas["y"] + canvas["height"] * 0.5)
    page.locator("#annotate-tool-status", has_text="Grow from uncertainty:").wait_for(timeout=30_000)
    page.locator("#annotate-tool-marks .tool-click-positive").wait_for()
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "annotate-grow.png"))
    page.keyboard.press("c")
    overlay.wait_for(state="hidden", timeout=10_000)
    assert page.problems.all() == []
