"""Workspace: path checker, atomic writes, locks, settings."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from cocoseg.pipeline.core.settings import Settings, read_settings
from cocoseg.pipeline.core.workspace import (
    DERIVED_NAME_LENGTH,
    UnsafePathError,
    Workspace,
    atomic_write_json,
    check_name,
    read_json,
    resolve_inside,
)


@pytest.mark.parametrize("name", ["demo", "coco_2017", "a.b-c", "x" * 64])
def test_check_name_accepts_plain_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "..",
        "../x",
        "a/b",
        "a\\b",
        "/abs",
        ".hidden",
        "-flag",
        "a\x00b",
        "x" * 65,
        "C:x",
        "ünïcode",
        "name\n",
        "a\nb",
    ],
)
def test_check_name_refuses_unsafe_names(name):
    with pytest.raises(UnsafePathError):
        check_name(name)


def test_derived_names_get_a_longer_budget_but_the_same_characters():
    """Names built from checked parts (a prepared set, a lock) may pass 64; a name a user types may not."""
    assert check_name("x" * DERIVED_NAME_LENGTH, "prepared set", derived=True)
    with pytest.raises(UnsafePathError, match="1-64 letters"):
        check_name("x" * 65, "dataset name")
    for name in ("x" * (DERIVED_NAME_LENGTH + 1), "../x", "a/b", ".hidden"):
        with pytest.raises(UnsafePathError, match="not allowed"):
            check_name(name, "prepared set", derived=True)
    assert DERIVED_NAME_LENGTH + len(".lock") < 255  # one path component, in bytes (names are ASCII)


@pytest.mark.parametrize("prefix", ["annotations", "ensemble", "export", "run", "job", "wait"])
def test_a_lock_named_after_a_64_character_name_can_be_taken(tmp_path, prefix):
    workspace = Workspace(tmp_path).ensure()
    with workspace.lock(f"{prefix}-{'n' * 64}", timeout=0):
        assert (workspace.locks_dir / f"{prefix}-{'n' * 64}.lock").exists()


@pytest.mark.parametrize(
    "relative",
    ["../x.jpg", "a/../../x", "/etc/passwd", "C:\\x.png", "\\\\server\\share\\x.png", "a\x00.jpg", ""],
)
def test_resolve_inside_refuses_escapes(tmp_path, relative):
    with pytest.raises(UnsafePathError):
        resolve_inside(tmp_path, relative)


def test_resolve_inside_accepts_nested_and_refuses_symlink_out(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    assert resolve_inside(root, "sub/x.jpg") == (root / "sub" / "x.jpg").resolve()
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"x")
    (root / "link.jpg").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside"):
        resolve_inside(root, "link.jpg")


def test_atomic_write_json_refuses_nan_and_keeps_old_file(tmp_path):
    target = tmp_path / "data.json"
    atomic_write_json(target, {"value": 1})
    with pytest.raises(ValueError):
        atomic_write_json(target, {"value": float("nan")})
    assert json.loads(target.read_text()) == {"value": 1}
    assert [path.name for path in tmp_path.iterdir()] == ["data.json"]  # no temp file left behind


def test_atomic_write_does_not_follow_planted_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    target = tmp_path / "out.json"
    target.symlink_to(victim)
    atomic_write_json(target, {"a": 1})
    assert victim.read_text() == "keep"
    assert not target.is_symlink() and json.loads(target.read_text()) == {"a": 1}


def _append_under_lock(root: str, worker: int) -> None:
    workspace = Workspace(Path(root))
    for step in range(20):
        with workspace.lock("counter"):
            path = workspace.root / "counter.json"
            value = read_json(path, default={"items": []})
            value["items"].append(f"{worker}-{step}")
            atomic_write_json(path, value)


def test_lock_serialises_writers_across_processes(tmp_path):
    workspace = Workspace(tmp_path).ensure()
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_under_lock, args=(str(tmp_path), worker)) for worker in range(3)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    items = read_json(workspace.root / "counter.json")["items"]
    assert len(items) == 60 and len(set(items)) == 60


def test_cache_folder_is_private(tmp_path):
    workspace = Workspace(tmp_path / "ws").ensure()
    assert (os.stat(workspace.cache_dir).st_mode & 0o777) == 0o700


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COCOSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COCOSEG_PORT", "9001")
    monkeypatch.setenv("COCOSEG_MAX_ANNOTATION_MB", "5")
    settings = read_settings()
    assert settings.home == (tmp_path / "home").resolve()
    assert settings.port == 9001 and settings.max_annotation_bytes == 5 * 1024 * 1024


@pytest.mark.parametrize("port", ["0", "70000", "abc"])
def test_settings_refuse_bad_port(monkeypatch, port):
    monkeypatch.setenv("COCOSEG_PORT", port)
    with pytest.raises(ValueError, match="COCOSEG_PORT|port"):
        read_settings()


def test_the_tool_time_limit_is_two_seconds_unless_set_and_must_be_positive(monkeypatch):
    assert read_settings().tool_timeout_seconds == 2.0
    monkeypatch.setenv("COCOSEG_TOOL_TIMEOUT_SECONDS", "7.5")
    assert read_settings().tool_timeout_seconds == 7.5
    for bad, message in (("0", "must be positive"), ("soon", "must be a number of seconds")):
        monkeypatch.setenv("COCOSEG_TOOL_TIMEOUT_SECONDS", bad)
        with pytest.raises(ValueError, match=f"COCOSEG_TOOL_TIMEOUT_SECONDS {message}"):
            read_settings()


def test_settings_ignore_host_environment(monkeypatch):
    monkeypatch.setenv("HOST", "0.0.0.0")
    assert not any("0.0.0.0" in str(value) for value in vars(read_settings()).values())
    assert "host" not in Settings.__dataclass_fields__
