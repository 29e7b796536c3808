"""Core: settings, the workspace on disk, the result cache and the one configuration error.

Every other sub-package builds on these; none of them imports TensorFlow. ``tf_runtime``
(thread and device settings for a job's TensorFlow) is left out on purpose: only job
processes import it, by module.
"""

from cocoseg.errors import ConfigError
from cocoseg.pipeline.core.devices import CpuInfo, cpu_info
from cocoseg.pipeline.core.settings import ASSETS_DIR, Settings, get_settings
from cocoseg.pipeline.core.workspace import (
    BusyError,
    UnsafePathError,
    Workspace,
    atomic_write_bytes,
    check_name,
    default_workspace,
)

__all__ = [
    "ASSETS_DIR",
    "BusyError",
    "ConfigError",
    "CpuInfo",
    "Settings",
    "UnsafePathError",
    "Workspace",
    "atomic_write_bytes",
    "check_name",
    "cpu_info",
    "default_workspace",
    "get_settings",
]
