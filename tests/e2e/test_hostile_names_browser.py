"""Hostile strings are shown as text on every page (issue 19, part 7), in real Chromium.

A copy of the demo's val split whose category names, supercategories and one image's file name
carry markup (``<img src=x onerror=alert(1)>``, ``<a href=//x>``) is registered beside the demo.
Every page is visited, and the pages that show a dataset's class and file names (Explore's
charts, tables and dropdowns, Prepare's dry-run chart, Annotate's class list and image chooser)
are pointed at it. No dialog may open, and no injected element may exist in the DOM, Plotly's
SVG included, while the names themselves are on the page as text.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse

import pytest

from cocoseg.app.ids import Annotate, Explore, Prepare
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.data.registry import add_dataset
from tests.conftest import DEMO_VAL_IMAGES, DEMO_VAL_JSON
from tests.e2e.conftest import _serve, assert_fits_window
from tests.e2e.test_pages_browser import PAGES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSTILE = "<img src=x onerror=alert(1)><a href=//x>x</a>"
PLOTLY_LINK = '<a href="//x">x</a>'  # Plotly's label parser makes a link of a quoted href only
HOSTILE_FILE = "<img src=x onerror=alert(2)>.jpg"  # no '/' in a file name, so no link here
DATASET = "hostile"

# any element the markup would have made, HTML or SVG (Plotly writes links as <a xlink:href>)
INJECTED = """() => {
  const found = [];
  for (const element of document.querySelectorAll('img, a, image')) {
    const href = element.getAttribute('href') || element.getAttribute('xlink:href')
      || element.getAttributeNS('http://www.w3.org/1999/xlink', 'href') || '';
    const src = element.getAttribute('src') || '';
    if (src === 'x' || href === '//x' || href.endsWith('//x') || element.hasAttribute('onerror')) {
      found.push(element.outerHTML.slice(0, 200));
    }
  }
  return found;
}"""


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """``cocoseg serve`` over a home where ``hostile/val`` is the demo val split with hostile names."""
    home = tmp_path_factory.mktemp("hostile-home")
    source = tmp_path_factory.mktemp("hostile-data")
    data = json.loads(DEMO_VAL_JSON.read_text())
    for number, category in enumerate(data["categories"]):
        category["name"] = f"{HOSTILE if number % 2 else PLOTLY_LINK} {category['name']}"
        category["supercategory"] = f'<a href="//x">{category["supercategory"]}</a>'

    images = source / "images"
    shutil.copytree(DEMO_VAL_IMAGES, images)
    first = data["images"][0]
    (images / first["file_name"]).rename(images / HOSTILE_FILE)
    first["file_name"] = HOSTILE_FILE
    annotations = source / "instances.json"
    annotations.write_text(json.dumps(data))
    add_dataset(Workspace(home).ensure(), DATASET, annotations, images, split="val")
    yield from _serve(home, tmp_path_factory.mktemp("hostile-server") / "server.log")


@pytest.fixture
def watched(page):
    """The page, with every dialog (alert, confirm) recorded and dismissed."""
    page.dialogs = []

    def dismiss(dialog) -> None:
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return page


def _nothing_injected(page, where: str) -> None:
    page.wait_for_load_state("networkidle")
    assert page.dialogs == [], f"{where}: a dialog opened: {page.dialogs}"
    assert page.evaluate(INJECTED) == [], f"{where}: markup became elements"
    assert page.locator('img[src="x"]').count() == 0 and page.locator('a[href="//x"]').count() == 0


def _choose(page, dropdown: str, option: str) -> None:
    page.locator(f"#{dropdown}").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_hostile_names_are_text_on_every_page(watched, hostile_server, screenshot_dir):
    page = watched
    for path, title in PAGES.items():
        page.goto(hostile_server.url + path, wait_until="networkidle")
        page.locator(".page-header h2", has_text=title).wait_for()
        _nothing_injected(page, path)

    # Explore: the charts (Plotly SVG), the problems and summary, the class filter, the file names
    page.goto(hostile_server.url + "/explore", wait_until="networkidle")
    _choose(page, Explore.DATASET, f"{DATASET}/val")
    _choose(page, Explore.LABELS, "all")
    page.locator(f"#{Explore.SUMMARY}").get_by_text("label map all").wait_for()
    ticks = page.locator(f"#{Explore.CLASSES} .xtick text")
    ticks.first.wait_for(state="attached")
    shown = ticks.all_text_contents()
    assert any("onerror=alert(1)" in text for text in shown), "class names not shown as text"
    assert any('<a href="//x">' in text for text in shown), "class names not shown as text"
    _nothing_injected(page, "explore classes")
    # each tab's content is drawn by a callback once the tab is shown: check it when it is there
    contents = {
        "Sizes": page.locator(f"#{Explore.SIZES} .js-plotly-plot").nth(2),  # its three charts
        "Co-occurrence": page.locator(f"#{Explore.COOCCURRENCE} .gtitle", has_text="co-occurrence"),
        "Images": page.locator(".thumbnail").first,
    }
    for tab, content in contents.items():
        tab_link = page.get_by_role("tab", name=tab)
        if tab_link.count():
            tab_link.first.click()
            content.wait_for()
            _nothing_injected(page, f"explore {tab}")
    page.locator(f"#{Explore.FILTER}").click()
    page.get_by_role("option").first.wait_for()
    assert "//x" in page.get_by_role("option").first.inner_text()
    page.keyboard.press("Escape")
    _nothing_injected(page, "explore class filter")
    page.locator(".thumbnail").first.click()
    page.locator(f"#{Explore.DETAIL} img").first.wait_for(state="attached")
    _nothing_injected(page, "explore image detail")
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "hostile-explore.png"), full_page=True)

    # Prepare: the dry run's images-per-class chart
    page.goto(hostile_server.url + "/prepare", wait_until="networkidle")
    _choose(page, Prepare.DATASET, DATASET)
    _choose(page, Prepare.LABELS, "all")
    # the dry run of hostile/val drawn (the demo's chart, drawn first, has ticks of its own)
    page.locator(f"#{Prepare.DISTRIBUTION} .xtick text", has_text="//x").first.wait_for(state="attached")
    _nothing_injected(page, "prepare distribution")
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "hostile-prepare.png"), full_page=True)

    # Annotate: the class list and the image chooser, through a deep link to the hostile file
    query = urllib.parse.urlencode({"dataset": DATASET, "split": "val", "image": HOSTILE_FILE})
    page.goto(hostile_server.url + "/annotate?" + query, wait_until="networkidle")
    # the image itself, not a refusal (nor the "next in queue" answer Dash used to ask for on every visit)
    page.locator(f"#{Annotate.MESSAGE}", has_text="Opened").wait_for()
    _nothing_injected(page, "annotate, deep link")
    _choose(page, Annotate.LABELS, "all")
    palette = page.locator(f"#{Annotate.CLASS}")
    palette.get_by_text("//x").first.wait_for()
    assert palette.get_by_text("onerror=alert(1)").count() >= 1
    assert page.locator(f"#{Annotate.IMAGE}").get_by_text(HOSTILE_FILE).count() >= 1
    _nothing_injected(page, "annotate")
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "hostile-annotate.png"), full_page=True)
    assert page.problems.all() == []
