"""Safe decoding of images into RGB uint8 arrays.

Dataset images are decoded with Pillow under an allow-list of formats, with Pillow's
decompression-bomb limit in force and ``load()`` called so truncated or corrupt files
fail here, not later inside a worker. EXIF orientation is *not* applied to dataset
images: COCO annotations refer to the stored pixels (``data validate`` warns about
EXIF-rotated files). Every failure becomes one ``ImageError`` with a short reason.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")


class ImageError(ValueError):
    """The bytes are not an image cocoseg can use; the message says why in a few words."""


def decode_rgb(data: bytes, name: str = "image") -> np.ndarray:
    """Decode image bytes to an RGB uint8 (H, W, 3) array.

    Grey, palette, 16-bit and CMYK images are converted to RGB; alpha is dropped
    (composited on black is not needed: segmentation ignores transparency).

    Raises:
        ImageError: empty, not an allowed format, corrupt/truncated, or too many pixels.
    """
    if not data:
        raise ImageError(f"{name}: empty file")
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as handle:
            handle.load()
            picture = handle
            if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
                values = np.asarray(picture, dtype=np.float64)
                peak = values.max() or 1.0
                grey = np.clip(values * (255.0 / peak), 0, 255).astype(np.uint8)
                return np.repeat(grey[:, :, None], 3, axis=2)
            return np.asarray(picture.convert("RGB"), dtype=np.uint8)
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
