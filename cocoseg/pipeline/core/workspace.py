"""Every path under the workspace, atomic writes, locks and path-safety checks.

The workspace is the one folder cocoseg writes to. Files that matter are written
atomically (temp file in the same folder, fsync, ``os.replace``) so a crash leaves
either the old or the new file, never half of one. A user-supplied name becomes a
path only through ``check_name`` or ``resolve_inside``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_LENGTH = 64  # names users give (README: "1-64 letters ...")
# Names built from checked parts (a prepared set's folder, a lock file): a 64-character name plus
# what is added to it must still work; 200 leaves room for ".lock" in one 255-byte path component.
DERIVED_NAME_LENGTH = 200
LOCK_TIMEOUT_SECONDS = 30.0
FILE_MODE = 0o644


class BusyError(ValueError):
    """Another process holds the lock for this job (an export, an ensemble, a run)."""


class UnsafePathError(ValueError):
    """A user-supplied name or path would leave its root or is malformed."""


def check_name(name: str, what: str = "name", *, derived: bool = False) -> str:
    """Return ``name`` if it is safe as a single path component, else raise.

    Allowed: letters, digits, ``_``, ``.``, ``-``; 1-64 characters; not starting
    with a dot or dash; no ``..``. This refuses separators, NUL bytes, absolute
    paths and traversal in one rule. ``derived``: a name the code builds from checked
    names (so a 64-character name works through it) may have ``DERIVED_NAME_LENGTH``.
    """
    if not isinstance(name, str) or "\x00" in name:
        raise UnsafePathError(f"{what} contains a NUL byte or is not text")
    limit = DERIVED_NAME_LENGTH if derived else NAME_LENGTH
    # fullmatch, not match with "$": "$" lets a name end in a newline
    if ".." in name or len(name) > limit or not NAME_PATTERN.fullmatch(name):
        raise UnsafePathError(
            f"{what} {name[:80]!r} is not allowed: use 1-{limit} letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_relative_path(relative: str) -> str:
    """Return ``relative`` with ``/`` separators if it is a plain relative path, else raise.

    Refuses NUL bytes, absolute paths (POSIX, drive-letter and UNC) and ``..``
    components. Pure: touches no file system (``resolve_inside`` adds the symlink check).
    """
    shown = repr(str(relative)[:120])
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise UnsafePathError(f"path {shown} is empty or contains a NUL byte")
    normalised = relative.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        raise UnsafePathError(f"path {shown} is absolute; only paths inside the folder are allowed")
    if ".." in normalised.split("/"):
        raise UnsafePathError(f"path {shown} climbs out of its folder with '..'")
    return normalised


def resolve_inside(root: Path, relative: str) -> Path:
    """Resolve ``relative`` under ``root``, refusing anything that escapes it.

    Applies ``check_relative_path`` and then refuses symlinks whose target lies
    outside ``root``.

    Raises:
        UnsafePathError: with a message naming the offending value.
    """
    normalised = check_relative_path(relative)
    root_resolved = Path(root).resolve()
    candidate = (root_resolved / normalised).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise UnsafePathError(f"path {str(relative)[:120]!r} leads outside its folder (symlink?)")
    return candidate


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform/filesystem
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never a torn one.

    The temp file is created with ``mkstemp`` (O_EXCL: a planted symlink is never
    followed) in the target's folder, fsynced, then renamed over the target.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp's 0600 would make exported files private
            os.fchmod(descriptor, FILE_MODE)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_directory(path.parent)


def atomic_write_json(path: Path, payload: Any) -> None:
    """Serialise ``payload`` strictly (no NaN/Infinity) and write it atomically."""
    text = json.dumps(payload, allow_nan=False, ensure_ascii=False, indent=2, sort_keys=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def now_iso() -> str:
    """The UTC time to the second, as every record in the workspace writes it."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file written by cocoseg; ``default`` when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


class Workspace:
    """The folder layout of one workspace root.

    Args:
        root: the workspace folder; created on first write.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    @property
    def datasets_file(self) -> Path:
        return self.root / "datasets.json"

    @property
    def image_sets_dir(self) -> Path:
        """COCO files cocoseg writes for image folders registered without annotations."""
        return self.root / "image_sets"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def jobs_dir(self) -> Path:
        """Registry entries of background jobs that are not training runs (preparation)."""
        return self.root / "jobs"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def prepared_dir(self) -> Path:
        return self.root / "prepared"

    @property
    def ensembles_dir(self) -> Path:
        return self.root / "ensembles"

    @property
    def annotations_dir(self) -> Path:
        return self.root / "annotations"

    @property
    def weights_dir(self) -> Path:
        """Pretrained encoder weights, downloaded or imported (``training.weights``)."""
        return self.root / "weights"

    def ensure(self) -> Workspace:
        """Create the root and its private cache folder (0700: caches may hold pickles)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.locks_dir.mkdir(exist_ok=True)
        self.cache_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.cache_dir, 0o700)
        return self

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
        """Hold an inter-process lock named ``name`` (a checked name) for concurrent writers."""
        check_name(name, "lock name", derived=True)  # "<what>-<name>": longer than the name itself
        self.ensure()
        with filelock.FileLock(str(self.locks_dir / f"{name}.lock"), timeout=timeout):
            yield

    @contextlib.contextmanager
    def exclusive(self, name: str, message: str) -> Iterator[None]:
        """Hold lock ``name`` or fail at once with ``BusyError(message)`` instead of waiting."""
        try:
            with self.lock(name, timeout=0):
                yield
        except filelock.Timeout:
            raise BusyError(message) from None


def default_workspace() -> Workspace:
    """The workspace named by the settings (``COCOSEG_HOME`` or ``./workspace``)."""
    from cocoseg.pipeline.core.settings import get_settings

    return Workspace(get_settings().home)
