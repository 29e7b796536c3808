"""Which Chromium the browser tests drive: $CHROMIUM_PATH first, then the system package."""

from __future__ import annotations

from tests.e2e.conftest import SYSTEM_CHROMIUM, chromium_executable


def test_chromium_path_wins_when_it_is_an_executable(tmp_path, monkeypatch):
    browser = tmp_path / "my-chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    monkeypatch.setenv("CHROMIUM_PATH", str(browser))
    assert chromium_executable() == str(browser)


def test_a_missing_chromium_path_falls_back_to_the_system_package(monkeypatch, tmp_path):
    monkeypatch.setenv("CHROMIUM_PATH", str(tmp_path / "missing"))
    expected = str(SYSTEM_CHROMIUM) if SYSTEM_CHROMIUM.is_file() else None
    assert chromium_executable() == expected
