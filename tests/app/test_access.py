"""Access to the app (issue 19): the Host check, the token and its cookie, the headers, the served-folder
refusal.

Through Flask's test client, which goes through the same WSGI stack as a real server
(the access middleware wraps ``server.wsgi_app``). The real ``cocoseg serve`` process is
tested in tests/e2e/test_serve_network.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse

import dash
import pytest
from dash import Input, Output, html

from cocoseg import cli
from cocoseg.app import access
from cocoseg.app.main import create_app
from cocoseg.pipeline.core import ASSETS_DIR, UnsafePathError, Workspace
from cocoseg.pipeline.core.settings import get_settings, read_settings

TOKEN = "s3cret-token-for-the-tests-0123456789"


def _policy(host: str = "0.0.0.0", port: int = 8050, **settings) -> access.AccessPolicy:
    return access.access_policy(host, port, read_settings(), **settings)


@pytest.fixture
def token_env(monkeypatch):
    monkeypatch.setenv("COCOSEG_TOKEN", TOKEN)
    get_settings.cache_clear()


@pytest.fixture
def guarded(workspace, token_env):
    """An app served as on ``--host 0.0.0.0``: the token is required."""
    app = create_app(workspace, _policy())
    return app


@pytest.fixture
def client(guarded):
    return guarded.server.test_client()


def _cookie_header(response) -> str:
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 1, cookies
    return cookies[0]


# --- the policy --------------------------------------------------------------------------


def test_loopback_needs_no_token_by_default():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert _policy(host).token is None, host
    assert access.is_loopback("127.0.0.1") and not access.is_loopback("0.0.0.0")


def test_loopback_requires_the_token_when_asked(monkeypatch):
    assert _policy("127.0.0.1", token_required=True).token
    monkeypatch.setenv("COCOSEG_TOKEN_REQUIRED", "1")
    assert _policy("127.0.0.1").token


def test_beyond_loopback_a_random_token_is_generated_unless_one_is_set(monkeypatch):
    first, second = _policy("0.0.0.0").token, _policy("192.168.1.20").token
    assert first and second and first != second
    assert len(first) >= 32
    monkeypatch.setenv("COCOSEG_TOKEN", TOKEN)
    assert _policy("0.0.0.0").token == TOKEN


def test_the_token_is_never_in_a_repr(monkeypatch):
    monkeypatch.setenv("COCOSEG_TOKEN", TOKEN)
    assert TOKEN not in repr(read_settings())
    assert TOKEN not in repr(_policy())


@pytest.mark.parametrize("value", ["short", "long enough but with a bell \x07 in it"])
def test_a_weak_or_unprintable_token_is_refused(monkeypatch, value):
    monkeypatch.setenv("COCOSEG_TOKEN", value)
    with pytest.raises(ValueError, match="COCOSEG_TOKEN"):
        read_settings()


def test_printed_urls_carry_the_token():
    policy = _policy("0.0.0.0", 8123)
    urls = access.login_urls(policy, "0.0.0.0", 8123)
    assert urls[-1] == f"http://127.0.0.1:8123/?token={policy.token}"
    assert all(f":8123/?token={policy.token}" in url for url in urls)
    assert access.login_urls(_policy("127.0.0.1", 8123), "127.0.0.1", 8123) == ["http://127.0.0.1:8123/"]


def test_token_comparison_is_constant_time(monkeypatch):
    calls = []
    real = access.hmac.compare_digest
    monkeypatch.setattr(access.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    policy = _policy("0.0.0.0")
    assert policy.token_matches(policy.token) and not policy.token_matches("x" * 43)
    assert policy.cookie_matches(policy.cookie_value()) and not policy.cookie_matches("nope")
    assert len(calls) == 4


# --- the Host check ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, expected",
    [
        ("localhost:8050", "localhost"),
        ("LOCALHOST.", "localhost"),
        ("[::1]:8050", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("evil.example:80", "evil.example"),
        ("[::1", None),
        ("[evil]:80", None),
        ("host:port", None),
        ("", None),
        (None, None),
    ],
)
def test_host_names_are_parsed_strictly(header, expected):
    assert access.host_name(header) == expected


def test_loopback_serving_answers_only_loopback_names(workspace):
    client = create_app(workspace).server.test_client()
    for host in ("localhost", "127.0.0.1:8050", "[::1]:8050", "LocalHost:8050"):
        assert client.get("/", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8050", "127.0.0.1.evil.example", "10.0.0.5", "[::1"):
        response = client.get("/", headers={"Host": host})
        assert response.status_code == 400, host
        assert b"_dash-config" not in response.data
    # a callback POST from a rebinding page is refused the same way
    assert (
        client.post("/_dash-update-component", json={}, headers={"Host": "evil.example"}).status_code == 400
    )


def test_allowed_hosts_extend_the_list(workspace, monkeypatch):
    monkeypatch.setenv("COCOSEG_ALLOWED_HOSTS", "gpu-box.lab, Studio.Example.org")
    get_settings.cache_clear()
    client = create_app(workspace).server.test_client()
    for host in ("gpu-box.lab:8050", "studio.example.org"):
        assert client.get("/", headers={"Host": host}).status_code == 200, host
    assert client.get("/", headers={"Host": "other.lab"}).status_code == 400


def test_a_specific_bind_allows_its_own_address_and_a_wildcard_any_ip_and_the_host_name():
    specific = _policy("192.168.1.20")
    assert specific.host_allowed("192.168.1.20:8050") and specific.host_allowed("localhost")
    assert not specific.host_allowed("192.168.1.21") and not specific.host_allowed("gpu-box")
    wildcard = _policy("0.0.0.0")
    assert wildcard.host_allowed("10.1.2.3:8050") and wildcard.host_allowed("[fe80::1]:8050")
    for name in access.machine_names():
        assert wildcard.host_allowed(f"{name}:8050")
    assert not wildcard.host_allowed("evil.example")


# --- the token: every route refused without it --------------------------------------------


def _sample_paths(app: dash.Dash) -> list[str]:
    """A concrete URL for every rule of the Flask url_map (Dash's routes included), plus the
    paths Dash and the app serve through before_request hooks."""
    paths = set()
    for rule in app.server.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda match: f"x-{match.group(1)}", rule.rule)
        paths.add(path)
    paths |= {
        "/",
        "/explore",
        "/annotate",
        "/_dash-layout",
        "/_dash-dependencies",
        "/_dash-update-component",
        "/assets/cocoseg.js",
        "/assets/cocoseg.css",
        "/uploads/0123456789abcdef.jpg",
        "/vendor/bootstrap/bootstrap5/css/bootstrap.min.css",
        "/_dash-component-suites/plotly/package_data/plotly.min.js",
        "/_dash-component-suites/dash/deps/react@18.3.1.min.js",
        "/_reload-hash",
        "/_favicon.ico",
        "/no-such-page",
    }
    return sorted(paths)


def test_every_route_is_refused_without_the_token(guarded, client):
    rules = list(guarded.server.url_map.iter_rules())
    assert len(rules) >= 8  # Dash's routes, the vendor and upload routes: the enumeration sees them
    for path in _sample_paths(guarded):
        for method in ("GET", "POST", "HEAD"):
            response = client.open(path, method=method, headers={"Accept": "text/html,*/*"})
            assert response.status_code == 401, (method, path, response.status_code)
            body = response.get_data(as_text=True)
            assert "_dash-config" not in body and len(body) < 2000, (method, path)
            assert response.headers["Cache-Control"] == "no-store"
            assert "Set-Cookie" not in response.headers


def test_without_the_token_a_browser_gets_the_login_form_and_scripts_one_line(client):
    page = client.get("/explore?x=1", headers={"Accept": "text/html"})
    assert page.status_code == 401
    body = page.get_data(as_text=True)
    assert f'action="{access.LOGIN_PATH}"' in body and 'value="/explore?x=1"' in body
    assert "<script" not in body
    plain = client.post("/_dash-update-component", json={})
    assert plain.status_code == 401 and plain.mimetype == "text/plain"
    assert plain.data.count(b"\n") == 1


def test_a_wrong_token_or_cookie_is_refused(guarded, client):
    assert client.get("/?token=wrong-token-0123456789").status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    client.set_cookie("cocoseg-token-8050", "0" * 64)
    assert client.get("/").status_code == 401
    client.set_cookie("cocoseg-token-8050", TOKEN)  # the token itself is not the cookie's value
    assert client.get("/").status_code == 401


def test_the_token_in_the_url_sets_a_strict_httponly_cookie_and_leaves_the_url(client):
    response = client.get(f"/explore?a=1&token={urllib.parse.quote(TOKEN)}&b=2")
    assert response.status_code == 303
    assert response.headers["Location"] == "/explore?a=1&b=2"
    cookie = _cookie_header(response)
    assert cookie.startswith("cocoseg-token-8050=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie
    # the test client keeps the cookie: every route answers now
    assert client.get("/explore?a=1&b=2").status_code == 200
    index = client.get("/")
    assert index.status_code == 200 and b"_dash-config" in index.data
    assert client.get("/_dash-layout").status_code == 200
    assert client.get("/_dash-dependencies").status_code == 200
    assert client.get("/assets/cocoseg.js").status_code == 200
    assert client.get("/vendor/bootstrap/bootstrap5/css/bootstrap.min.css").status_code == 200


def test_a_redirect_never_leaves_the_server(client):
    response = client.get(
        "/", environ_overrides={"PATH_INFO": "//evil.example/", "QUERY_STRING": f"token={TOKEN}"}
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/") and not response.headers["Location"].startswith("//")
    response = client.post(access.LOGIN_PATH, data={"token": TOKEN, "next": "//evil.example/x"})
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_the_login_form_signs_in(client):
    form = client.get(access.LOGIN_PATH + "?next=/train")
    assert form.status_code == 200 and b'name="token"' in form.data and b'value="/train"' in form.data
    wrong = client.post(access.LOGIN_PATH, data={"token": "not-it", "next": "/train"})
    assert wrong.status_code == 401 and b"not right" in wrong.data
    assert "Set-Cookie" not in wrong.headers
    right = client.post(access.LOGIN_PATH, data={"token": TOKEN, "next": "/train"})
    assert right.status_code == 303 and right.headers["Location"] == "/train"
    assert "SameSite=Strict" in _cookie_header(right)
    assert client.get("/train").status_code == 200


def test_scripts_may_send_the_token_as_a_bearer_header(client):
    assert client.get("/_dash-layout", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_host_check_comes_before_the_token(client):
    response = client.get(f"/?token={TOKEN}", headers={"Host": "evil.example"})
    assert response.status_code == 400 and "Set-Cookie" not in response.headers


# --- headers, errors, served folders ---------------------------------------------------------


def test_the_index_passes_its_own_content_security_policy(workspace):
    client = create_app(workspace).server.test_client()
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert "'unsafe-inline'" not in directives["script-src"]
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'self'"
    # Dash's "no Internet Explorer" script sits in a conditional comment no browser runs now
    index = re.sub(r"<!--.*?-->", "", response.get_data(as_text=True), flags=re.S)
    inline = re.findall(r"<script>(.*?)</script>", index, re.S)
    inline += re.findall(
        r'<script id="_dash-renderer" type="application/javascript">(.*?)</script>', index, re.S
    )
    assert inline, "the index has Dash's inline renderer script"
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in directives["script-src"], repr(script[:300])
    assert client.get("/assets/cocoseg.js").headers["Content-Security-Policy"] == policy


def test_uploads_are_served_as_inline_jpeg_with_nosniff(workspace):
    import io

    from PIL import Image

    from cocoseg.pipeline.data import decode_upload
    from cocoseg.pipeline.inference import store_upload

    picture = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 30)).save(picture, format="PNG")
    content = "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()
    settings = get_settings()
    key = store_upload(
        workspace, decode_upload(content, "a.png", settings.max_upload_bytes, settings.max_upload_pixels)
    )
    response = create_app(workspace).server.test_client().get(f"/uploads/{key}.jpg")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"] == f'inline; filename="{key}.jpg"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_raising_callback_answers_a_generic_500(workspace, caplog):
    app = create_app(workspace)
    app.callback(Output("cocoseg-test-out", "children"), Input("cocoseg-test-in", "value"))(
        lambda value: (_ for _ in ()).throw(RuntimeError("secret detail /etc/cocoseg"))
    )
    app.layout = html.Div([html.Div(id="cocoseg-test-in"), html.Div(id="cocoseg-test-out")])
    payload = {
        "output": "cocoseg-test-out.children",
        "outputs": {"id": "cocoseg-test-out", "property": "children"},
        "inputs": [{"id": "cocoseg-test-in", "property": "value", "value": 1}],
        "changedPropIds": ["cocoseg-test-in.value"],
        "state": [],
    }
    response = app.server.test_client().post("/_dash-update-component", json=payload)
    assert response.status_code == 500
    assert response.get_data(as_text=True) == "500 Internal Server Error\n"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("inside", ["", "cocoseg-home", "deep/er/home"])
def test_a_home_inside_the_assets_folder_is_refused(inside, tmp_path):
    home = ASSETS_DIR / inside if inside else ASSETS_DIR
    with pytest.raises(UnsafePathError, match="which the app serves") as refused:
        create_app(Workspace(home))
    assert "\n" not in str(refused.value)
    assert not (ASSETS_DIR / "cocoseg-home").exists() and not (ASSETS_DIR / "deep").exists()


def test_serve_refuses_a_home_inside_assets_in_one_line(monkeypatch, capsys):
    import waitress

    monkeypatch.setenv("COCOSEG_HOME", str(ASSETS_DIR / "my-home"))
    get_settings.cache_clear()
    monkeypatch.setattr(waitress, "serve", lambda *args, **kwargs: pytest.fail("must not serve"))
    assert cli.main(["serve"]) == cli.EXIT_INPUT
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "inside" in error and str(ASSETS_DIR) in error
    assert not (ASSETS_DIR / "my-home").exists()
