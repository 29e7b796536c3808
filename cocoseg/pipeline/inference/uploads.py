"""Decoded uploads kept server-side under a random key, so the browser sends a file once.

The Segment page stores each decoded upload here and keeps only the key (and the
display name) in the browser; every later interaction (another model, another variant,
a download) reads the pixels back by key instead of re-sending megabytes of base64.
Entries live in the workspace's private cache and expire after an hour.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np

from cocoseg.pipeline.core.cache import open_cache
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.data.images import UploadedImage

EXPIRE_SECONDS = 3600
CACHE_NAME = "uploads"
KEY_BYTES = 16


def store_upload(workspace: Workspace, upload: UploadedImage) -> str:
    """Keep a decoded upload; returns its key (unguessable, URL-safe)."""
    key = secrets.token_urlsafe(KEY_BYTES)
    with open_cache(workspace, CACHE_NAME) as cache:
        cache.set(
            ("upload", key),
            {"image": upload.image, "name": upload.name, "format": upload.format, "notes": upload.notes},
            expire=EXPIRE_SECONDS,
        )
    return key


def load_upload(workspace: Workspace, key) -> UploadedImage | None:
    """The upload stored under ``key``, or None when it expired or never existed."""
    if not isinstance(key, str) or not 10 <= len(key) <= 64:
        return None
    with open_cache(workspace, CACHE_NAME) as cache:
        record = cache.get(("upload", key))
    if record is None:
        return None
    return UploadedImage(
        np.asarray(record["image"]), record["name"], record["format"], tuple(record["notes"])
    )


def store_result(workspace: Workspace, key: str, model: str, variant: str, mask: np.ndarray) -> None:
    """Keep a predicted mask for downloads (same lifetime as its upload)."""
    with open_cache(workspace, CACHE_NAME) as cache:
        cache.set(("result", key, model, variant), mask, expire=EXPIRE_SECONDS)


def forget_results(workspace: Workspace, key: str, names) -> None:
    """Drop masks kept under ``key`` (variant ``mask``) and the display pictures kept as ``<key>-<name>``."""
    with open_cache(workspace, CACHE_NAME) as cache:
        for name in names:
            cache.delete(("result", key, name, "mask"))
            cache.delete(("display", f"{key}-{name}"))


def load_result(workspace: Workspace, key, model, variant) -> np.ndarray | None:
    if not all(isinstance(value, str) for value in (key, model, variant)):
        return None
    with open_cache(workspace, CACHE_NAME) as cache:
        return cache.get(("result", key, model, variant))


DISPLAY_SIDE = 1280


def display_size(width: int, height: int) -> tuple[int, int]:
    """The size an upload is shown at: no larger than DISPLAY_SIDE on its longer side."""
    scale = min(1.0, DISPLAY_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def store_display(workspace: Workspace, key: str, picture: np.ndarray) -> None:
    """Keep only the display JPEG of a picture made for the page (a canvas background), under ``key``:
    its pixels are never read back, so they are not kept."""
    data = _display_jpeg_of(picture)
    with open_cache(workspace, CACHE_NAME) as cache:
        cache.set(("display", key), data, expire=EXPIRE_SECONDS)


def has_display(workspace: Workspace, key: str) -> bool:
    with open_cache(workspace, CACHE_NAME) as cache:
        return ("display", key) in cache


def _display_jpeg_of(picture: np.ndarray) -> bytes:
    import cv2

    from cocoseg.pipeline.data.rendering import image_jpeg

    height, width = picture.shape[:2]
    shown = display_size(width, height)
    if shown != (width, height):
        picture = cv2.resize(picture, shown, interpolation=cv2.INTER_AREA)
    return image_jpeg(picture)


def display_jpeg(workspace: Workspace, key) -> bytes | None:
    """The upload as a JPEG for the page (display size, encoded once and kept with it)."""
    if not isinstance(key, str) or not 10 <= len(key) <= 64:
        return None
    with open_cache(workspace, CACHE_NAME) as cache:
        data = cache.get(("display", key))
    if data is not None:
        return data
    upload = load_upload(workspace, key)
    if upload is None:
        return None
    data = _display_jpeg_of(upload.image)
    with open_cache(workspace, CACHE_NAME) as cache:
        cache.set(("display", key), data, expire=EXPIRE_SECONDS)
    return data


def persist_upload(workspace: Workspace, key: str, folder: Path) -> Path:
    """Write an upload's pixels as a lossless PNG into ``folder`` (annotated uploads outlive the cache).

    The file name comes from the key, never from the name the browser sent.

    Raises:
        ValueError: the upload expired (its key is gone).
    """
    from cocoseg.pipeline.core.workspace import atomic_write_bytes
    from cocoseg.pipeline.data.rendering import image_png

    upload = load_upload(workspace, key)
    if upload is None:
        raise ValueError("the uploaded image expired (uploads are kept for an hour); upload it again")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"upload-{key[:16]}.png"
    if not target.is_file():
        atomic_write_bytes(target, image_png(upload.image))
    return target
