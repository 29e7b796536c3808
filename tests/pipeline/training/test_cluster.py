"""Several machines: the --workers list checked before anything starts, TF_CONFIG, the chief probe."""

from __future__ import annotations

import json
import socket

import pytest

from benchmarks.server_process import free_port
from cocoseg.errors import ConfigError
from cocoseg.pipeline.training.cluster import (
    Cluster,
    cluster_from_environment,
    fingerprint,
    parse_cluster,
    wait_for_chief,
)


def test_a_good_list_gives_the_cluster_and_tf_config():
    cluster = parse_cluster("10.0.0.1:2222, gpu-box.local:2223,[::1]:2224", 1)
    assert cluster.workers == ("10.0.0.1:2222", "gpu-box.local:2223", "[::1]:2224")
    assert not cluster.is_chief and cluster.chief == "10.0.0.1:2222"
    assert json.loads(cluster.tf_config()) == {
        "cluster": {"worker": ["10.0.0.1:2222", "gpu-box.local:2223", "[::1]:2224"]},
        "task": {"type": "worker", "index": 1},
    }
    assert parse_cluster(None, None) is None


@pytest.mark.parametrize(
    ("workers", "index", "message"),
    [
        ("10.0.0.1:2222,10.0.0.2", 0, "is not HOST:PORT"),
        ("10.0.0.1:2222,10.0.0.2:99999", 0, "is not HOST:PORT"),
        ("10.0.0.1:2222,bad host!:2223", 0, "is not a host name or IP address"),
        ("a:2222,a:2222", 0, "a:2222 is listed twice"),
        ("a:2222", 0, "at least two workers"),
        ("a:2222,b:2222", 2, "must be from 0 to 1 for 2 workers, got 2"),
        ("a:2222,b:2222", -1, "must be from 0 to 1"),
        ("a:2222,b:2222", None, "--worker-index 0 on the chief"),
        (None, 1, "needs --workers"),
    ],
)
def test_a_bad_list_is_refused_before_anything_starts(workers, index, message):
    with pytest.raises(ConfigError, match=message):
        parse_cluster(workers, index)


def test_tf_config_as_tensorflow_documents_it(monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}),
    )
    assert cluster_from_environment() == Cluster(("a:1", "b:2"), 1)
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(ConfigError, match="must be"):
        cluster_from_environment()
    monkeypatch.delenv("TF_CONFIG")
    assert cluster_from_environment() is None


def test_a_worker_that_cannot_reach_the_chief_names_the_address_it_tried():
    cluster = Cluster((f"127.0.0.1:{free_port()}", "127.0.0.1:1"), 1)
    with pytest.raises(ConfigError, match=f"could not reach the chief at {cluster.chief} within 1 s"):
        wait_for_chief(cluster, 1)
    with socket.socket() as chief:
        chief.bind(("127.0.0.1", 0))
        chief.listen()
        wait_for_chief(Cluster((f"127.0.0.1:{chief.getsockname()[1]}", "127.0.0.1:1"), 1), 5)


def test_the_settings_fingerprint_tells_different_settings_apart():
    settings = {"model": "unet", "batch_size": 8, "epochs": 2}
    assert fingerprint(settings) == fingerprint(dict(reversed(settings.items())))
    assert fingerprint(settings) != fingerprint(settings | {"batch_size": 16})
    assert 0 <= fingerprint(settings) < 2**31
