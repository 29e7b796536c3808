"""Real Redis and real Celery worker processes for the tests of Celery mode (no fakes).

Plain helpers, usable from any test package; the session fixtures built on them live in
``tests/e2e/celery_conftest.py``.

- ``redis_binary()``: the ``redis-server`` to run: ``$REDIS_SERVER`` when set (a wrong
  value is a failure), else the one on PATH. ``require_redis_binary()`` skips the calling
  test with a visible reason when there is none (``make test`` installs it first).
- ``start_redis(folder)`` / ``RedisProcess.stop()``: a private, diskless server on a free
  loopback port; ``RedisProcess.url(db)`` gives the broker URL of one database.
- ``start_worker(home, broker_url, log_path)`` / ``WorkerProcess.stop()``: ``cocoseg worker``
  exactly as a user starts it, waited for until Celery logs that it is ready; stopping it
  leaves no process behind (pool processes included).
- ``import_tiny_model(workspace, name)``: a hand-built ONNX model (two convolutions,
  Pascal VOC's 21 classes) imported like a user's own model, so that an evaluation job
  has something to run without training anything.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.server_process import clean_environment, free_port, read_log, stop_process

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REDIS_START_TIMEOUT_S = 60  # a hang guard: redis-server answers in milliseconds, a loaded machine in seconds
WORKER_START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 15
WORKER_READY_TEXT = " ready."
TASK_PREFIX = "background_callback_"


def redis_binary() -> str | None:
    """``$REDIS_SERVER`` if set, else ``redis-server`` on PATH, else None.

    Raises:
        RuntimeError: REDIS_SERVER names something that is not an executable file.
    """
    configured = os.environ.get("REDIS_SERVER", "").strip()
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            raise RuntimeError(
                f"REDIS_SERVER={configured} is not an executable file; unset it or point it at redis-server"
            )
        return configured
    return shutil.which("redis-server")


def require_redis_binary() -> str:
    """The redis-server binary, or skip the test saying how to get one (never a silent skip)."""
    try:
        binary = redis_binary()
    except RuntimeError as error:
        pytest.fail(str(error))
    if binary is None:
        pytest.skip(
            "Celery-mode tests need redis-server, which is not on PATH: "
            "install it (`make redis` does, as root or "
            "with sudo: apt-get install redis-server) or set REDIS_SERVER=/path/to/redis-server"
        )
    return binary


@dataclasses.dataclass
class RedisProcess:
    """A running ``redis-server`` of this test session."""

    port: int
    process: subprocess.Popen
    log_path: Path

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def client(self, database: int = 0):
        import redis

        return redis.Redis.from_url(self.url(database), socket_connect_timeout=2, socket_timeout=5)

    def log(self) -> str:
        return read_log(self.log_path)

    def stop(self) -> None:
        stop_process(self.process, timeout=STOP_TIMEOUT_S)


def start_redis(folder: Path, binary: str | None = None) -> RedisProcess:
    """Start a diskless redis-server on a free loopback port and wait for its PONG."""
    import redis

    binary = binary or require_redis_binary()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = folder / "redis.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
            ],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    running = RedisProcess(port=port, process=process, log_path=log_path)
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while True:
        try:
            with running.client() as client:
                if client.ping():
                    return running
        except redis.RedisError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            raise RuntimeError(
                f"redis-server did not answer on port {port} (exit code {process.returncode}):\n"
                f"{running.log()[-3000:]}"
            )
        time.sleep(0.1)


@dataclasses.dataclass
class WorkerProcess:
    """A running ``cocoseg worker``: its main process (the Celery main process) and log."""

    home: Path
    broker_url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return read_log(self.log_path)

    def pool_pids(self) -> list[int]:
        """The pids of the prefork pool processes that run the jobs."""
        import psutil

        return sorted(child.pid for child in psutil.Process(self.process.pid).children())

    def task_lines(self, since: int = 0) -> list[str]:
        """Celery's log lines about background-callback tasks, from character ``since`` of the log."""
        return [line for line in self.log()[since:].splitlines() if TASK_PREFIX in line]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop_process(self.process, sig, STOP_TIMEOUT_S)


def start_worker(
    home: Path,
    broker_url: str,
    log_path: Path,
    *options: str,
    timeout: float = WORKER_START_TIMEOUT_S,
    settings: dict[str, str] | None = None,
) -> WorkerProcess:
    """Start ``cocoseg worker`` for ``home`` and ``broker_url`` (plus ``settings``, COCOSEG_* variables for it
    and its jobs); returns once Celery logs that it is ready."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cocoseg", "worker", "--loglevel", "info", *options],
            cwd=PROJECT_ROOT,
            env=clean_environment(COCOSEG_HOME=str(home), COCOSEG_BROKER_URL=broker_url, **(settings or {})),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    worker = WorkerProcess(home=home, broker_url=broker_url, process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    while WORKER_READY_TEXT not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(
                f"cocoseg worker did not become ready (exit code {process.returncode}):\n"
                f"{worker.log()[-5000:]}"
            )
        time.sleep(0.2)
    return worker


TINY_MODEL_SIZE = 160
TINY_MODEL_CHANNELS = 24


def import_tiny_model(workspace, name: str, size: int = TINY_MODEL_SIZE):
    """Import a two-convolution ONNX model (NCHW float input, VOC logits) under ``name``; its ModelEntry.

    It predicts nonsense, but it predicts it through the same import, inference and
    evaluation code as any model, and slowly enough (tens of ms per image) for an
    evaluation of the demo split to take a few seconds with visible progress.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from cocoseg.pipeline.inference.model_import import import_model

    generator = np.random.default_rng(11)
    hidden = numpy_helper.from_array(
        generator.normal(0, 0.3, (TINY_MODEL_CHANNELS, 3, 3, 3)).astype(np.float32), "hidden_weight"
    )
    scores = numpy_helper.from_array(
        generator.normal(0, 0.3, (21, TINY_MODEL_CHANNELS, 3, 3)).astype(np.float32), "score_weight"
    )
    nodes = [
        helper.make_node("Conv", ["pixels", "hidden_weight"], ["hidden"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["hidden"], ["hidden_relu"]),
        helper.make_node("Conv", ["hidden_relu", "score_weight"], ["scores"], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_two_conv",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 21, size, size])],
        [hidden, scores],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder = workspace.root / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    card = {
        "labels": "voc21",
        "dataset": "demo",
        "input": {"size": size, "layout": "NCHW", "dtype": "float32", "mean": [128.0] * 3, "std": [64.0] * 3},
        "output": {"kind": "logits", "layout": "NCHW"},
    }
    return import_model(workspace, path, card, name=name)
