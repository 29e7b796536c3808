"""One Settings object, read once from the environment.

Every tunable that the CLI, the app and the jobs share lives here so that a value
is parsed and validated in one place. Environment variables all start with
``COCOSEG_``; the server's host is deliberately *not* read from the environment
(a stray ``HOST=0.0.0.0`` must never open the app to the network): only the
explicit ``--host`` flag of ``cocoseg serve`` does that.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ASSETS_DIR = PROJECT_ROOT / "assets"
DEMO_DATASET_DIR = ASSETS_DIR / "demo" / "coco_tiny"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
MEGABYTE = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Settings:
    """Process-wide configuration.

    Attributes:
        home: the workspace root; everything cocoseg writes lives below it.
        port: default port of ``cocoseg serve``.
        max_annotation_bytes: annotation files above this size are refused
            before parsing (a 2 GB JSON would otherwise take the machine's memory).
        max_request_bytes: Flask's MAX_CONTENT_LENGTH for the web server.
        broker_url: Redis URL for Celery background jobs; empty means DiskCache.
        max_upload_bytes: an uploaded image above this size is refused before decoding.
        max_upload_pixels: an uploaded image whose header declares more pixels is
            refused before any pixel is allocated (decompression bombs).
        stall_seconds: a job whose process lives but whose heartbeat is older than this
            is shown ``stalled`` (a hang in native code, a stopped process).
        cancel_grace_seconds: how long a cancelled job may take to stop by itself before
            its process is killed (a stalled one gets at most ``STALLED_GRACE_SECONDS``).
        progress_timeout_seconds: a job that reports no progress for this long stops its
            heartbeat, so a deadlock that leaves the heartbeat thread running is seen too.
        job_throttle_seconds: a pause after every progress step of a job (0: none); for tests
            and demos on machines too fast to watch a progress bar move.
        cluster_connect_seconds: how long the workers of a several-machine training wait for
            each other (``training.cluster``) before the run fails naming the addresses.
        cluster_step_seconds: one all-reduce longer than this fails the run (a worker died).
    """

    home: Path
    port: int = DEFAULT_PORT
    max_annotation_bytes: int = 1024 * MEGABYTE
    max_request_bytes: int = 64 * MEGABYTE
    broker_url: str = ""
    max_upload_bytes: int = 20 * MEGABYTE
    max_upload_pixels: int = 40_000_000
    stall_seconds: float = 60.0
    cancel_grace_seconds: float = 20.0
    progress_timeout_seconds: float = 1800.0
    job_throttle_seconds: float = 0.0
    cluster_connect_seconds: float = 120.0
    cluster_step_seconds: float = 300.0
    # --- issue 20: where datasets may be registered from the app (one block) ---
    # data_roots: folders (COCOSEG_DATA_ROOTS, separated by os.pathsep) under which the app
    # may register datasets when it serves on an address other machines can reach; empty
    # refuses every path then. On a loopback address any path may be registered, and the
    # roots (else the user's home) are where the form's folder browser starts.
    data_roots: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be between 1 and 65535, got {self.port}")
        if (
            min(
                self.max_annotation_bytes,
                self.max_request_bytes,
                self.max_upload_bytes,
                self.max_upload_pixels,
            )
            <= 0
        ):
            raise ValueError("size limits must be positive")
        if (
            min(
                self.stall_seconds,
                self.cancel_grace_seconds,
                self.progress_timeout_seconds,
                self.cluster_connect_seconds,
                self.cluster_step_seconds,
            )
            <= 0
            or self.job_throttle_seconds < 0
        ):
            raise ValueError(
                "job timings must be positive (COCOSEG_STALL_SECONDS, COCOSEG_CANCEL_GRACE_SECONDS, "
                "COCOSEG_PROGRESS_TIMEOUT_SECONDS, COCOSEG_CLUSTER_CONNECT_SECONDS, "
                "COCOSEG_CLUSTER_STEP_SECONDS) and COCOSEG_JOB_THROTTLE_SECONDS at least 0"
            )


def _int_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _float_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number of seconds, got {raw!r}")
    return value


def read_settings() -> Settings:
    """Build Settings from the environment (no caching; see ``get_settings``)."""
    home = os.environ.get("COCOSEG_HOME", "").strip() or "workspace"
    return Settings(
        home=Path(home).expanduser().resolve(),
        port=_int_from_env("COCOSEG_PORT", DEFAULT_PORT),
        max_annotation_bytes=_int_from_env("COCOSEG_MAX_ANNOTATION_MB", 1024) * MEGABYTE,
        max_request_bytes=_int_from_env("COCOSEG_MAX_REQUEST_MB", 64) * MEGABYTE,
        broker_url=os.environ.get("COCOSEG_BROKER_URL", "").strip(),
        max_upload_bytes=_int_from_env("COCOSEG_MAX_UPLOAD_MB", 20) * MEGABYTE,
        max_upload_pixels=_int_from_env("COCOSEG_MAX_UPLOAD_MEGAPIXELS", 40) * 1_000_000,
        stall_seconds=_float_from_env("COCOSEG_STALL_SECONDS", 60.0),
        cancel_grace_seconds=_float_from_env("COCOSEG_CANCEL_GRACE_SECONDS", 20.0),
        progress_timeout_seconds=_float_from_env("COCOSEG_PROGRESS_TIMEOUT_SECONDS", 1800.0),
        job_throttle_seconds=_float_from_env("COCOSEG_JOB_THROTTLE_SECONDS", 0.0),
        cluster_connect_seconds=_float_from_env("COCOSEG_CLUSTER_CONNECT_SECONDS", 120.0),
        cluster_step_seconds=_float_from_env("COCOSEG_CLUSTER_STEP_SECONDS", 300.0),
        data_roots=_paths_from_env("COCOSEG_DATA_ROOTS"),
    )


def _paths_from_env(name: str) -> tuple[Path, ...]:
    """Absolute, resolved folders from an ``os.pathsep``-separated variable (empty parts skipped)."""
    raw = os.environ.get(name, "")
    return tuple(Path(part.strip()).expanduser().resolve() for part in raw.split(os.pathsep) if part.strip())


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return read_settings()
