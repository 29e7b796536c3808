"""Which numeric precision a run trains in: the choice, its reason and its refusals (no TensorFlow).

``auto`` picks what the device computes fastest without hurting accuracy:

- ``mixed_float16`` on a GPU with tensor cores (compute capability 7.0 or newer): float16 matrix
  units, with dynamic loss scaling (Keras adds it in ``compile``) so small gradients do not vanish;
- ``mixed_bfloat16`` on a CPU with AVX-512 BF16 or AMX BF16 (oneDNN runs the convolutions on them;
  bfloat16 keeps float32's exponent range, so no loss scaling is needed);
- ``float32`` otherwise (a GPU without tensor cores, or a CPU that would only emulate bfloat16).

In the mixed policies the variables stay float32 and only the computation is cast; the logits layer
computes in float32, and every loss casts to float32, so the softmax and the loss are float32.

``choose_precision`` is pure: the job process asks TensorFlow for the GPUs' compute capabilities and
``core.devices.cpu_info`` for the CPU's flags, then calls it; ``cocoseg doctor`` can call it with
the facts it gathered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from cocoseg.errors import ConfigError

AUTO = "auto"
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
PRECISIONS = (AUTO, *POLICIES)
TENSOR_CORES = (7, 0)  # Volta: the first compute capability with float16 tensor cores


@dataclasses.dataclass(frozen=True)
class Precision:
    """The Keras dtype policy a run uses and why (one line, recorded in its config and card)."""

    policy: str
    reason: str


def compute_capability(value) -> tuple[int, int] | None:
    """``(8, 0)``, ``"8.0"`` or ``"8"`` as ``(8, 0)``; None when unknown or unreadable."""
    if value is None or value == "":
        return None
    try:
        parts = [int(part) for part in (value.split(".") if isinstance(value, str) else value)]
    except (TypeError, ValueError):
        return None
    if not parts:
        return None
    return (parts[0], parts[1] if len(parts) > 1 else 0)


def _capability_text(capability: tuple[int, int] | None) -> str:
    return "unknown" if capability is None else f"{capability[0]}.{capability[1]}"


def choose_precision(
    requested: str,
    gpu_capabilities: Sequence,
    cpu_bfloat16: bool,
    cpu_name: str = "this CPU",
) -> Precision:
    """The policy for ``requested`` on a machine with these GPUs (one entry per visible GPU, its
    compute capability or None) and a CPU with or without hardware bfloat16.

    Training runs on the GPUs when there are any, so the CPU's flags count only without one.

    Raises:
        ConfigError: ``precision``: mixed_float16 with no GPU, or mixed_bfloat16 with no GPU on a CPU
            without bfloat16 arithmetic (the message names the device); ``auto`` never fails.
    """
    if requested not in PRECISIONS:
        raise ConfigError("precision", f"must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    capabilities = [compute_capability(value) for value in gpu_capabilities]
    gpus = f"{len(capabilities)} GPU" + ("s" if len(capabilities) > 1 else "")
    known = [capability for capability in capabilities if capability is not None]
    oldest = min(known) if known else None
    tensor_cores = bool(capabilities) and len(known) == len(capabilities) and oldest >= TENSOR_CORES
    if requested == AUTO:
        if capabilities and tensor_cores:
            return Precision(
                "mixed_float16",
                f"auto: {gpus} with tensor cores (compute capability {_capability_text(oldest)})",
            )
        if capabilities:
            return Precision(
                "float32",
                f"auto: {gpus} without tensor cores (compute capability {_capability_text(oldest)}, "
                "float16 needs 7.0)",
            )
        if cpu_bfloat16:
            return Precision(
                "mixed_bfloat16", f"auto: no GPU; {cpu_name} has bfloat16 arithmetic (AVX-512 BF16/AMX)"
            )
        return Precision("float32", f"auto: no GPU, and {cpu_name} has no bfloat16 arithmetic")
    if requested == "mixed_float16" and not capabilities:
        raise ConfigError(
            "precision",
            f"mixed_float16 needs a GPU, and none is visible (training would run on {cpu_name}); "
            "choose auto or float32",
        )
    if requested == "mixed_bfloat16" and not capabilities and not cpu_bfloat16:
        raise ConfigError(
            "precision",
            f"mixed_bfloat16 needs a GPU or a CPU with AVX-512 BF16 or AMX; {cpu_name} has neither "
            "and no GPU is visible; choose auto or float32",
        )
    where = gpus if capabilities else cpu_name
    return Precision(requested, f"requested ({where})")


def from_legacy(payload: dict) -> dict:
    """A saved run config with the old ``mixed_precision`` flag, in today's terms: true was float16
    on a GPU (``mixed_float16``), false was ``float32``. A config that names a precision keeps it."""
    if "mixed_precision" not in payload:
        return payload
    legacy = payload["mixed_precision"]
    payload = {key: value for key, value in payload.items() if key != "mixed_precision"}
    payload.setdefault("precision", "mixed_float16" if legacy is True else "float32")
    return payload
