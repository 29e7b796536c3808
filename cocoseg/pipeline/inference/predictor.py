"""ONNX Runtime: provider choice, one cached session per model file, pre/post-processing.

``onnxruntime.get_available_providers()`` lists what the wheel was *built* with; the
GPU wheel lists CUDA even on a machine without a GPU or driver. The only honest
answer is to create a session and look at ``get_providers()``, which is what
``usable_providers`` does, once per process, on a one-node model built in memory,
with ORT's logging turned down so a missing CUDA library is not printed as a red
error at every start.

Sessions are created lazily (never at import, so never before a worker fork), one per
model file per process, after the file's SHA-256 matched its card. ``Predictor``
pre-processes exactly like preparation did (``geometry.resize_image`` with the card's
size and resize mode), validates the tensor before ``session.run``, and maps masks back
to the original image size with nearest-neighbour.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import io
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cocoseg.pipeline.core.cache import sha256_of
from cocoseg.pipeline.core.keyed_locks import KeyedLocks
from cocoseg.pipeline.data.geometry import resize_image, undo_mask
from cocoseg.pipeline.inference.model_store import ModelEntry, ModelError
from cocoseg.pipeline.inference.onnx_graph import INPUT_NAME, MASK_OUTPUT, PROBABILITIES_OUTPUT
from cocoseg.pipeline.inference.uncertainty import pixel_entropy

logger = logging.getLogger(__name__)

PREFERRED_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_FATAL_ONLY = 4
PROVIDER_LABELS = {
    "TensorrtExecutionProvider": "TensorRT",
    "CUDAExecutionProvider": "CUDA",
    "CPUExecutionProvider": "CPU",
}


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
        reasons: why each built provider that is not usable was refused (ORT's first line).
        cuda_build: the CUDA version the wheel was built for ("13.0"); empty for a CPU-only build.
        device: ``GPU`` when CUDA or TensorRT is usable, else ``CPU``.
    """

    version: str
    built: tuple[str, ...]
    usable: tuple[str, ...]
    reasons: tuple[tuple[str, str], ...] = ()
    cuda_build: str = ""

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


def _one_line(text: str) -> str:
    """ORT's error text without its banner, C++ location and fallback notice: what to do, when it says."""
    text = " ".join(re.sub(r"\*+( EP Error \*+)?", " ", text).split())
    located = re.match(r"EP Error \S+:\d+ .*?\) (.*)", text)
    text = located.group(1) if located else text
    # "... when using ['TensorrtExecutionProvider'] Falling back to ['CPUExecutionProvider'] and retrying."
    return re.sub(r"\s*when using \[.*?\]\s*Falling back to \[.*?\] and retrying\.?$", "", text)[:300]


def _built_for_cuda() -> str:
    """The CUDA version this onnxruntime wheel was built for; empty for a CPU-only build."""
    try:
        from onnxruntime.capi.build_and_package_info import cuda_version
    except ImportError:
        return ""
    return str(cuda_version or "")


def _session_refusal(onnxruntime, model: bytes, provider: str) -> str | None:
    """None when a real session runs on ``provider``; else why not, in one line."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = _FATAL_ONLY
    chatter = io.StringIO()  # ORT's Python wrapper print()s its fallback notice
    try:
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings() as caught:
            warnings.simplefilter("always")
            session = onnxruntime.InferenceSession(model, sess_options=options, providers=[provider])
    except Exception as error:  # noqa: BLE001 - any provider failure means "not usable"
        reason = _one_line(str(error)) or type(error).__name__
        logger.info("provider %s not usable: %s", provider, reason)
        return reason
    if provider in session.get_providers():
        return None
    said = _one_line(chatter.getvalue() or " ".join(str(item.message) for item in caught or ()))
    reason = said or f"the session fell back to {', '.join(session.get_providers())}"
    logger.info("provider %s not usable: %s", provider, reason)
    return reason


@functools.lru_cache(maxsize=1)
def usable_providers() -> ProviderReport:
    """Probe each built provider with a real session, once per process."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(_FATAL_ONLY)
    built = tuple(onnxruntime.get_available_providers())
    _preload_gpu_libraries(onnxruntime, built)
    model = _probe_model()
    refusals = {name: _session_refusal(onnxruntime, model, name) for name in PREFERRED_ORDER if name in built}
    usable = tuple(name for name, refusal in refusals.items() if refusal is None)
    reasons = tuple((name, refusal) for name, refusal in refusals.items() if refusal is not None)
    report = ProviderReport(onnxruntime.__version__, built, usable, reasons, _built_for_cuda())
    logger.info("onnxruntime %s: usable providers %s", report.version, ", ".join(report.usable))
    return report


def _preload_gpu_libraries(onnxruntime, built: tuple[str, ...]) -> None:
    """Load CUDA/cuDNN from pip's ``nvidia`` packages, where they are installed.

    onnxruntime-gpu does not find those wheels' libraries by itself (they are not on the
    loader's path); ``preload_dlls`` loads them. Without the packages (system CUDA, or no
    GPU at all) nothing is tried, so a CPU machine logs nothing.
    """
    if not any(name in built for name in ("CUDAExecutionProvider", "TensorrtExecutionProvider")):
        return
    if not hasattr(onnxruntime, "preload_dlls") or importlib.util.find_spec("nvidia") is None:
        return
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            onnxruntime.preload_dlls()
    except Exception as error:  # noqa: BLE001 - a failed preload only means CUDA may not be usable
        logger.info("could not preload CUDA libraries from the nvidia packages: %s", error)


# --- sessions ------------------------------------------------------------------------


class InferenceInputError(ValueError):
    """A tensor that does not fit the model's input, caught before ``session.run``."""


def thread_count() -> int:
    """CPU cores this process may use (affinity-aware, so containers are respected)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def session_options():
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: no per-node placement chatter
    options.intra_op_num_threads = thread_count()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def choose_providers(variant: str = "fp32") -> list[str]:
    """Usable providers in preference order; INT8 QDQ models are CPU-first (that is what they are for)."""
    usable = list(usable_providers().usable)
    if variant == "int8":
        return ["CPUExecutionProvider"]
    return usable


_sessions: dict[tuple, object] = {}
_sessions_lock = threading.Lock()
_opening = KeyedLocks()  # one lock per model file being opened
SESSION_CACHE_SIZE = 8


def _fingerprint(path: Path) -> tuple:
    status = path.stat()
    return (str(path.resolve()), status.st_ino, status.st_size, status.st_mtime_ns)


def load_session(path: Path, expected_sha256: str | None, providers: Sequence[str]):
    """The cached ``InferenceSession`` for a model file, created on first use.

    Raises:
        ModelError: missing file, hash mismatch (tampered or half-copied), or a file
            ONNX Runtime refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path.name} is missing; export or import the model again")
    key = (_fingerprint(path), tuple(providers))
    with _sessions_lock:
        session = _sessions.get(key)
        if session is not None:
            return session
    # Opened outside the cache's lock: hashing and opening a model takes seconds (a TensorRT engine
    # minutes), and every other request, for models already open, must not wait on it meanwhile.
    with _opening.lock(key):
        with _sessions_lock:
            session = _sessions.get(key)  # another request built it while this one waited
        if session is not None:
            return session
        # A failure keeps the lock in place, so the requests waiting and those still coming try one at a time.
        session = _open_session(path, expected_sha256, providers)
        with _sessions_lock:
            if len(_sessions) >= SESSION_CACHE_SIZE:
                _sessions.pop(next(iter(_sessions)))
            _sessions[key] = session
        _opening.discard(key)  # after the insertion: a request from now on finds the session first
        return session


def _open_session(path: Path, expected_sha256: str | None, providers: Sequence[str]):
    """Check a model file against its card and open it in ONNX Runtime (``load_session``'s slow part)."""
    import onnxruntime

    if expected_sha256 is not None and sha256_of(path) != expected_sha256:
        raise ModelError(
            f"{path.parent.name}/{path.name} does not match the hash in its card (changed or damaged); export or import it again"
        )
    _check_external_data(path)
    try:
        session = onnxruntime.InferenceSession(
            str(path), sess_options=session_options(), providers=_with_settings(providers, path)
        )
    except Exception as error:  # noqa: BLE001 - ORT raises several unrelated types
        raise ModelError(
            f"{path.parent.name}/{path.name} is not a model ONNX Runtime can load: {str(error).splitlines()[0][:200]}"
        ) from None
    logger.info("loaded %s on %s", path, ", ".join(session.get_providers()))
    return session


def _with_settings(providers: Sequence[str], path: Path) -> list:
    """TensorRT builds an engine per model (minutes): cache it beside the model file."""
    return [
        (
            name,
            {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(path.parent / ".tensorrt-cache")},
        )
        if name == "TensorrtExecutionProvider"
        else name
        for name in providers
    ]


def _check_external_data(path: Path) -> None:
    """Refuse a model whose tensors read files outside its folder (before ORT opens them)."""
    import onnx

    from cocoseg.pipeline.inference.onnx_graph import GraphError, check_external_data

    try:
        check_external_data(onnx.load(str(path), load_external_data=False), path.parent)
    except GraphError as error:
        raise ModelError(f"{path.parent.name}/{path.name}: {error}") from None
    except Exception as error:  # noqa: BLE001 - a protobuf that does not parse
        raise ModelError(
            f"{path.parent.name}/{path.name} is not a model ONNX Runtime can load: {str(error).splitlines()[0][:200]}"
        ) from None


_inherited_sessions: list[dict] = []


def _forget_sessions_after_fork() -> None:
    """A forked child (a background job) must not use the parent's sessions: ORT's
    thread pools do not survive ``fork``. It starts with an empty cache and a fresh lock.

    The inherited sessions are kept referenced, never destroyed: their destructors wait
    on the parent's worker threads, which do not exist in the child (a destructor run
    here hung a background evaluation forever).
    """
    global _sessions, _sessions_lock
    _inherited_sessions.append(_sessions)
    _sessions = {}
    _sessions_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_sessions_after_fork)


def cached_session_count() -> int:
    return len(_sessions)


def clear_sessions() -> None:
    with _sessions_lock:
        _sessions.clear()


# --- prediction ----------------------------------------------------------------------

ENTROPY_LEVELS = 254  # an uncertainty map's top level: 255 is IGNORE_INDEX, where nothing was predicted


@dataclasses.dataclass
class Prediction:
    """One image's result: the mask at the image's own size and how it was made."""

    mask: np.ndarray
    seconds: float
    provider: str


class Predictor:
    """Runs one model or ensemble variant on images of any size.

    Args:
        entry: a published model or ensemble (``model_store.get_entry``).
        variant: ``fp32``, ``int8`` or ``fp16``.
    """

    def __init__(self, entry: ModelEntry, variant: str = "fp32") -> None:
        self.entry = entry
        self.variant = variant
        self.size = entry.size
        self.resize = entry.resize
        self.num_classes = len(entry.card["label_map"]["classes"])
        path, digest = entry.file_of(variant)
        self.session = load_session(path, digest, choose_providers(variant))

    @property
    def provider(self) -> str:
        return provider_label(self.session.get_providers()[0])

    def check_batch(self, batch: np.ndarray) -> None:
        """Raise ``InferenceInputError`` unless ``batch`` is uint8 (N, size, size, 3)."""
        expected = f"uint8 (batch, {self.size}, {self.size}, 3)"
        if not isinstance(batch, np.ndarray):
            raise InferenceInputError(f"input must be a numpy array {expected}, got {type(batch).__name__}")
        if batch.ndim != 4:
            raise InferenceInputError(f"input must have 4 dimensions {expected}, got shape {batch.shape}")
        if batch.dtype != np.uint8:
            raise InferenceInputError(f"input must be {expected}, got dtype {batch.dtype}")
        if batch.shape[1:] != (self.size, self.size, 3) or batch.shape[0] < 1:
            raise InferenceInputError(f"input must be {expected}, got shape {batch.shape}")

    def run_batch(self, batch: np.ndarray, probabilities: bool = False):
        """Masks (N, size, size) uint8, and probabilities (N, size, size, C) when asked."""
        self.check_batch(batch)
        names = [MASK_OUTPUT, PROBABILITIES_OUTPUT] if probabilities else [MASK_OUTPUT]
        outputs = self.session.run(names, {INPUT_NAME: batch})
        return (outputs[0], outputs[1]) if probabilities else outputs[0]

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """An RGB uint8 image of any size -> the model's square input (as in preparation)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 1:
            raise InferenceInputError(
                f"image must be RGB uint8 (height, width, 3), got {image.dtype} {image.shape}"
            )
        return resize_image(image, self.size, self.resize)

    def predict(self, image: np.ndarray) -> Prediction:
        """Segment one image; the mask comes back at the image's own size."""
        return self.predict_many([image])[0]

    def predict_with_uncertainty(self, image: np.ndarray) -> tuple[Prediction, np.ndarray]:
        """One image's prediction and how unsure the model is per pixel, both at the image's own size.

        The map is uint8: pixel entropy over log(C) times ``ENTROPY_LEVELS`` (0 sure, 254 uniform),
        and ``IGNORE_INDEX`` (255) where the model's square did not cover the image.
        """
        started = time.perf_counter()
        masks, probabilities = self.run_batch(self.prepare(image)[None], probabilities=True)
        height, width = image.shape[:2]
        mask = undo_mask(masks[0], width, height, self.resize)
        levels = np.round(pixel_entropy(probabilities[0]) * ENTROPY_LEVELS).astype(np.uint8)
        uncertainty = undo_mask(levels, width, height, self.resize)
        return Prediction(mask, time.perf_counter() - started, self.provider), uncertainty

    def predict_many(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        """Segment several images in one session call (squares batched together)."""
        started = time.perf_counter()
        batch = np.stack([self.prepare(image) for image in images])
        masks = self.run_batch(batch)
        results = [
            undo_mask(mask, image.shape[1], image.shape[0], self.resize) for mask, image in zip(masks, images)
        ]
        seconds = (time.perf_counter() - started) / len(images)
        return [Prediction(mask, seconds, self.provider) for mask in results]
