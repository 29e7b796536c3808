"""Home page in headless Chromium against the real ``cocoseg serve`` process."""

from __future__ import annotations

import re

import pytest

from cocoseg.app.ids import Home

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _expected_device() -> str:
    from cocoseg.pipeline.inference.predictor import usable_providers

    return usable_providers().device


def _open_home(page, server):
    response = page.goto(server.url + "/", wait_until="networkidle")
    assert response is not None and response.status == 200
    # the layout arrives through /_dash-layout and the page container renders afterwards
    page.locator(f"#{Home.DATASETS} tr.dataset-row").first.wait_for(state="visible")
    return response


def test_home_page_renders_datasets_device_and_navigation(page, server, tmp_path):
    _open_home(page, server)
    assert page.title() == "cocoseg"
    assert page.locator(".page-home h2").inner_text() == "Home"

    # datasets table: the bundled demo, train and val, 80 images each, validated OK
    table = page.locator(f"#{Home.DATASETS} table")
    headers = [text.strip() for text in table.locator("thead th").all_inner_texts()]
    assert headers == ["Dataset", "Split", "Images", "Annotations", "Categories", "Crowd", "Validation"]
    rows = table.locator("tbody tr.dataset-row")
    assert rows.count() == 2, rows.all_inner_texts()
    seen = {}
    for index in range(rows.count()):
        cells = rows.nth(index).locator("td")
        assert cells.count() == 7
        name_cell = cells.nth(0)
        assert name_cell.text_content().startswith("demo")
        assert name_cell.locator(".badge").inner_text().lower() == "bundled"
        split = cells.nth(1).inner_text().strip()
        seen[split] = {
            "images": cells.nth(2).inner_text().strip(),
            "annotations": cells.nth(3).inner_text().strip(),
            "categories": cells.nth(4).inner_text().strip(),
        }
        badge = cells.nth(6).locator(".status-badge")
        assert badge.count() == 1
        assert badge.text_content().strip() == "ok"
        assert badge.inner_text().strip() == "OK"  # uppercased by assets/cocoseg.css
        assert "bg-success" in (badge.get_attribute("class") or "")
        assert badge.is_visible()
        assert "no problems found" in cells.nth(6).inner_text()
    assert seen == {
        "train": {"images": "80", "annotations": "705", "categories": "80"},
        "val": {"images": "80", "annotations": "815", "categories": "80"},
    }

    # side navigation: Home is the active link
    home_link = page.locator("nav.sidebar a.nav-link", has_text="Home")
    assert home_link.count() == 1
    assert "active" in (home_link.get_attribute("class") or "").split()
    assert home_link.get_attribute("href") == "/"
    active = page.locator("nav.sidebar a.nav-link.active")
    assert active.count() == 1 and active.inner_text().strip() == "Home"

    # inference device panel
    device = page.locator(f"#{Home.DEVICE}")
    badge = device.locator(".device-badge")
    assert badge.inner_text().strip() == _expected_device()
    assert re.search(r"Usable: (.+, )?CPU(,|$)", device.inner_text(), re.MULTILINE), device.inner_text()
    if _expected_device() == "CPU":
        assert badge.inner_text().strip() == "CPU"
        assert "device-cpu" in (badge.get_attribute("class") or "").split()

    # the vendored Bootstrap and the app stylesheet are applied (no CDN, offline)
    assert page.evaluate("getComputedStyle(document.querySelector('.sidebar')).position") == "fixed"
    assert page.evaluate("getComputedStyle(document.querySelector('.badge')).display") == "inline-block"
    icon_font = page.evaluate("getComputedStyle(document.querySelector('.bi'), '::before').fontFamily")
    assert "bootstrap-icons" in icon_font

    screenshot = tmp_path / "home.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.is_file()
    assert screenshot.stat().st_size > 5_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.wait_for_load_state("networkidle")
    assert page.problems.console_errors == [], page.problems.console_errors
    assert page.problems.page_errors == [], page.problems.page_errors
    assert page.problems.failed_requests == [], page.problems.failed_requests
    assert server.process.poll() is None, server.log()[-3000:]


def test_home_page_has_no_console_errors_after_reload(page, server):
    _open_home(page, server)
    page.reload(wait_until="networkidle")
    page.locator(f"#{Home.DATASETS} tr.dataset-row").first.wait_for(state="visible")
    assert page.locator(f"#{Home.DATASETS} tr.dataset-row").count() == 2
    assert page.problems.all() == [], page.problems.all()


def test_checking_training_devices_runs_doctor_and_shows_tensorflow_s_answer(page, server):
    page.goto(server.url + "/")
    device = page.locator(f"#{Home.DEVICE}")
    device.get_by_text("not checked yet").wait_for(timeout=30_000)
    device.get_by_role("button", name="Check training devices").click()
    page.locator(f"#{Home.DEVICE_TRAINING}", has_text="TensorFlow sees").wait_for(timeout=180_000)
    assert re.search(r"Training: (CPU|\d GPU) \(TensorFlow sees", device.inner_text()), device.inner_text()
    page.reload()  # kept: the next visit shows it without asking again
    page.locator(f"#{Home.DEVICE_TRAINING}", has_text="TensorFlow sees").wait_for(timeout=30_000)
    device.get_by_role("button", name="Check again").wait_for()
    assert page.problems.all() == []
