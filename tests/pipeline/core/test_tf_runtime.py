"""TensorFlow's import (``cocoseg.pipeline.core.tf_runtime``): what it sets up before TensorFlow starts."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks.server_process import clean_environment
from cocoseg.pipeline.core.tf_runtime import share_gpu_memory
from tests.conftest import PROJECT_ROOT

GROWTH = "TF_FORCE_GPU_ALLOW_GROWTH"


def test_tensorflow_starts_with_gpu_memory_growth_so_other_processes_keep_theirs():
    """Without growth TensorFlow takes nearly all of a GPU's memory at start, and a second job or the
    web server's ONNX Runtime CUDA session then finds none. A fresh interpreter, as a job is."""
    environment = {key: value for key, value in clean_environment().items() if key != GROWTH}
    script = (
        "import os; from cocoseg.pipeline.core.tf_runtime import tensorflow; tensorflow(); "
        f"print(os.environ.get({GROWTH!r}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "true"


def test_a_growth_setting_from_the_user_is_kept(monkeypatch):
    monkeypatch.setenv(GROWTH, "false")  # a machine given to one training, say
    share_gpu_memory()
    assert os.environ[GROWTH] == "false"
    monkeypatch.delenv(GROWTH)
    share_gpu_memory()
    assert os.environ[GROWTH] == "true"
