"""Where a pretrained encoder's ImageNet weights come from: the workspace, Keras' cache, or a download.

Looked up in this order: a file in ``<workspace>/weights`` (imported with ``cocoseg weights
import`` or downloaded by an earlier run), Keras' own cache (``$KERAS_HOME/models`` or
``~/.keras/models``), then the Keras Applications download (or the mirror named by
``COCOSEG_WEIGHTS_URL``), which lands in the workspace once, atomically, with its digest
checked. ``check_available`` runs before a run folder exists, so an offline machine without
the file gets one line saying what to do instead of a failed run. No TensorFlow here; the
checks of an imported file's layers are in ``weights_import``.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cocoseg.errors import ConfigError
from cocoseg.models.encoder_catalog import EncoderInfo, encoder_info
from cocoseg.pipeline.core.workspace import Workspace

MIRROR_ENVIRONMENT = "COCOSEG_WEIGHTS_URL"
PROBE_TIMEOUT_SECONDS = 5.0
DOWNLOAD_TIMEOUT_SECONDS = 60.0
CHUNK_BYTES = 1 << 20
# The two formats a user may carry in: Keras Applications' ``.h5`` and Keras 3's ``.weights.h5``.
SUFFIXES = (".weights.h5", ".h5")

DownloadProgress = Callable[[int, int], None]


def workspace_file(workspace: Workspace, encoder: str) -> Path | None:
    """The imported or downloaded file in the workspace, if there is one."""
    for suffix in SUFFIXES:
        path = workspace.weights_dir / f"{encoder}{suffix}"
        if path.is_file():
            return path
    return None


def keras_cache_file(info: EncoderInfo) -> Path | None:
    """Keras' own cached copy (``keras.applications(weights="imagenet")`` downloads there)."""
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    path = home / "models" / info.weights_file
    return path if path.is_file() else None


def local_file(workspace: Workspace, encoder: str) -> Path | None:
    """The weights file a run would use without the network, or None."""
    return workspace_file(workspace, encoder) or keras_cache_file(encoder_info(encoder))


def source_url(info: EncoderInfo) -> str:
    mirror = os.environ.get(MIRROR_ENVIRONMENT, "").strip()
    return (mirror.rstrip("/") + "/" + info.weights_path) if mirror else info.url


def _offline_message(info: EncoderInfo, reason: str) -> str:
    return (
        f"ImageNet weights for {info.name} are not on this machine and cannot be downloaded ({reason}): "
        f"carry {info.weights_file} in and run `cocoseg weights import FILE --encoder {info.name}`, "
        "or train with random encoder weights"
    )


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or error
    return f"{type(reason).__name__}: {str(reason)[:100]}" if str(reason) else type(reason).__name__


def check_available(workspace: Workspace, encoder: str) -> str:
    """Say where ``encoder``'s weights will come from, or refuse in one line before anything starts.

    Returns:
        "workspace", "keras cache" or "download".

    Raises:
        ConfigError: field ``encoder_weights``; no local file and the download is unreachable.
    """
    info = encoder_info(encoder)
    if workspace_file(workspace, encoder):
        return "workspace"
    if keras_cache_file(info):
        return "keras cache"
    request = urllib.request.Request(source_url(info), method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_SECONDS):  # noqa: S310 - https or a chosen mirror
            return "download"
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ConfigError("encoder_weights", _offline_message(info, _reason(error))) from None


def download(workspace: Workspace, encoder: str, on_progress: DownloadProgress | None = None) -> Path:
    """Fetch the weights into the workspace: a temp file renamed into place once complete and checked.

    ``on_progress(received_bytes, total_bytes)`` is called about once per MiB (total 0 when the
    server does not say).

    Raises:
        ConfigError: the download failed or the file's digest is not Keras' (nothing is kept).
    """
    info = encoder_info(encoder)
    workspace.weights_dir.mkdir(parents=True, exist_ok=True)
    target = workspace.weights_dir / f"{encoder}.h5"
    temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(source_url(info), timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0)
            received = 0
            with open(temporary, "wb") as output:
                while chunk := response.read(CHUNK_BYTES):
                    output.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if on_progress:
                        on_progress(received, total)
                output.flush()
                os.fsync(output.fileno())
    except (urllib.error.URLError, OSError, ValueError) as error:
        temporary.unlink(missing_ok=True)
        raise ConfigError("encoder_weights", _offline_message(info, _reason(error))) from None
    if info.md5 and digest.hexdigest() != info.md5:
        temporary.unlink(missing_ok=True)
        raise ConfigError(
            "encoder_weights",
            f"the downloaded {info.weights_file} has digest {digest.hexdigest()}, not Keras' {info.md5}; "
            "it was not kept (a broken mirror or proxy?)",
        )
    os.replace(temporary, target)
    return target


def weights_file(workspace: Workspace, encoder: str, on_progress: DownloadProgress | None = None) -> Path:
    """The local weights file for ``encoder``, downloading it first when there is none."""
    return local_file(workspace, encoder) or download(workspace, encoder, on_progress)


def progress_line(encoder: str, received: int, total: int) -> str:
    """``downloading ImageNet weights for resnet50v2: 12 of 91 MB`` (the run's status message)."""
    done = f"{received / 1e6:.0f}"
    return (
        f"downloading ImageNet weights for {encoder}: {done} of {total / 1e6:.0f} MB"
        if total
        else (f"downloading ImageNet weights for {encoder}: {done} MB")
    )


def throttled(callback: Callable[[str], None], encoder: str, seconds: float = 0.5) -> DownloadProgress:
    """A download progress callback that reports a line at most every ``seconds`` and at the end."""
    last = [0.0]

    def report(received: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= seconds or (total and received >= total):
            last[0] = now
            callback(progress_line(encoder, received, total))

    return report


def availability_note(workspace: Workspace, encoder: str) -> str:
    """One line for the form: where ``encoder``'s ImageNet weights are, or what the first run will do."""
    info = encoder_info(encoder)
    found = workspace_file(workspace, encoder)
    if found:
        return f"ImageNet weights for {encoder}: in the workspace ({found.name})."
    if keras_cache_file(info):
        return f"ImageNet weights for {encoder}: in Keras' cache."
    return (
        f"ImageNet weights for {encoder} are downloaded once ({info.megabytes} MB) when the run starts; "
        f"offline, carry the file in with `cocoseg weights import FILE --encoder {encoder}`."
    )
