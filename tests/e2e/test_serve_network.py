"""``cocoseg serve`` beyond localhost (issue 19), as real processes: waitress, the token, the Host
check, the body limit, and a raising callback's generic 500 (waitress and ``--dev``).
"""

from __future__ import annotations

import http.client
import json
import re
import sys
import textwrap
import time
import urllib.parse

import psutil
import pytest

from benchmarks.server_process import clean_environment, read_log, running
from tests.e2e.conftest import PROJECT_ROOT, _serve, free_port

pytestmark = pytest.mark.slow

RAISING_CALLBACK = {
    "output": "boom-out.children",
    "outputs": {"id": "boom-out", "property": "children"},
    "inputs": [{"id": "boom-in", "property": "value", "value": 1}],
    "changedPropIds": ["boom-in.value"],
    "state": [],
}


def _request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """One request with exactly these headers (no redirects followed, no cookie jar)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def network_server(tmp_path_factory):
    """``cocoseg serve --host 0.0.0.0`` with a 1 MB request limit: a token is generated and printed."""
    yield from _serve(
        tmp_path_factory.mktemp("network-home"),
        tmp_path_factory.mktemp("network-server") / "server.log",
        "--host",
        "0.0.0.0",
        COCOSEG_MAX_REQUEST_MB="1",
    )


def _printed_token(server) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        match = re.search(rf"http://127\.0\.0\.1:{server.port}/\?token=(\S+)", server.log())
        if match:
            return urllib.parse.unquote(match.group(1))
        time.sleep(0.2)
    pytest.fail(f"no ready-to-click URL with the token in the output:\n{server.log()}")


def test_loopback_serving_runs_waitress_without_a_token_and_checks_the_host(server):
    status, headers, body = _request(server.port, "GET", "/", headers={"Host": f"127.0.0.1:{server.port}"})
    assert status == 200 and headers["Server"] == "waitress" and b"_dash-config" in body
    assert "Content-Security-Policy" in headers
    status, _, body = _request(server.port, "GET", "/", headers={"Host": "rebound.example"})
    assert status == 400 and b"_dash-config" not in body
    assert "token" not in server.log()


def test_beyond_loopback_the_token_is_printed_and_required(network_server):
    token = _printed_token(network_server)
    assert len(token) >= 32
    assert "token required" in network_server.log()
    listening = {
        connection.laddr.ip
        for connection in psutil.Process(network_server.process.pid).net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
    }
    assert listening == {"0.0.0.0"}

    host = {"Host": f"127.0.0.1:{network_server.port}"}
    for method, path in [
        ("GET", "/"),
        ("GET", "/explore"),
        ("GET", "/_dash-layout"),
        ("GET", "/_dash-dependencies"),
        ("POST", "/_dash-update-component"),
        ("GET", "/assets/cocoseg.js"),
        ("GET", "/uploads/0123456789abcdef.jpg"),
        ("GET", "/vendor/bootstrap/bootstrap5/css/bootstrap.min.css"),
        ("GET", "/_dash-component-suites/plotly/package_data/plotly.min.js"),
    ]:
        status, headers, body = _request(network_server.port, method, path, b"{}", host)
        assert status == 401, (method, path, status)
        assert headers["Server"] == "waitress" and len(body) < 2000 and b"_dash-config" not in body

    status, headers, _ = _request(network_server.port, "GET", "/?token=not-the-token-at-all", headers=host)
    assert status == 401 and "Set-Cookie" not in headers

    status, headers, _ = _request(
        network_server.port, "GET", f"/explore?token={urllib.parse.quote(token)}", headers=host
    )
    assert status == 303 and headers["Location"] == "/explore"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    signed_in = {**host, "Cookie": cookie.split(";", 1)[0]}
    status, headers, body = _request(network_server.port, "GET", "/explore", headers=signed_in)
    assert status == 200 and b"_dash-config" in body and headers["Server"] == "waitress"
    status, _, _ = _request(network_server.port, "GET", "/_dash-layout", headers=signed_in)
    assert status == 200

    # a machine name that is not this one's is refused even with the cookie (DNS rebinding)
    status, _, _ = _request(
        network_server.port,
        "GET",
        "/",
        headers={**signed_in, "Host": f"rebound.example:{network_server.port}"},
    )
    assert status == 400


FORWARDED_HTTPS = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "cocoseg.example",
    "X-Forwarded-For": "203.0.113.7",
}


def test_behind_a_trusted_https_proxy_the_cookie_is_secure_and_its_host_is_checked(tmp_path):
    token = "a-known-token-of-thirty-two-characters!"
    for server in _serve(
        tmp_path / "home",
        tmp_path / "server.log",
        "--host",
        "0.0.0.0",
        COCOSEG_TOKEN=token,
        COCOSEG_TRUSTED_PROXY="127.0.0.1",  # this test's address: it plays the proxy
        COCOSEG_ALLOWED_HOSTS="cocoseg.example",
    ):
        path = f"/explore?token={urllib.parse.quote(token)}"
        status, headers, _ = _request(server.port, "GET", path, headers=FORWARDED_HTTPS)
        assert status == 303
        assert "Secure" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
        # the proxy's public name is the Host the app checks: one not allowed is refused
        status, _, _ = _request(
            server.port, "GET", path, headers={**FORWARDED_HTTPS, "X-Forwarded-Host": "x.example"}
        )
        assert status == 400
        # without the proxy's word, plain http: no Secure flag (a browser would drop such a cookie)
        status, headers, _ = _request(server.port, "GET", path, headers={"Host": f"127.0.0.1:{server.port}"})
        assert status == 303 and "Secure" not in headers["Set-Cookie"]


def test_proxy_headers_from_an_untrusted_address_are_dropped(network_server):
    token = _printed_token(network_server)
    path = f"/explore?token={urllib.parse.quote(token)}"
    headers_sent = {**FORWARDED_HTTPS, "Host": f"127.0.0.1:{network_server.port}"}
    status, headers, _ = _request(network_server.port, "GET", path, headers=headers_sent)
    assert status == 303 and "Secure" not in headers["Set-Cookie"]  # X-Forwarded-Proto was not believed


def test_waitress_refuses_a_body_over_the_limit(network_server):
    token = _printed_token(network_server)
    headers = {
        "Host": f"127.0.0.1:{network_server.port}",
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
    }
    # the answer comes from the declared length alone: waitress refuses before the body is sent
    connection = http.client.HTTPConnection("127.0.0.1", network_server.port, timeout=30)
    try:
        connection.putrequest("POST", "/_dash-update-component", skip_host=True)
        for name, value in {**headers, "Content-Length": str(2_000_000)}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert b"Traceback" not in response.read()
    finally:
        connection.close()
    assert network_server.process.poll() is None


RAISING_APP = """
import sys
from dash import Input, Output, html
from cocoseg.app import serving
from cocoseg.app.main import create_app
from cocoseg.pipeline.core import get_settings

def boom(value):
    raise RuntimeError("secret detail from /etc/cocoseg-internals")

app = create_app()
app.callback(Output("boom-out", "children"), Input("boom-in", "value"))(boom)
print("serving", flush=True)
serving.run(app, "127.0.0.1", int(sys.argv[1]), get_settings(), dev=sys.argv[2] == "dev")
"""


@pytest.mark.parametrize("mode, server_header", [("waitress", "waitress"), ("dev", "Werkzeug")])
def test_a_raising_callback_answers_a_generic_500_through_the_real_server(tmp_path, mode, server_header):
    port = free_port()
    script = tmp_path / "raising_app.py"
    script.write_text(textwrap.dedent(RAISING_APP))
    log_path = tmp_path / "server.log"
    environment = clean_environment(COCOSEG_HOME=str(tmp_path / "home"), PYTHONPATH=str(PROJECT_ROOT))
    with running([sys.executable, str(script), str(port), mode], port, log_path, environment):
        status, headers, body = _request(
            port,
            "POST",
            "/_dash-update-component",
            json.dumps(RAISING_CALLBACK).encode(),
            {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json"},
        )
        assert status == 500
        assert body == b"500 Internal Server Error\n"
        assert headers["Server"].startswith(server_header)
        assert headers["X-Content-Type-Options"] == "nosniff"
        # the server goes on answering, and the traceback went to its log only
        assert _request(port, "GET", "/", headers={"Host": f"127.0.0.1:{port}"})[0] == 200
        time.sleep(0.5)
        logged = read_log(log_path)
        assert "Traceback" in logged and "secret detail" in logged
