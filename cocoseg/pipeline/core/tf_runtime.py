"""Import TensorFlow quietly, and only where it is needed.

TensorFlow costs seconds and hundreds of MB to import, so pipeline modules that
use it call ``tensorflow()`` inside their functions; the web process never does.
TensorFlow 2.21 prints several lines to the C-level stderr while importing (CUDA
stubs, oneDNN notices, a failed ``cuInit`` on machines without a GPU), before its
log-level settings take effect; those lines are dropped during the import unless
``COCOSEG_TF_VERBOSE=1``. Python exceptions still propagate.

``COCOSEG_CPU_REPLICAS=N`` splits the CPU into N logical devices at import, before anything
starts TensorFlow's runtime, so training runs ``MirroredStrategy`` with N replicas on one CPU:
how several-device training is tested on a machine without several GPUs.

On a GPU, TensorFlow's runtime takes nearly all of each GPU's memory when it starts, unless
memory growth is on. cocoseg shares one GPU between processes: a training job, an export or
``doctor`` job beside it, and the web server's ONNX Runtime CUDA sessions (Segment, Annotate's
model regions). So ``tensorflow()`` turns growth on (``TF_FORCE_GPU_ALLOW_GROWTH=true``) unless
the environment already says otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys


@contextlib.contextmanager
def _quiet_native_stderr():
    if os.environ.get("COCOSEG_TF_VERBOSE") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.lru_cache(maxsize=1)
def tensorflow():
    """The ``tensorflow`` module, imported once with its start-up chatter silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    share_gpu_memory()
    with _quiet_native_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # device discovery logs here too
    tf.get_logger().setLevel(logging.ERROR)
    _split_cpu(tf, os.environ.get("COCOSEG_CPU_REPLICAS", ""))
    return tf


def share_gpu_memory() -> None:
    """Memory growth for TensorFlow's GPUs (read when its runtime starts), unless the user set it."""
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


def _split_cpu(tf, replicas: str) -> None:
    """N logical CPU devices (``COCOSEG_CPU_REPLICAS``); nothing for an empty value or 1."""
    if not replicas:
        return
    if not replicas.isdigit() or not 1 <= int(replicas) <= 64:
        raise ValueError(f"COCOSEG_CPU_REPLICAS must be a number from 1 to 64, got {replicas!r}")
    if int(replicas) > 1:
        (cpu, *_others) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * int(replicas)
        )
