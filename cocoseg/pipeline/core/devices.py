"""What this machine's CPU can do, read without TensorFlow (``/proc/cpuinfo`` on Linux).

Precision and kernel speed depend on a handful of instruction-set flags: AVX2 and AVX-512 for
float32, VNNI for int8, AVX-512 BF16 and AMX for bfloat16 (oneDNN, which TensorFlow and ONNX
Runtime use on x86, takes the AMX tiles when the flags are there). ``cpu_info`` reads them once
per process; ``cocoseg doctor``, training's ``--precision auto`` and the benchmarks all ask here.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform

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
