"""Browser uploads (RELIABILITY group A): every bad upload becomes one clear message, never a crash."""

from __future__ import annotations

import base64
import io
import zlib

import numpy as np
import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from cocoseg.pipeline.data.images import InvalidUpload, decode_upload, display_name
from tests.conftest import DEMO_VAL_IMAGES

LIMIT_BYTES = 20 * 1024 * 1024
LIMIT_PIXELS = 40_000_000


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def encoded(picture: Image.Image, format_: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format_, **options)
    return buffer.getvalue()


def decode(data: bytes, name: str = "x.png"):
    return decode_upload(data_url(data), name, LIMIT_BYTES, LIMIT_PIXELS)


@pytest.fixture(scope="module")
def demo_picture() -> Image.Image:
    """A real demo photo, cropped to a non-square, asymmetric size."""
    with Image.open(sorted(DEMO_VAL_IMAGES.glob("*.jpg"))[0]) as picture:
        return picture.convert("RGB").crop((0, 0, 160, 90))


@pytest.mark.parametrize(
    "contents", ["", "no prefix", "data:image/png;base64", "data:image/png,abc", None, 12]
)
def test_not_a_data_url(contents):
    with pytest.raises(InvalidUpload, match="not a data URL"):
        decode_upload(contents, "x.png", LIMIT_BYTES, LIMIT_PIXELS)


def test_non_base64_characters_are_refused():
    with pytest.raises(InvalidUpload, match="not valid base64"):
        decode_upload("data:image/png;base64,iVBORw0KGgo*$%", "x.png", LIMIT_BYTES, LIMIT_PIXELS)


def test_size_limit_applies_before_decoding(monkeypatch):
    import cocoseg.pipeline.data.images as images

    monkeypatch.setattr(images.base64, "b64decode", lambda *a, **k: pytest.fail("decoded despite the size"))
    big = "data:image/png;base64," + "A" * (4 * 1024 * 1024)
    with pytest.raises(InvalidUpload, match="3.0 MB; the limit is 2 MB"):
        decode_upload(big, "x.png", 2 * 1024 * 1024, LIMIT_PIXELS)


def test_empty_file():
    with pytest.raises(InvalidUpload, match="empty"):
        decode_upload("data:image/png;base64,", "x.png", LIMIT_BYTES, LIMIT_PIXELS)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"<html><body>hello</body></html>", "web page"),
        (b"<!DOCTYPE html><script>alert(1)</script>", "web page"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="10" height="10"/></svg>', "SVG"),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "SVG",
        ),
        (b"%PDF-1.7\n1 0 obj", "PDF"),
        (b"%!PS-Adobe-3.0 EPSF-3.0", "PostScript"),
        (b"8BPS\x00\x01", "Photoshop"),
        (b"SIMPLE  =                    T", "FITS"),
        (b"GIF89a\x01\x00\x01\x00", "GIF"),
        (b"just some text", "content does not start like one"),
    ],
)
def test_other_content_renamed_png_is_refused_by_its_bytes(payload, message):
    with pytest.raises(InvalidUpload, match=message):
        decode(payload, "photo.png")


def png_declaring(side: int) -> bytes:
    """A tiny PNG whose header claims side x side RGB pixels."""
    header = b"\x89PNG\r\n\x1a\n"
    ihdr = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    chunk = len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr + zlib.crc32(b"IHDR" + ihdr).to_bytes(4, "big")
    idat = zlib.compress(b"\x00" * 1000)
    body = len(idat).to_bytes(4, "big") + b"IDAT" + idat + zlib.crc32(b"IDAT" + idat).to_bytes(4, "big")
    return header + chunk + body + b"\x00\x00\x00\x00IEND\xaeB`\x82"


@pytest.mark.parametrize(
    "side, message",
    [
        (
            8_000,
            "8000 x 8000 pixels is more than the limit of 40 megapixels",
        ),  # the app's limit, on the header
        (50_000, "more pixels than the limit of 40 megapixels"),  # Pillow's own bomb check, same message
    ],
)
def test_pixel_bomb_is_refused_from_the_header_without_allocating(side, message):
    before = psutil.Process().memory_info().rss
    with pytest.raises(InvalidUpload, match=message):
        decode(png_declaring(side))
    assert psutil.Process().memory_info().rss - before < 50 * 1024 * 1024


def test_app_pixel_limit_is_below_pillows(demo_picture):
    assert LIMIT_PIXELS < Image.MAX_IMAGE_PIXELS
    with pytest.raises(InvalidUpload, match="160 x 90 pixels is more than the limit of 0 megapixels"):
        decode_upload(data_url(encoded(demo_picture)), "x.png", LIMIT_BYTES, 160 * 90 - 1)


def test_truncated_jpeg_is_refused_and_the_global_flag_untouched(demo_picture):
    data = encoded(demo_picture, "JPEG", quality=90)
    with pytest.raises(InvalidUpload, match="corrupt or truncated"):
        decode(data[: len(data) // 2], "half.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_png_with_a_broken_data_crc_is_refused(demo_picture):
    data = bytearray(encoded(demo_picture))
    start = data.index(b"IDAT") + 4 + 20
    data[start] ^= 0xFF  # corrupt compressed pixels; verify() alone would not notice
    with pytest.raises(InvalidUpload, match="corrupt or truncated"):
        decode(bytes(data))


@settings(max_examples=60, deadline=None)
@given(
    st.binary(min_size=1, max_size=400),
    st.sampled_from(
        [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"RIFF\x00\x00\x00\x00WEBP"]
    ),
)
def test_random_bytes_only_ever_raise_invalid_upload(noise, prefix):
    try:
        decode(prefix + noise)
    except InvalidUpload:
        pass


ORIENTATION_TO_STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_same_upright_pixels(demo_picture, orientation):
    method = ORIENTATION_TO_STORED[orientation]
    stored = demo_picture.transpose(method) if method is not None else demo_picture
    exif = Image.Exif()
    exif[0x0112] = orientation
    upload = decode(encoded(stored, exif=exif))
    assert np.array_equal(upload.image, np.asarray(demo_picture))
    assert (upload.width, upload.height) == (160, 90)
    assert any("EXIF" in note for note in upload.notes) == (orientation != 1)


@pytest.mark.parametrize("format_", ["PNG", "TIFF"])
def test_sixteen_bit_grey_is_scaled_not_saturated(format_):
    values = (np.linspace(0, 4000, 64 * 48).reshape(48, 64)).astype(np.uint16)
    picture = Image.fromarray(values)
    assert picture.mode.startswith("I;16")
    upload = decode(encoded(picture, format_), "depth")
    assert upload.image.dtype == np.uint8 and upload.image.shape == (48, 64, 3)
    assert len(np.unique(upload.image)) > 2 and upload.image.max() == 255 and upload.image.min() == 0


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "1", "CMYK"])
def test_every_mode_becomes_rgb(demo_picture, mode):
    picture = demo_picture.convert(mode)
    if mode == "P":
        picture.info["transparency"] = 0
    data = (
        encoded(picture, "JPEG")
        if mode == "CMYK"
        else encoded(picture, "PNG", **({"transparency": 0} if mode == "P" else {}))
    )
    upload = decode(data)
    assert upload.image.dtype == np.uint8 and upload.image.shape == (90, 160, 3)
    if mode == "RGBA":
        assert (
            np.array_equal(upload.image, np.asarray(demo_picture)) and "transparency ignored" in upload.notes
        )
    if mode == "CMYK":
        assert np.abs(upload.image.astype(int) - np.asarray(demo_picture).astype(int)).mean() < 12


@pytest.mark.parametrize("format_", ["WEBP", "TIFF"])
def test_animated_and_multi_frame_files_give_the_first_frame(demo_picture, format_):
    frames = [
        demo_picture,
        demo_picture.transpose(Image.Transpose.ROTATE_180),
        demo_picture.convert("L").convert("RGB"),
    ]
    options = {"lossless": True} if format_ == "WEBP" else {}
    data = encoded(frames[0], format_, save_all=True, append_images=frames[1:], **options)
    upload = decode(data, "anim")
    assert "first of 3 frames" in upload.notes
    assert np.array_equal(upload.image, np.asarray(demo_picture))


@pytest.mark.parametrize("size", [(1, 1), (1, 700), (3000, 2)])
def test_tiny_and_extreme_images_decode(size):
    picture = Image.new("RGB", size, (10, 200, 30))
    upload = decode(encoded(picture))
    assert upload.image.shape == (size[1], size[0], 3)


@pytest.mark.parametrize("format_", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_each_allowed_format_decodes_a_real_photo(demo_picture, format_):
    upload = decode(encoded(demo_picture, format_), f"photo.{format_.lower()}")
    assert upload.format == format_ and upload.image.shape == (90, 160, 3)


@pytest.mark.parametrize(
    "filename, shown",
    [
        ("../../etc/passwd.png", "passwd.png"),
        ("C:\\Windows\\x.png", "x.png"),
        ("\\\\server\\share\\x.png", "x.png"),
        ("a/b/c.png", "c.png"),
        ("bad\x00name.png", "badname.png"),
        ("<img src=x onerror=alert(1)>.png", "<img src=x onerror=alert(1)>.png"),
        ("", "upload"),
        (None, "upload"),
    ],
)
def test_file_names_are_only_for_display(filename, shown):
    assert display_name(filename) == shown


def test_long_file_names_are_shortened():
    assert len(display_name("x" * 10_000 + ".png")) == 120


def test_the_name_in_messages_is_the_display_name():
    with pytest.raises(InvalidUpload, match=r"^passwd.png: the file is empty$"):
        decode_upload("data:image/png;base64,", "../../etc/passwd.png", LIMIT_BYTES, LIMIT_PIXELS)


def test_an_annotated_upload_is_kept_losslessly_under_a_name_from_its_key(workspace, tmp_path):
    """Annotations outlive the one-hour upload cache, and the browser's file name never becomes a path."""
    from cocoseg.pipeline.data.images import UploadedImage, read_rgb
    from cocoseg.pipeline.inference.uploads import persist_upload, store_upload

    picture = read_rgb(sorted(DEMO_VAL_IMAGES.glob("*.jpg"))[0])
    key = store_upload(workspace, UploadedImage(picture, "../../etc/passwd.png", "jpeg"))
    kept = persist_upload(workspace, key, tmp_path / "kept")
    assert kept.parent == tmp_path / "kept" and kept.name == f"upload-{key[:16]}.png"
    assert np.array_equal(np.asarray(Image.open(kept).convert("RGB")), picture)
    assert persist_upload(workspace, key, tmp_path / "kept") == kept  # the same upload is written once
    with pytest.raises(ValueError, match="expired"):
        persist_upload(workspace, "x" * 22, tmp_path / "kept")
