"""Segment page in headless Chromium: upload real demo images, see overlays, switch variants, download."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cocoseg.app.ids import Segment
from tests.conftest import DEMO_VAL_IMAGES
from tests.e2e.conftest import assert_fits_window

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FILE_INPUT = f"#{Segment.UPLOAD} input[type=file]"


def _demo_image(index: int = 0):
    return sorted(DEMO_VAL_IMAGES.glob("*.jpg"))[index]


def _open(page, model_server):
    response = page.goto(model_server.url + "/segment", wait_until="networkidle")
    assert response is not None and response.status == 200
    page.locator(f"#{Segment.UPLOAD}").wait_for(state="visible")


def _wait_for_result(page, text: str = "on CPU"):
    page.locator(f"#{Segment.TIMING}", has_text=text).wait_for(state="visible")


def test_upload_shows_overlay_classes_and_downloads(page, model_server, screenshot_dir, tmp_path):
    _open(page, model_server)
    options = page.locator(f"#{Segment.MODEL}").inner_text()
    assert "pair-mean (ensemble, 128 px)" in options or "(exported, 128 px)" in options
    hints = page.locator(".picture-hint")
    assert hints.count() == 4 and all(hints.nth(index).is_visible() for index in range(4))  # say what comes
    path = _demo_image(0)
    page.set_input_files(FILE_INPUT, str(path))
    _wait_for_result(page)
    assert not any(hints.nth(index).is_visible() for index in range(hints.count()))
    with Image.open(path) as original:
        width, height = original.size
    assert page.locator(f"#{Segment.CURRENT}").inner_text().startswith(f"{path.name} · {width}×{height}")
    layer = page.locator(f"#{Segment.LAYER}")
    assert layer.get_attribute("src").startswith("data:image/png;base64,")
    assert page.locator(f"#{Segment.ORIGINAL}").get_attribute("src").startswith("/uploads/")
    # the original is served from /uploads/ and loads after the result shows: wait for it, then check its size
    page.wait_for_function(
        f"(() => {{ const image = document.getElementById('{Segment.ORIGINAL}');"
        " return image.complete && image.naturalWidth > 0; })()"
    )
    assert page.locator(f"#{Segment.ORIGINAL}").evaluate("image => image.naturalWidth") == width
    # side by side, the two pictures line up: the Overlay header's download buttons do not push it down
    original_box = page.locator(f"#{Segment.ORIGINAL}").bounding_box()
    overlay_box = page.locator(f"#{Segment.OVERLAY}-picture").bounding_box()
    assert abs(original_box["y"] - overlay_box["y"]) <= 1 and overlay_box["height"] == original_box["height"]
    rows = page.locator(f"#{Segment.SHARES} tr.share-row")
    assert rows.count() >= 1
    shares = [float(text.split()[-2]) for text in rows.all_inner_texts()]
    assert sum(shares) == pytest.approx(100.0, abs=0.5)
    assert f"{width}×{height} px" in page.locator(f"#{Segment.TIMING}").inner_text()

    # opacity: keyboard on the slider handle, applied in the browser
    page.locator(f"#{Segment.OPACITY} [role=slider]").focus()
    page.keyboard.press("End")
    page.wait_for_function(f"document.getElementById('{Segment.LAYER}').style.opacity === '1'")

    with page.expect_download() as download_info:
        page.locator(f"#{Segment.DOWNLOAD_MASK}").click()
    saved = tmp_path / "mask.png"
    download_info.value.save_as(saved)
    with Image.open(saved) as mask:
        assert mask.size == (width, height) and mask.mode == "L"
        assert set(np.unique(np.asarray(mask))) <= set(range(21)) | {255}
    with page.expect_download() as download_info:
        page.locator(f"#{Segment.DOWNLOAD_COCO}").click()
    assert download_info.value.suggested_filename.endswith(".coco.json")
    assert_fits_window(page)
    page.screenshot(path=str(screenshot_dir / "segment.png"), full_page=True)
    assert page.problems.all() == []


def test_variant_and_model_switches_reuse_the_upload(page, model_server):
    _open(page, model_server)
    page.set_input_files(FILE_INPUT, str(_demo_image(1)))
    _wait_for_result(page)
    requests = []
    page.on(
        "request",
        lambda request: (
            requests.append(request.post_data or "") if "_dash-update-component" in request.url else None
        ),
    )
    page.locator(f"#{Segment.MODEL}").click()
    page.get_by_role("option").filter(
        has_text="(exported"
    ).first.click()  # an option, never the menu around them
    page.keyboard.press("Escape")  # close the menu so it cannot cover the variants
    int8 = page.locator(f"#{Segment.VARIANT} input[id$='_input_int8']")
    int8.wait_for(state="attached")  # the variants are re-listed for the chosen model
    page.wait_for_load_state("networkidle")
    int8.check()
    _wait_for_result(page, "(int8)")
    assert requests and all(len(body) < 20_000 for body in requests)  # the image is not sent again
    assert page.problems.all() == []


def test_bad_uploads_show_a_message_and_the_page_keeps_working(page, model_server):
    _open(page, model_server)
    page.set_input_files(
        FILE_INPUT,
        files=[
            {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff\xe0" + b"\x00" * 50},
            {
                "name": "<img src=x onerror=alert(1)>.png",
                "mimeType": "image/png",
                "buffer": b"<html><script>alert(1)</script></html>",
            },
        ],
    )
    messages = page.locator(f"#{Segment.MESSAGES} .upload-message")
    messages.nth(1).wait_for(state="visible")
    texts = messages.all_inner_texts()
    assert any(text.startswith("broken.jpg: the JPEG file is corrupt or truncated") for text in texts)
    assert any(
        text.startswith("<img src=x onerror=alert(1)>.png: this is a web page (HTML)") for text in texts
    )
    assert page.locator(f"#{Segment.MESSAGES} img").count() == 0  # the name was shown as text
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 10, 10)).save(buffer, "PNG")
    page.set_input_files(
        FILE_INPUT, files=[{"name": "dot.png", "mimeType": "image/png", "buffer": buffer.getvalue()}]
    )
    _wait_for_result(page)
    assert "1×1 px" in page.locator(f"#{Segment.TIMING}").inner_text()
    path = _demo_image(2)
    page.set_input_files(FILE_INPUT, str(path))  # a real image after the failures still works
    with Image.open(path) as original:
        width, height = original.size
    _wait_for_result(page, f"{width}×{height} px")  # its own result: "on CPU" is the 1×1 dot's, shown already
    assert page.problems.all() == []
    assert model_server.process.poll() is None


def test_same_file_twice_and_oversized_files_are_both_answered(page, model_server):
    _open(page, model_server)
    path = _demo_image(3)
    page.set_input_files(FILE_INPUT, str(path))
    _wait_for_result(page)
    page.set_input_files(FILE_INPUT, str(path))  # the same file again is a new upload (dash #1287)
    page.locator(f"#{Segment.CURRENT} label", has_text=path.name).nth(1).wait_for()
    big = b"\xff\xd8\xff" + bytes(21 * 1024 * 1024)
    page.set_input_files(FILE_INPUT, files=[{"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": big}])
    note = page.locator(
        ".upload-size-message", has_text="huge.jpg: 21.0 MB is over the 20 MB limit; it was not uploaded"
    )
    note.wait_for()
    assert page.locator(f"#{Segment.CURRENT} label").count() == 2
    assert page.problems.all() == []
