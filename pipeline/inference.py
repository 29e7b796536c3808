"""ONNX Runtime: which execution providers actually work on this machine.

``onnxruntime.get_available_providers()`` lists what the wheel was *built* with; the
GPU wheel lists CUDA even on a machine without a GPU or driver. The only honest
answer is to create a session and look at ``get_providers()``, which is what
``usable_providers`` does, once per process, on a one-node model built in memory,
with ORT's logging turned down so a missing CUDA library is not printed as a red
error at every start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import warnings

logger = logging.getLogger(__name__)

PREFERRED_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_FATAL_ONLY = 4
PROVIDER_LABELS = {"TensorrtExecutionProvider": "TensorRT", "CUDAExecutionProvider": "CUDA", "CPUExecutionProvider": "CPU"}


def provider_label(provider: str) -> str:
    """Short display name of an execution provider (``CUDAExecutionProvider`` -> ``CUDA``)."""
    return PROVIDER_LABELS.get(provider, provider.removesuffix("ExecutionProvider"))


@dataclasses.dataclass(frozen=True)
class ProviderReport:
    """What ONNX Runtime can run on here.

    Attributes:
        version: onnxruntime version.
        built: providers the installed wheel was built with.
        usable: providers that a real session accepted, in preference order.
        device: ``GPU`` when CUDA or TensorRT is usable, else ``CPU``.
    """

    version: str
    built: tuple[str, ...]
    usable: tuple[str, ...]

    @property
    def device(self) -> str:
        return "GPU" if any(name != "CPUExecutionProvider" for name in self.usable) else "CPU"


def _probe_model() -> bytes:
    """A one-node (Identity) ONNX model, serialised."""
    import onnx
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    result = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [value], [result])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _session_accepts(onnxruntime, model: bytes, provider: str) -> bool:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = _FATAL_ONLY
    chatter = io.StringIO()  # ORT's Python wrapper print()s its fallback notice
    try:
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            session = onnxruntime.InferenceSession(model, sess_options=options, providers=[provider])
    except Exception as error:  # noqa: BLE001 - any provider failure means "not usable"
        logger.info("provider %s not usable: %s", provider, str(error).splitlines()[0] if str(error) else error)
        return False
    usable = provider in session.get_providers()
    if not usable:
        logger.info("provider %s not usable: %s", provider, " ".join(chatter.getvalue().split())[:300])
    return usable


@functools.lru_cache(maxsize=1)
def usable_providers() -> ProviderReport:
    """Probe each built provider with a real session, once per process."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(_FATAL_ONLY)
    built = tuple(onnxruntime.get_available_providers())
    model = _probe_model()
    usable = tuple(name for name in PREFERRED_ORDER if name in built and _session_accepts(onnxruntime, model, name))
    report = ProviderReport(onnxruntime.__version__, built, usable)
    logger.info("onnxruntime %s: usable providers %s", report.version, ", ".join(report.usable))
    return report
