"""Training on several machines: TensorFlow's MultiWorkerMirroredStrategy, set up from ``--workers``.

Every machine runs the same ``cocoseg train`` command with the same ``--workers HOST:PORT,...``
list and its own ``--worker-index`` (or a ``TF_CONFIG`` variable, as TensorFlow documents it).
Worker 0 is the chief: it owns the run folder (status, events, checkpoints, TensorBoard logs,
history) in the shared workspace, and its cancel and heartbeat are the run's. The others write
the same files into a temporary folder, removed at the end: saving can involve collective
operations, so every worker saves, but only the chief's copy is kept.

Nothing here imports TensorFlow: the checks run before a process starts the strategy, so a bad
list is refused before anything starts, and a worker probes the chief's port first, so one that
cannot reach it fails with the address it tried instead of waiting for ever.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cocoseg.errors import ConfigError

# How long the workers wait for each other, and how long one all-reduce may take before the run fails
# (a worker died, the network broke; TensorFlow's own heartbeat usually notices a dead worker within
# ~10 s): ``Settings.cluster_connect_seconds`` and ``cluster_step_seconds`` (COCOSEG_CLUSTER_*).


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The workers' addresses (``host:port``, chief first) and this process's index among them."""

    workers: tuple[str, ...]
    index: int

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def chief(self) -> str:
        return self.workers[0]

    def tf_config(self) -> str:
        """The ``TF_CONFIG`` value TensorFlow's cluster resolver reads."""
        return json.dumps(
            {"cluster": {"worker": list(self.workers)}, "task": {"type": "worker", "index": self.index}}
        )

    def to_dict(self) -> dict:
        return {"workers": list(self.workers), "index": self.index}


def _check_address(address: str) -> str:
    host, separator, port = address.strip().rpartition(":")
    if not separator or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError("workers", f"{address!r} is not HOST:PORT (a port from 1 to 65535)")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if (
            not all(part and len(part) <= 63 for part in host.split("."))
            or not host.replace("-", "").replace(".", "").isalnum()
        ):
            raise ConfigError(
                "workers", f"{host!r} in {address!r} is not a host name or IP address"
            ) from None
    return f"{host}:{int(port)}" if ":" not in host else f"[{host}]:{int(port)}"


def parse_cluster(workers: str | None, index: int | None) -> Cluster | None:
    """``--workers`` and ``--worker-index`` checked: None for one machine.

    Raises:
        ConfigError: a bad HOST:PORT, a duplicate, fewer than two workers, or an index out of range
            (or given without ``--workers``, or missing with it).
    """
    if not workers:
        if index is not None:
            raise ConfigError("worker_index", "needs --workers (the list of every worker's HOST:PORT)")
        return None
    addresses = [_check_address(item) for item in workers.split(",") if item.strip()]
    duplicates = sorted({address for address in addresses if addresses.count(address) > 1})
    if duplicates:
        raise ConfigError(
            "workers", f"{', '.join(duplicates)} is listed twice; every worker needs its own port"
        )
    if len(addresses) < 2:
        raise ConfigError("workers", "list at least two workers (one machine trains without --workers)")
    if index is None:
        raise ConfigError(
            "worker_index", "say which worker this is: --worker-index 0 on the chief, 1, 2 ... on the others"
        )
    if not 0 <= index < len(addresses):
        raise ConfigError(
            "worker_index",
            f"must be from 0 to {len(addresses) - 1} for {len(addresses)} workers, got {index}",
        )
    return Cluster(tuple(addresses), index)


def cluster_from_environment() -> Cluster | None:
    """The cluster a documented ``TF_CONFIG`` describes (worker tasks only), or None without one."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        workers, task = config["cluster"]["worker"], config["task"]
        if task.get("type") != "worker":
            raise ConfigError("TF_CONFIG", "cocoseg runs worker tasks only (chief = worker 0)")
        return parse_cluster(",".join(workers), int(task["index"]))
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            "TF_CONFIG", 'must be {"cluster": {"worker": [...]}, "task": {"type": "worker", "index": I}}'
        ) from None


def wait_for_chief(cluster: Cluster, timeout: float) -> None:
    """Return once the chief's port answers; a worker other than the chief calls this before TensorFlow
    starts its cluster (which would otherwise wait without end).

    Raises:
        ConfigError: the chief did not answer within ``timeout``, naming its address.
    """
    host, _, port = cluster.chief.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise ConfigError(
                    "workers",
                    f"worker {cluster.index} could not reach the chief at {cluster.chief} within "
                    f"{timeout:.0f} s ({error.strerror or error}); start the chief (--worker-index 0) "
                    "first, and check the address and the firewall",
                ) from None
            time.sleep(1)


def fingerprint(settings: dict) -> int:
    """A 31-bit digest of the training settings: the workers compare theirs before the first step, since
    workers started with different settings would fail later with a shape error or hang."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF


def watch_formation(seconds: float, message: str, run_folder: Path | None) -> subprocess.Popen:
    """A child process that, unless ended first, records ``message`` as the run's failure (in
    ``run_folder``, the chief's) and kills this process after ``seconds``.

    TensorFlow holds the GIL while it waits for the cluster to form, so no thread of this process
    could give up; ``formed`` ends the watch.
    """
    code = "from cocoseg.pipeline.training.cluster import _give_up; _give_up()"
    arguments = [str(os.getpid()), str(seconds), message, str(run_folder or "")]
    return subprocess.Popen([sys.executable, "-c", code, *arguments], stdin=subprocess.DEVNULL)


def formed(watch: subprocess.Popen) -> None:
    watch.kill()
    watch.wait()


def _give_up() -> None:
    """The watch's body: ``argv`` is (pid, seconds, message, run folder or "")."""
    pid, seconds, message, folder = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            os.kill(pid, 0)
        except OSError:  # the watched process ended by itself
            return
    if folder:
        from cocoseg.pipeline.jobs.registry import RunFolder

        run = RunFolder(Path(folder))
        run.set_status("failed", message=message)
        run.append_event({"type": "failed", "message": message})
    sys.stderr.write(f"cocoseg: error: {message}\n")
    os.kill(pid, signal.SIGKILL)
