"""The real ``cocoseg serve`` process, without a browser: where it listens, what it serves."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import psutil
import pytest

pytestmark = pytest.mark.slow


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_server_listens_on_localhost_only_despite_host_env(server):
    """The fixture starts the server with HOST=0.0.0.0 in its environment."""
    listening = [
        connection.laddr
        for connection in psutil.Process(server.process.pid).net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
    ]
    assert listening, f"no listening socket found for pid {server.process.pid}"
    assert {address.ip for address in listening} == {"127.0.0.1"}, listening
    assert {address.port for address in listening} == {server.port}


def test_server_serves_index_css_and_headers(server):
    status, headers, body = _get(server.url + "/")
    assert status == 200
    assert b"<title>cocoseg</title>" in body
    assert headers.get("X-Content-Type-Options") == "nosniff"

    status, headers, body = _get(server.url + "/vendor/bootstrap/bootstrap5/css/bootstrap.min.css")
    assert status == 200
    assert headers.get("Content-Type", "").startswith("text/css")
    assert headers.get("X-Content-Type-Options") == "nosniff"

    status, headers, _ = _get(server.url + "/vendor/bootstrap/%2e%2e%2f__init__.py")
    assert status == 404


def test_server_is_not_in_debug_mode(server):
    """A debug server would expose the Werkzeug console and Dash dev tools."""
    status, _, body = _get(server.url + "/")
    assert status == 200
    match = re.search(rb'<script id="_dash-config" type="application/json">(.*?)</script>', body, re.S)
    assert match, "no _dash-config in the index page"
    config = json.loads(match.group(1))
    assert config["ui"] is False
    assert config["props_check"] is False
    _, _, console = _get(server.url + "/console")
    assert b"Werkzeug" not in console and b"__debugger__" not in console
    assert "Debugger is active" not in server.log()
    assert "Debug mode: on" not in server.log()
