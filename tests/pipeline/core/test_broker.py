"""The broker URL (``pipeline.core.broker``): its password never shown, no open broker on the network."""

from __future__ import annotations

import logging

import pytest

from cocoseg.cli import main
from cocoseg.pipeline.core import settings as settings_module
from cocoseg.pipeline.core.broker import check_broker_url, redacted
from cocoseg.pipeline.core.settings import read_settings

SECRET = "s3cret-PASSWORD"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        (f"redis://:{SECRET}@cache.lan:6380/2", "redis://:***@cache.lan:6380/2"),
        (f"rediss://user:{SECRET}@cache.lan/0", "rediss://user:***@cache.lan/0"),
        (f"unix:///run/redis.sock?db=1&password={SECRET}", "unix:///run/redis.sock?db=1&password=***"),
        (f"redis://:{SECRET}@cache.lan:notaport/0", "redis://***@cache.lan:notaport/0"),
    ],
)
def test_passwords_never_reach_messages(url, shown):
    assert redacted(url) == shown and SECRET not in redacted(url)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://localhost/0",
        "redis://[::1]:6379/0",
        "unix:///run/redis.sock",
        f"redis://:{SECRET}@10.0.0.5:6379/0",
        f"rediss://worker:{SECRET}@cache.example.org/0",
        f"redis://10.0.0.5:6379/0?password={SECRET}",
    ],
)
def test_a_local_or_password_protected_broker_is_accepted(url):
    check_broker_url(url)


@pytest.mark.parametrize(
    "url", ["redis://10.0.0.5:6379/0", "rediss://cache.example.org/0", "redis://user@0.0.0.0/1"]
)
def test_a_password_less_broker_on_the_network_is_refused_unless_allowed(url):
    with pytest.raises(ValueError, match="COCOSEG_BROKER_INSECURE=1"):
        check_broker_url(url)
    check_broker_url(url, allow_insecure=True)


def test_the_refusal_happens_when_any_command_starts(monkeypatch, capsys):
    monkeypatch.setenv("COCOSEG_BROKER_URL", "redis://10.0.0.5:6379/0")
    settings_module.get_settings.cache_clear()
    assert main(["jobs", "list"]) != 0
    error = capsys.readouterr().err
    assert "COCOSEG_BROKER_INSECURE" in error and "10.0.0.5" in error and "Traceback" not in error
    monkeypatch.setenv("COCOSEG_BROKER_INSECURE", "1")
    settings_module.get_settings.cache_clear()
    assert read_settings().broker_insecure is True
    assert main(["jobs", "list"]) == 0


def test_the_password_stays_out_of_settings_doctor_app_logs_and_worker_errors(
    monkeypatch, capsys, caplog, workspace
):
    url = f"redis://:{SECRET}@127.0.0.1:1/0"  # nobody listens on port 1
    monkeypatch.setenv("COCOSEG_BROKER_URL", url)
    settings_module.get_settings.cache_clear()
    settings = read_settings()
    assert settings.broker_url == url and SECRET not in repr(settings)

    assert main(["doctor", "--no-tensorflow"]) == 0
    printed = capsys.readouterr()
    assert "redis://:***@127.0.0.1:1/0" in printed.out and SECRET not in printed.out + printed.err

    assert main(["worker"]) == 2  # Redis does not answer: refused with one line
    printed = capsys.readouterr()
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in printed.err
    assert SECRET not in printed.out + printed.err

    from cocoseg.app.main import create_app

    with caplog.at_level(logging.DEBUG):
        create_app(workspace)
    assert "redis://:***@127.0.0.1:1/0" in caplog.text and SECRET not in caplog.text


def test_celery_is_pinned_to_json_and_late_acknowledgement():
    from cocoseg.app.jobs import celery_app

    conf = celery_app("redis://127.0.0.1:1/0", visibility_seconds=42).conf
    assert conf.task_serializer == "json" and conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"] and list(conf.result_accept_content) == ["json"]
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 42
