"""Adding one's own dataset from the app (issue 20), in headless Chromium against a real ``cocoseg serve``.

The server has its own home (the session's shared server keeps only the demo, as other tests expect).
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from cocoseg.app.ids import AddDataset, Explore
from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON
from tests.e2e.conftest import _serve, assert_fits_window, fill_input

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JOB_TIMEOUT_MS = 90_000

# Every few milliseconds: the split the dropdown names, the split the class chart was drawn for, and
# whether the view is dimmed. A drawn chart of another split on an undimmed view for more than
# STALE_GRACE_MS is a stale view.
STALE_GRACE_MS = 100
RECORDER = """() => {
    window.staleViews = [];
    window.chartSplits = [];
    const chosen = () => {
        const state = window.store && window.store.getState();
        const path = state && state.paths && state.paths.strs["DATASET_ID"];
        if (!path) return null;
        let node = state.layout;
        for (const key of path) node = node && node[key];
        return node && node.props ? node.props.value : null;
    };
    window.staleTimer = setInterval(() => {
        const plot = document.querySelector("#CHART_ID .js-plotly-plot");
        const view = document.getElementById("VIEW_ID");
        const meta = plot && plot.layout && plot.layout.meta;
        const split = chosen();
        if (!meta || !view || split === null) return;
        if (meta.ready) window.chartSplits.push(meta.split);
        const dimmed = view.classList.contains("loading");
        if (meta.ready && meta.split !== split && !dimmed) {
            // the renderer dims the view as it dispatches the callback, a frame or two after the
            // choice: a mismatch counts once it has lasted longer than anyone could see it
            window.staleSince = window.staleSince || performance.now();
            if (performance.now() - window.staleSince > GRACE_MS) window.staleViews.push([split, meta.split]);
        } else {
            window.staleSince = null;
        }
    }, 5);
}"""
for placeholder, value in {
    "DATASET_ID": Explore.DATASET,
    "CHART_ID": Explore.CLASSES,
    "VIEW_ID": Explore.VIEW,
    "GRACE_MS": str(STALE_GRACE_MS),
}.items():
    RECORDER = RECORDER.replace(placeholder, value)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    yield from _serve(
        tmp_path_factory.mktemp("e2e-own-home"), tmp_path_factory.mktemp("e2e-own") / "server.log"
    )


@pytest.fixture(scope="module")
def own_files(tmp_path_factory):
    """The demo's val split with categories named class_1 ... class_80 (not COCO's), and a truncated file."""
    folder = tmp_path_factory.mktemp("own-files")
    data = json.loads(DEMO_VAL_JSON.read_text())
    for index, category in enumerate(data["categories"], start=1):
        category["name"] = f"class_{index}"
    (folder / "mine.json").write_text(json.dumps(data))
    (folder / "broken.json").write_text('{"images": [}')
    return folder


def _fill_form(page, name: str, annotations, images) -> None:
    fill_input(page, AddDataset.NAME, name)
    fill_input(page, AddDataset.ANNOTATIONS, str(annotations))
    fill_input(page, AddDataset.IMAGES, str(images))


def test_broken_file_is_refused_beside_the_field(page, own_server, own_files):
    page.goto(own_server.url + "/", wait_until="networkidle")
    _fill_form(page, "broken", own_files / "broken.json", DEMO_VAL_IMAGES)
    page.click(f"#{AddDataset.ADD}")
    feedback = page.locator(f"#{AddDataset.ANNOTATIONS}-feedback")
    feedback.filter(has_text="the file looks truncated").wait_for()
    assert "is not valid JSON" in feedback.inner_text()
    assert "invalid" in (page.locator(f"#{AddDataset.ANNOTATIONS}").get_attribute("class") or "")
    assert page.locator(f"#{AddDataset.IMAGES}-feedback").inner_text() == ""
    # an image folder without images: its own line, beside its own field
    _fill_form(page, "broken", own_files / "mine.json", own_files)
    page.click(f"#{AddDataset.ADD}")
    page.locator(f"#{AddDataset.IMAGES}-feedback").filter(has_text="no images").wait_for()
    assert page.locator(f"#{AddDataset.ANNOTATIONS}-feedback").inner_text() == ""
    registry = own_server.home / "datasets.json"
    assert not registry.exists() or "broken" not in registry.read_text()
    assert page.problems.all() == []


def test_add_from_home_then_explore_opens_it_with_all_and_its_counts(
    page, own_server, own_files, screenshot_dir
):
    # Explore first shows the demo, so a chart of another split has been drawn in this tab
    page.goto(own_server.url + "/explore", wait_until="domcontentloaded")
    page.locator(f"#{Explore.SUMMARY}").filter(has_text="label map coco80").wait_for(timeout=JOB_TIMEOUT_MS)

    page.goto(own_server.url + "/", wait_until="networkidle")
    _fill_form(page, "mine", own_files / "mine.json", DEMO_VAL_IMAGES)
    page.click(f"#{AddDataset.ADD}")
    report = page.locator(f"#{AddDataset.REPORT}")
    report.filter(has_text="registered and validated").wait_for(timeout=JOB_TIMEOUT_MS)
    text = report.inner_text()
    assert "mine/train: 80/80 images valid, 815/815 annotations valid, 80 categories" in text
    assert "0 errors" in text
    page.locator(".dataset-row.dataset-mine").wait_for()  # the Home table has it too

    page.evaluate(RECORDER)
    page.get_by_text("Open it in Explore").click()
    page.wait_for_url("**/explore?split=mine/train")
    page.evaluate(RECORDER)  # a client-side move keeps the window, but start afresh on this page
    summary = page.locator(f"#{Explore.SUMMARY}")
    summary.filter(has_text="label map all: 81 classes").wait_for(timeout=JOB_TIMEOUT_MS)
    assert page.locator(f"#{Explore.LABELS}").inner_text().strip() == "all"
    cards = summary.inner_text()
    assert "80" in cards and "815" in cards
    title = page.locator(f"#{Explore.VIEW_TITLE}").inner_text()
    assert title.startswith("mine/train · label map all")
    # the chart of mine/train's statistics drawn: the page came with a waiting chart of mine/train (no bars),
    # and Plotly draws the new figure a moment after the summary shows
    page.wait_for_function(
        f"""() => {{
            const plot = document.querySelector('#{Explore.CLASSES} .js-plotly-plot');
            const meta = plot && plot.layout && plot.layout.meta;
            return Boolean(meta && meta.ready) && meta.split === 'mine/train'
                && plot.querySelectorAll('.bars path').length > 0;
        }}"""
    )
    assert page.locator(f"#{Explore.CLASSES} .bars path").count() >= 40
    page.locator(f"#{Explore.LABELS}").click()
    options = page.get_by_role("option")
    expect(options).to_have_text(["supercategory", "all"], use_inner_text=True)  # only presets that fit
    page.keyboard.press("Escape")

    # to the demo and back: each chart is drawn for the split named above it, never another one
    page.locator(f"#{Explore.DATASET}").click()
    page.get_by_role("option", name="demo/val").click()
    summary.filter(has_text="label map coco80").wait_for(timeout=JOB_TIMEOUT_MS)
    page.locator(f"#{Explore.DATASET}").click()
    page.get_by_role("option", name="mine/train").click()
    summary.filter(has_text="label map all").wait_for(timeout=JOB_TIMEOUT_MS)
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "explore-own-dataset.png"), full_page=True)
    assert page.evaluate("window.staleViews") == []
    splits = page.evaluate("window.chartSplits")
    assert "mine/train" in splits and "demo/val" in splits
    assert page.problems.all() == []


def test_a_taken_name_offers_replace_and_remove_forgets_it(page, own_server, own_files):
    page.goto(own_server.url + "/", wait_until="networkidle")
    _fill_form(page, "twice", own_files / "mine.json", DEMO_VAL_IMAGES)
    page.click(f"#{AddDataset.ADD}")
    report = page.locator(f"#{AddDataset.REPORT}")
    report.filter(has_text="twice/train registered and validated").wait_for(timeout=JOB_TIMEOUT_MS)
    page.click(f"#{AddDataset.ADD}")  # the same name and split again
    page.locator(f"#{AddDataset.NAME}-feedback").filter(has_text="already has a 'train' split").wait_for()
    page.locator(f"#{AddDataset.MESSAGE}").filter(has_text="replace the split if it exists").wait_for()
    page.locator(f"#{AddDataset.REPLACE}").get_by_text("replace the split if it exists").click()
    page.click(f"#{AddDataset.ADD}")
    page.locator(f"#{AddDataset.NAME}-feedback").filter(has_text="already").wait_for(state="detached")
    report.filter(has_text="twice/train registered and validated").wait_for(timeout=JOB_TIMEOUT_MS)
    page.locator(".dataset-row.dataset-twice").wait_for()
    page.click(f"#{AddDataset.REMOVE}")
    page.locator(f"#{AddDataset.MESSAGE}").filter(has_text="Removed twice").wait_for()
    page.locator(".dataset-row.dataset-twice").wait_for(state="detached")
    assert "twice" not in (own_server.home / "datasets.json").read_text()
    assert page.problems.all() == []
