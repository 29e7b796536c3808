"""CPU facts read without TensorFlow (cocoseg.pipeline.core.devices), on hand-written /proc/cpuinfo text."""

from __future__ import annotations

from cocoseg.pipeline.core.devices import FLAGS, CpuInfo, cpu_info, parse_cpuinfo

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
processor\t: 1
model name\t: ignored, the first processor's counts
flags\t\t: fpu
"""
EPYC_ZEN2 = """processor\t: 0
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse2 avx avx2 fma
"""


def test_the_flags_that_decide_precision_are_read_from_the_first_processor():
    model, flags = parse_cpuinfo(SAPPHIRE_RAPIDS)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"
    assert flags == {
        "avx2",
        "fma",
        "avx512f",
        "avx512_vnni",
        "avx512_bf16",
        "amx_bf16",
        "amx_tile",
        "amx_int8",
    }
    info = CpuInfo(model, 2, flags)
    assert info.bfloat16 and info.describe().startswith("Intel(R) Xeon(R) Platinum 8480+, 2 cores (AVX2, FMA")


def test_a_cpu_without_bf16_or_amx_has_no_hardware_bfloat16():
    info = CpuInfo(*parse_cpuinfo(EPYC_ZEN2)[:1], 4, parse_cpuinfo(EPYC_ZEN2)[1])
    assert not info.bfloat16 and info.named_flags == ["AVX2", "FMA"]
    assert (
        CpuInfo("x", 1, frozenset()).describe() == "x, 1 cores (none of AVX2 / AVX-512 / VNNI / BF16 / AMX)"
    )


def test_this_machine_is_described():
    info = cpu_info()
    assert info.cores >= 1 and info.flags <= FLAGS.keys() and info.describe().startswith(info.model)
