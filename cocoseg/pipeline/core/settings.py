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
MIN_TOKEN_LENGTH = 16
# Annotate abandons a click-to-mask call after this long (issue 17's limit), keeping the mask as it was.
DEFAULT_TOOL_TIMEOUT_SECONDS = 2.0


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
        token: the web app's access token (``COCOSEG_TOKEN``); empty means one is generated
            when a token is needed (``cocoseg.app.access``). Kept out of ``repr``.
        token_required: require the token on a loopback address too (serving beyond
            loopback always requires it).
        allowed_hosts: extra names the ``Host`` header may carry (``COCOSEG_ALLOWED_HOSTS``,
            comma-separated), besides the bound address and localhost.
        server_threads: worker threads of the production server (waitress).
        trusted_proxy: the address of a reverse proxy in front (``COCOSEG_TRUSTED_PROXY``, e.g. 127.0.0.1).
            Only its ``X-Forwarded-For/-Proto/-Host/-Port`` headers are believed (waitress), so behind
            an HTTPS proxy the token cookie is ``Secure`` and each client gets its own job-start
            bucket. Empty: proxy headers are dropped.
        max_training_jobs: training jobs (train, resume, fine-tune, quick start) that run at the same time;
            later ones wait ``queued`` for a slot (``cocoseg.pipeline.jobs.slots``).
        max_preparation_jobs: the same for preparation jobs.
        job_starts_per_minute: background jobs one client address may start per minute (a token bucket
            of ``job_start_burst``; 0 turns the limit off). None (unset): ``SHARED_JOB_STARTS_PER_MINUTE``
            when a token guards the server, no limit on a token-free loopback server (one local user,
            whose form changes start model summaries and previews too).
        job_start_burst: how many job starts a client may make at once before the rate applies.
        broker_insecure: accept a broker URL without a password on a non-loopback host (refused otherwise).
        broker_visibility_seconds: Redis redelivers a task nobody acknowledged after this long (a worker
            killed mid-task); tasks are acknowledged when they end.
        tool_timeout_seconds: a click-to-mask call on the Annotate page that runs longer is abandoned,
            the mask unchanged (``COCOSEG_TOOL_TIMEOUT_SECONDS``; raise it on a slow or busy machine).
        data_roots: folders (``COCOSEG_DATA_ROOTS``, separated by ``os.pathsep``) under which the app
            may register datasets when it serves on an address other machines can reach (none then
            refuses every path); on loopback any path may be, and the form's folder browser starts here
            (else the user's home).
    """

    home: Path
    port: int = DEFAULT_PORT
    max_annotation_bytes: int = 1024 * MEGABYTE
    max_request_bytes: int = 64 * MEGABYTE
    broker_url: str = dataclasses.field(default="", repr=False)  # may hold a password: never in a repr
    max_upload_bytes: int = 20 * MEGABYTE
    max_upload_pixels: int = 40_000_000
    stall_seconds: float = 60.0
    cancel_grace_seconds: float = 20.0
    progress_timeout_seconds: float = 1800.0
    job_throttle_seconds: float = 0.0
    cluster_connect_seconds: float = 120.0
    cluster_step_seconds: float = 300.0
    token: str = dataclasses.field(default="", repr=False)
    token_required: bool = False
    allowed_hosts: tuple[str, ...] = ()
    server_threads: int = 8
    trusted_proxy: str = ""
    # --- serving beyond localhost (issue 19): job limits and the broker's safety
    max_training_jobs: int = 1
    max_preparation_jobs: int = 1
    job_starts_per_minute: float | None = None
    job_start_burst: int = 20
    broker_insecure: bool = False
    broker_visibility_seconds: float = 3600.0
    data_roots: tuple[Path, ...] = ()
    tool_timeout_seconds: float = DEFAULT_TOOL_TIMEOUT_SECONDS

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
        if self.token and (len(self.token) < MIN_TOKEN_LENGTH or not self.token.isprintable()):
            raise ValueError(
                f"COCOSEG_TOKEN must be at least {MIN_TOKEN_LENGTH} printable characters "
                "(leave it unset and cocoseg serve generates one)"
            )
        if self.tool_timeout_seconds <= 0:
            raise ValueError(
                f"COCOSEG_TOOL_TIMEOUT_SECONDS must be positive, got {self.tool_timeout_seconds:g}"
            )
        if not 1 <= self.server_threads <= 256:
            raise ValueError(f"COCOSEG_SERVER_THREADS must be between 1 and 256, got {self.server_threads}")
        self._check_limits()

    def _check_limits(self) -> None:
        if min(self.max_training_jobs, self.max_preparation_jobs, self.job_start_burst) < 1:
            raise ValueError(
                "COCOSEG_MAX_TRAINING_JOBS, COCOSEG_MAX_PREPARATION_JOBS and COCOSEG_JOB_START_BURST "
                "must be at least 1"
            )
        if (self.job_starts_per_minute or 0) < 0 or self.broker_visibility_seconds <= 0:
            raise ValueError(
                "COCOSEG_JOB_STARTS_PER_MINUTE must be at least 0 (0: no limit) and "
                "COCOSEG_BROKER_VISIBILITY_SECONDS positive"
            )
        if self.broker_url:
            from cocoseg.pipeline.core.broker import check_broker_url

            check_broker_url(self.broker_url, self.broker_insecure)


def _int_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _float_from_env(name: str, default: float | None) -> float | None:
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


def _flag_from_env(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be 1 or 0, got {raw!r}")


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
        token=os.environ.get("COCOSEG_TOKEN", "").strip(),
        token_required=_flag_from_env("COCOSEG_TOKEN_REQUIRED"),
        allowed_hosts=tuple(
            name.strip().lower()
            for name in os.environ.get("COCOSEG_ALLOWED_HOSTS", "").split(",")
            if name.strip()
        ),
        server_threads=_int_from_env("COCOSEG_SERVER_THREADS", 8),
        trusted_proxy=os.environ.get("COCOSEG_TRUSTED_PROXY", "").strip(),
        max_training_jobs=_int_from_env("COCOSEG_MAX_TRAINING_JOBS", 1),
        max_preparation_jobs=_int_from_env("COCOSEG_MAX_PREPARATION_JOBS", 1),
        job_starts_per_minute=_float_from_env("COCOSEG_JOB_STARTS_PER_MINUTE", None),
        job_start_burst=_int_from_env("COCOSEG_JOB_START_BURST", 20),
        broker_insecure=_flag_from_env("COCOSEG_BROKER_INSECURE"),
        broker_visibility_seconds=_float_from_env("COCOSEG_BROKER_VISIBILITY_SECONDS", 3600.0),
        data_roots=_paths_from_env("COCOSEG_DATA_ROOTS"),
        tool_timeout_seconds=_float_from_env("COCOSEG_TOOL_TIMEOUT_SECONDS", DEFAULT_TOOL_TIMEOUT_SECONDS),
    )


def _paths_from_env(name: str) -> tuple[Path, ...]:
    """Absolute, resolved folders from an ``os.pathsep``-separated variable (empty parts skipped)."""
    raw = os.environ.get(name, "")
    return tuple(Path(part.strip()).expanduser().resolve() for part in raw.split(os.pathsep) if part.strip())


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return read_settings()
