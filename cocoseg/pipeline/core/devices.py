"""What this machine's CPU and NVIDIA GPUs can do, read without TensorFlow.

Precision and kernel speed depend on a handful of instruction-set flags: AVX2 and AVX-512 for
float32, VNNI for int8, AVX-512 BF16 and AMX for bfloat16 (oneDNN, which TensorFlow and ONNX
Runtime use on x86, takes the AMX tiles when the flags are there). ``cpu_info`` reads them once
per process from ``/proc/cpuinfo``; ``nvidia_info`` asks the driver's ``nvidia-smi`` for GPUs (so
the web process can say what is there without importing TensorFlow); ``cuda_packages`` lists the
pip CUDA and cuDNN wheels. ``cocoseg doctor``, training's ``--precision auto`` and the
benchmarks all ask here.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess

CPUINFO = "/proc/cpuinfo"
# flag in /proc/cpuinfo -> the name people know it by, in the order doctor prints them
FLAGS = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "amx_tile": "AMX",
    "amx_bf16": "AMX BF16",
    "amx_int8": "AMX INT8",
}


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name, logical core count and the flags of ``FLAGS`` it has."""

    model: str
    cores: int
    flags: frozenset[str]

    @property
    def bfloat16(self) -> bool:
        """Hardware bfloat16 arithmetic: AVX-512 BF16 or AMX BF16 (without either, bfloat16 is emulated
        and slower than float32)."""
        return bool(self.flags & {"avx512_bf16", "amx_bf16"})

    @property
    def named_flags(self) -> list[str]:
        return [name for flag, name in FLAGS.items() if flag in self.flags]

    def describe(self) -> str:
        """One line: model, cores and the flags, for doctor and BENCHMARKS.md."""
        flags = ", ".join(self.named_flags) or "none of AVX2 / AVX-512 / VNNI / BF16 / AMX"
        return f"{self.model}, {self.cores} cores ({flags})"


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """(model name, flags of ``FLAGS``) from the text of ``/proc/cpuinfo`` (the first processor's)."""
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split()) & FLAGS.keys()
    return model, flags


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU (off Linux the model comes from ``platform`` and no flag is known)."""
    try:
        with open(CPUINFO, encoding="utf-8", errors="replace") as handle:
            model, flags = parse_cpuinfo(handle.read())
    except OSError:
        model, flags = "", frozenset()
    return CpuInfo(
        model or platform.processor() or platform.machine() or "unknown CPU", os.cpu_count() or 1, flags
    )


# --- NVIDIA GPUs, asked of nvidia-smi (the driver's own tool), not of TensorFlow ----------------

NVIDIA_SMI_TIMEOUT = 20
# pip packages that carry CUDA and cuDNN: onnxruntime-gpu's [cuda,cudnn] extras (CUDA 13) and
# tensorflow[and-cuda] (CUDA 12) each bring their own, side by side
CUDA_PACKAGES = {
    "nvidia-cuda-runtime": "CUDA 13 runtime (ONNX Runtime)",
    "nvidia-cudnn-cu13": "cuDNN for CUDA 13 (ONNX Runtime)",
    "nvidia-cuda-runtime-cu12": "CUDA 12 runtime (TensorFlow)",
    "nvidia-cudnn-cu12": "cuDNN for CUDA 12 (TensorFlow)",
}


@dataclasses.dataclass(frozen=True)
class Gpu:
    name: str
    memory_mib: int
    compute_capability: str  # "9.0"; tensor cores from 7.0


@dataclasses.dataclass(frozen=True)
class NvidiaInfo:
    """The NVIDIA GPUs and driver nvidia-smi reports; ``note`` says why there are none."""

    gpus: tuple[Gpu, ...] = ()
    driver: str = ""
    cuda: str = ""  # the newest CUDA the driver supports
    note: str = ""


def parse_nvidia_smi(listing: str, banner: str) -> NvidiaInfo:
    """nvidia-smi's ``--query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader,nounits``
    output and its plain banner (for "CUDA Version")."""
    gpus, driver = [], ""
    for line in listing.strip().splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 4:
            continue
        name, memory, driver, capability = fields
        gpus.append(Gpu(name, int(float(memory)) if memory.replace(".", "").isdigit() else 0, capability))
    match = re.search(r"CUDA Version:\s*([0-9.]+)", banner)
    note = "" if gpus else "nvidia-smi lists no GPU"
    return NvidiaInfo(tuple(gpus), driver, match.group(1) if match else "", note)


@functools.lru_cache(maxsize=1)
def nvidia_info() -> NvidiaInfo:
    """This machine's NVIDIA GPUs, or why none are seen (no nvidia-smi, or it failed)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return NvidiaInfo(note="no NVIDIA driver (nvidia-smi not found)")
    query = "--query-gpu=name,memory.total,driver_version,compute_cap"
    try:
        listing = subprocess.run(
            [tool, query, "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT,
            check=True,
        ).stdout
        banner = subprocess.run([tool], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT).stdout
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        return NvidiaInfo(note=f"nvidia-smi failed: {' '.join(str(detail).split())[:200]}")
    return parse_nvidia_smi(listing, banner)


def cuda_packages() -> dict[str, str]:
    """The pip CUDA / cuDNN packages installed here: description -> version."""
    found = {}
    for package, description in CUDA_PACKAGES.items():
        try:
            found[description] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
