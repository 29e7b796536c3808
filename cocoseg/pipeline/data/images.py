"""Safe decoding of images into RGB uint8 arrays: dataset files and browser uploads.

Dataset images are decoded with Pillow under an allow-list of formats, with Pillow's
decompression-bomb limit in force and ``load()`` called so truncated or corrupt files
fail here, not later inside a worker. EXIF orientation is *not* applied to dataset
images: COCO annotations refer to the stored pixels (``data validate`` warns about
EXIF-rotated files). Every failure becomes one ``ImageError`` with a short reason.

Uploads (``decode_upload``) are stricter, because their bytes come from anyone: the
data URL is checked, the size limit applies before base64 decoding, the format is
decided by magic bytes (never by name or MIME type), the pixel limit applies to the
header before any pixel is allocated, EXIF orientation *is* applied (a phone photo
must look as it did on the phone), animated files give their first frame, and the
file name is only ever kept for display.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")
# the file suffixes of those formats: dataset folders, batch prediction, the upload pickers
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# an <input type=file> ``accept`` value: suffixes, and MIME types for pickers that match by type
UPLOAD_ACCEPT = ",".join(
    IMAGE_SUFFIXES + ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff")
)
UPLOAD_FORMATS_TEXT = "JPEG, PNG, WebP, BMP or TIFF"
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
DISPLAY_NAME_LIMIT = 120

# (prefix, what it is) - the first match wins; None = an allowed Pillow format name.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_REFUSED = (
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript/EPS file"),
    (b"8BPS", "a Photoshop file"),
    (b"SIMPLE  =", "a FITS file"),
    (b"GIF8", "a GIF (not supported: convert it to PNG)"),
    (b"PK\x03\x04", "a zip archive"),
)


class ImageError(ValueError):
    """The bytes are not an image cocoseg can use; the message says why in a few words."""


class InvalidUpload(ImageError):
    """An upload that was refused; the message is meant for the page as it is."""


def _to_rgb(picture: Image.Image) -> np.ndarray:
    """Any Pillow mode -> RGB uint8 (H, W, 3).

    16-bit and float greys are scaled by their maximum (so they are not all white);
    palette images with transparency and alpha channels keep their colour values (alpha
    is ignored: segmentation looks at colours, and compositing would invent a background).
    """
    if picture.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(picture, dtype=np.float64)
        values = values - min(values.min(), 0.0)
        peak = values.max() or 1.0
        grey = np.clip(np.rint(values * (255.0 / peak)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if picture.mode == "P" and "transparency" in picture.info:
        picture = picture.convert("RGBA")
    return np.asarray(picture.convert("RGB"), dtype=np.uint8)


def decode_rgb(data: bytes, name: str = "image") -> np.ndarray:
    """Decode image bytes to an RGB uint8 (H, W, 3) array.

    Grey, palette, 16-bit and CMYK images are converted to RGB; alpha is dropped.

    Raises:
        ImageError: empty, not an allowed format, corrupt/truncated, or too many pixels.
    """
    if not data:
        raise ImageError(f"{name}: empty file")
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as handle:
            handle.load()
            return _to_rgb(handle)
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: more pixels than the safety limit ({Image.MAX_IMAGE_PIXELS:,})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a {'/'.join(ALLOWED_FORMATS)} image") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{name}: corrupt or truncated ({str(error)[:80]})") from None


def read_rgb(path: Path) -> np.ndarray:
    """Read and decode an image file (see ``decode_rgb``)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{Path(path).name}: file not found") from None
    except OSError as error:
        raise ImageError(f"{Path(path).name}: cannot read ({error.strerror})") from None
    return decode_rgb(data, Path(path).name)


# --- uploads ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UploadedImage:
    """A decoded upload.

    Attributes:
        image: RGB uint8 (H, W, 3), EXIF orientation applied.
        name: the file name as sent, for display only (never a path).
        format: the format found by its magic bytes.
        notes: what was done to it (rotated by EXIF, first of N frames, 16-bit scaled...).
    """

    image: np.ndarray
    name: str
    format: str
    notes: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def display_name(filename) -> str:
    """A file name safe to show: control characters removed, folders dropped, shortened."""
    text = re.sub(r"[\x00-\x1f\x7f]", "", str(filename or "upload"))
    text = re.split(r"[\\/]", text)[-1] or "upload"
    return text if len(text) <= DISPLAY_NAME_LIMIT else text[: DISPLAY_NAME_LIMIT - 1] + "…"


def sniff_format(data: bytes) -> str:
    """The allowed format of ``data`` by magic bytes, or raise ``InvalidUpload`` naming what it is."""
    for prefix, found in _SIGNATURES:
        if data.startswith(prefix):
            return found
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for prefix, found in _REFUSED:
        if data.startswith(prefix):
            raise InvalidUpload(f"this is {found}, not an image cocoseg accepts ({UPLOAD_FORMATS_TEXT})")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        raise InvalidUpload(f"SVG drawings are not accepted; upload a {UPLOAD_FORMATS_TEXT} image")
    if head.startswith((b"<!doctype", b"<html")) or b"<script" in head:
        raise InvalidUpload(f"this is a web page (HTML), not an image; upload a {UPLOAD_FORMATS_TEXT} image")
    raise InvalidUpload(
        f"not a {UPLOAD_FORMATS_TEXT} image (the content does not start like one, whatever its name says)"
    )


def upload_bytes(contents, max_bytes: int) -> bytes:
    """The bytes of a ``data:...;base64,...`` URL from ``dcc.Upload``, size-checked first."""
    if not isinstance(contents, str) or not contents.startswith("data:") or "," not in contents:
        raise InvalidUpload("not a data URL: the browser sent no file content")
    header, payload = contents.split(",", 1)
    if not header.endswith(";base64"):
        raise InvalidUpload("not a data URL: the content is not base64-encoded")
    estimated = len(payload) * 3 // 4
    if estimated > max_bytes:
        raise InvalidUpload(
            f"the file is {estimated / 1024**2:.1f} MB; the limit is {max_bytes / 1024**2:.0f} MB"
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidUpload("the upload is damaged (not valid base64); try again") from None
    if not data:
        raise InvalidUpload("the file is empty")
    return data


def decode_upload(contents, filename, max_bytes: int, max_pixels: int) -> UploadedImage:
    """Decode a browser upload into an RGB image, or raise ``InvalidUpload``.

    Args:
        contents: the ``dcc.Upload`` data URL.
        filename: as sent by the browser; only displayed.
        max_bytes: decoded size limit, checked before decoding.
        max_pixels: width x height limit, checked on the header before pixels are allocated.
    """
    name = display_name(filename)
    try:
        data = upload_bytes(contents, max_bytes)
        found = sniff_format(data)
        return dataclasses.replace(_decode_upload_bytes(data, found, max_pixels), name=name)
    except InvalidUpload as error:
        raise InvalidUpload(f"{name}: {error}") from None


def _decode_upload_bytes(data: bytes, found: str, max_pixels: int) -> UploadedImage:
    with warnings.catch_warnings():  # Pillow warns about damaged EXIF blocks; the result says enough
        warnings.simplefilter("ignore", UserWarning)
        return _decode_checked(data, found, max_pixels)


def _decode_checked(data: bytes, found: str, max_pixels: int) -> UploadedImage:
    notes = []
    try:
        with Image.open(io.BytesIO(data), formats=(found,)) as handle:
            width, height = handle.size
            if width * height > max_pixels:
                raise InvalidUpload(
                    f"{width} x {height} pixels is more than the limit of {max_pixels / 1e6:.0f} megapixels"
                )
            frames = getattr(handle, "n_frames", 1)
            if frames > 1:
                handle.seek(0)
                notes.append(f"first of {frames} frames")
            handle.load()
            orientation = handle.getexif().get(0x0112, 1)
            picture = ImageOps.exif_transpose(handle) if orientation in range(2, 9) else handle
            if orientation in range(2, 9):
                notes.append(f"rotated upright (EXIF orientation {orientation})")
            if picture.mode in SIXTEEN_BIT_MODES:
                notes.append(f"{picture.mode} scaled to 8 bits")
            elif picture.mode in ("RGBA", "LA", "PA") or (
                picture.mode == "P" and "transparency" in picture.info
            ):
                notes.append("transparency ignored")
            return UploadedImage(_to_rgb(picture), "", found, tuple(notes))
    except InvalidUpload:
        raise
    except Image.DecompressionBombError:
        raise InvalidUpload(f"more pixels than the limit of {max_pixels / 1e6:.0f} megapixels") from None
    except UnidentifiedImageError:
        raise InvalidUpload(
            f"the {found} file is corrupt or truncated (it starts like one but cannot be read)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidUpload(f"the {found} file is corrupt or truncated ({str(error)[:60]})") from None
