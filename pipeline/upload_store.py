"""Decoded uploads kept server-side under a random key, so the browser sends a file once.

The Segment page stores each decoded upload here and keeps only the key (and the
display name) in the browser; every later interaction (another model, another variant,
a download) reads the pixels back by key instead of re-sending megabytes of base64.
Entries live in the workspace's private cache and expire after an hour.
"""

from __future__ import annotations

import secrets

import numpy as np

from pipeline.cache import open_cache
from pipeline.images import UploadedImage
from pipeline.workspace import Workspace

EXPIRE_SECONDS = 3600
CACHE_NAME = "uploads"
KEY_BYTES = 16


def store_upload(workspace: Workspace, upload: UploadedImage) -> str:
    """Keep a decoded upload; returns its key (unguessable, URL-safe)."""
    key = secrets.token_urlsafe(KEY_BYTES)
    with open_cache(workspace, CACHE_NAME) as cache:
        cache.set(("upload", key), {"image": upload.image, "name": upload.name, "format": upload.format, "notes": upload.notes},
                  expire=EXPIRE_SECONDS)
    return key


def load_upload(workspace: Workspace, key) -> UploadedImage | None:
    """The upload stored under ``key``, or None when it expired or never existed."""
    if not isinstance(key, str) or not 10 <= len(key) <= 64:
        return None
    with open_cache(workspace, CACHE_NAME) as cache:
        record = cache.get(("upload", key))
    if record is None:
        return None
    return UploadedImage(np.asarray(record["image"]), record["name"], record["format"], tuple(record["notes"]))


def store_result(workspace: Workspace, key: str, model: str, variant: str, mask: np.ndarray) -> None:
    """Keep a predicted mask for downloads (same lifetime as its upload)."""
    with open_cache(workspace, CACHE_NAME) as cache:
        cache.set(("result", key, model, variant), mask, expire=EXPIRE_SECONDS)


def load_result(workspace: Workspace, key, model, variant) -> np.ndarray | None:
    if not all(isinstance(value, str) for value in (key, model, variant)):
        return None
    with open_cache(workspace, CACHE_NAME) as cache:
        return cache.get(("result", key, model, variant))
