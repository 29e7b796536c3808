"""Disk caches in the workspace, and content hashes that are cheap to ask for twice.

Results derived from a file (statistics, validation reports) are keyed by the
file's SHA-256, so an edited file is never served stale results. Hashing a 450 MB
file takes about a second, so the digest itself is memoised under the file's
(path, size, mtime) fingerprint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import diskcache

from cocoseg.pipeline.core.workspace import Workspace, check_name

CACHE_EXPIRE_SECONDS = 30 * 24 * 3600
_HASH_CHUNK = 8 * 1024 * 1024


def open_cache(workspace: Workspace, name: str) -> diskcache.Cache:
    """The diskcache called ``name`` under the workspace's private cache folder."""
    check_name(name, "cache name")
    workspace.ensure()
    return diskcache.Cache(str(workspace.cache_dir / name))


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's content, read in chunks (no memo: see ``file_sha256``)."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _fingerprint(path: Path) -> tuple:
    status = os.stat(path)
    return ("sha256", str(Path(path).resolve()), status.st_size, status.st_mtime_ns)


_DIGESTS: dict[tuple, str] = {}  # fingerprint -> digest, in this process (a page asks several times)


def known_sha256(workspace: Workspace, path: Path) -> str | None:
    """The memoised SHA-256 of a file as it is now, or None: never reads the file.

    A page that only shows what is cached asks this first: without a digest for this path, size
    and mtime nothing was computed from the file through this path, and hashing a 450 MB file
    (about a second) just to find that out would hold the page back.
    """
    fingerprint = _fingerprint(path)
    if fingerprint in _DIGESTS:
        return _DIGESTS[fingerprint]
    with open_cache(workspace, "digests") as cache:
        digest = cache.get(fingerprint)
    if digest is not None:
        _DIGESTS[fingerprint] = digest
    return digest


def file_sha256(workspace: Workspace, path: Path) -> str:
    """SHA-256 of a file's content, recomputed only when size or mtime change."""
    fingerprint = _fingerprint(path)
    if fingerprint in _DIGESTS:
        return _DIGESTS[fingerprint]
    with open_cache(workspace, "digests") as cache:
        digest = cache.get(fingerprint)
        if digest is None:
            digest = sha256_of(path)
            cache.set(fingerprint, digest, expire=CACHE_EXPIRE_SECONDS)
    _DIGESTS[fingerprint] = digest
    return digest
