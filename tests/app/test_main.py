"""The Dash app without a browser: routes, vendor assets, limits, headers, navigation, Home layout.

``dash.page_registry`` is global per process; building several apps in one process is
fine (each ``create_app`` re-registers the same pages), but page modules must never be
imported directly here: Dash loads them itself (as ``pages.<name>``) during ``create_app``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
import pytest
from dash import html

from cocoseg import cli
from cocoseg.app import ids, main
from cocoseg.app.ids import Annotate, Home, Train
from cocoseg.app.main import VENDOR_ROUTE, VENDOR_STYLESHEETS, create_app
from cocoseg.pipeline.core.settings import MEGABYTE, get_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP_CSS = VENDOR_ROUTE + "bootstrap5/css/bootstrap.min.css"


# --- helpers ------------------------------------------------------------------------------


def _walk(component):
    """Yield every Dash component in a layout tree (depth first)."""
    if component is None or isinstance(component, (str, int, float)):
        return
    if isinstance(component, (list, tuple)):
        for child in component:
            yield from _walk(child)
        return
    yield component
    yield from _walk(getattr(component, "children", None))


def _strings(component) -> list[str]:
    """Every string (or number) child in a layout tree, in document order."""
    found = []
    if component is None:
        return found
    if isinstance(component, (str, int, float)) and not isinstance(component, bool):
        return [str(component)]
    if isinstance(component, (list, tuple)):
        for child in component:
            found.extend(_strings(child))
        return found
    found.extend(_strings(getattr(component, "children", None)))
    return found


def _text(component) -> str:
    return " ".join(_strings(component))


def _classes(component) -> set[str]:
    return set((getattr(component, "className", None) or "").split())


def _home_page() -> dict:
    pages = [page for page in dash.page_registry.values() if page["name"] == "Home"]
    assert len(pages) == 1, (
        "expected exactly one Home page in the registry, "
        f"got {[p['module'] for p in dash.page_registry.values()]}"
    )
    return pages[0]


@pytest.fixture
def app(workspace):
    return create_app(workspace)


@pytest.fixture
def client(app):
    return app.server.test_client()


@pytest.fixture
def home_layout(app):
    """The Home layout function's component tree, built as during a real request."""
    page = _home_page()
    assert callable(page["layout"]), (
        "the Home page must register a layout *function* (it reads the workspace per request)"
    )
    with app.server.test_request_context("/"):
        return page["layout"]()


# --- index and headers --------------------------------------------------------------------


def test_index_serves_the_dash_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    body = response.get_data(as_text=True)
    assert "<title>cocoseg</title>" in body
    assert 'id="react-entry-point"' in body
    assert "_dash-config" in body
    for href in VENDOR_STYLESHEETS:
        assert href in body, f"{href} is not linked from the index page"
    assert "cdn.jsdelivr" not in body and "unpkg.com" not in body, "the app must work offline (no CDN links)"


@pytest.mark.parametrize(
    "path", ["/", BOOTSTRAP_CSS, "/_dash-layout", VENDOR_ROUTE + "../main.py", "/no-such-page"]
)
def test_responses_carry_security_headers(client, path):
    response = client.get(path)
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("X-Frame-Options") == "SAMEORIGIN"
    assert response.headers.get("Referrer-Policy") == "same-origin"


def test_debug_is_off(app):
    assert app.server.debug is False
    assert app.server.config["DEBUG"] is False


# --- vendor assets ------------------------------------------------------------------------


@pytest.mark.parametrize("href", VENDOR_STYLESHEETS)
def test_vendor_stylesheets_are_served_as_css(client, href):
    response = client.get(href)
    assert response.status_code == 200, f"{href} -> {response.status_code}"
    assert response.mimetype == "text/css"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert len(response.data) > 1000


def test_bootstrap_css_is_the_real_bootstrap_5(client):
    response = client.get(BOOTSTRAP_CSS)
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    head = response.get_data(as_text=True)[:400]
    assert "Bootstrap" in head and "v5." in head, head[:200]


def test_bootstrap_icon_font_referenced_by_the_icon_css_is_served(client):
    icons_css = VENDOR_STYLESHEETS[1]
    css = client.get(icons_css).get_data(as_text=True)
    assert "woff2" in css
    start = css.index("url(", css.index("@font-face")) + len("url(")
    relative = css[start : css.index(")", start)].strip("\"'").split("?")[0]
    font_url = icons_css.rsplit("/", 1)[0] + "/" + relative
    response = client.get(font_url)
    assert response.status_code == 200, f"icon font {font_url} -> {response.status_code}"
    assert len(response.data) > 10_000


@pytest.mark.parametrize(
    "attempt",
    [
        "../main.py",
        "../../app/main.py",
        "bootstrap5/../../__init__.py",
        "bootstrap5/css/../../../__init__.py",
        "%2e%2e%2f__init__.py",
        "%2e%2e/%2e%2e/__init__.py",
        "bootstrap5%2f..%2f..%2f__init__.py",
        "..%5c__init__.py",
        "bootstrap5%5c..%5c..%5c__init__.py",
        "..\\__init__.py",
        "C:/Windows/win.ini",
        "C:%5cWindows%5cwin.ini",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "//etc/passwd",
        "\\\\server\\share\\file.css",
    ],
)
def test_vendor_route_refuses_traversal(client, attempt):
    response = client.get(VENDOR_ROUTE + attempt)
    body = response.get_data(as_text=True)
    assert "root:" not in body and "flask_bootstrap" not in body and "import " not in body, (
        "file content leaked"
    )
    assert response.status_code == 404, (
        f"{VENDOR_ROUTE + attempt} -> {response.status_code} {response.mimetype}"
    )
    assert response.headers.get("X-Content-Type-Options") == "nosniff"


def test_vendor_route_404_for_missing_file(client):
    response = client.get(VENDOR_ROUTE + "bootstrap5/css/no-such-file.css")
    assert response.status_code == 404


# --- request size limit -------------------------------------------------------------------


def test_max_content_length_defaults_to_settings(app):
    assert get_settings().max_request_bytes == 64 * MEGABYTE
    assert app.server.config["MAX_CONTENT_LENGTH"] == 64 * MEGABYTE


def test_oversized_callback_post_is_refused_with_413(monkeypatch, workspace):
    monkeypatch.setenv("COCOSEG_MAX_REQUEST_MB", "1")
    get_settings.cache_clear()
    app = create_app(workspace)
    assert get_settings().max_request_bytes == MEGABYTE
    assert app.server.config["MAX_CONTENT_LENGTH"] == MEGABYTE
    client = app.server.test_client()

    payload = {
        "output": "home-datasets.children",
        "outputs": {"id": "home-datasets", "property": "children"},
        "inputs": [],
        "changedPropIds": [],
        "pad": "x" * (MEGABYTE + 1),
    }
    body = json.dumps(payload)
    assert len(body) > MEGABYTE
    response = client.post("/_dash-update-component", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.headers.get("X-Content-Type-Options") == "nosniff"

    # the same request below the limit is not refused for its size
    payload["pad"] = "x" * (MEGABYTE // 2)
    response = client.post(
        "/_dash-update-component", data=json.dumps(payload), content_type="application/json"
    )
    assert response.status_code != 413


# --- navigation ---------------------------------------------------------------------------


def test_navbar_links_every_registered_page(app, client):
    assert dash.page_registry, "no pages registered"
    links = {link.href: link for link in _walk(app.layout) if isinstance(link, dbc.NavLink)}
    for page in dash.page_registry.values():
        assert page["relative_path"] in links, (
            f"no navigation link for page {page['module']} ({page['relative_path']})"
        )
        link = links[page["relative_path"]]
        assert page["name"] in _strings(link)
        assert link.active == "exact"
    assert len(links) == len(dash.page_registry)

    # what the browser receives holds the same links
    served = json.dumps(client.get("/_dash-layout").get_json())
    for page in dash.page_registry.values():
        assert json.dumps(page["relative_path"]) in served


def test_home_page_is_registered_at_root(app):
    page = _home_page()
    assert page["path"] == "/"
    assert page["relative_path"] == "/"
    assert page.get("order") == 0


# --- Home layout ----------------------------------------------------------------------------


def test_home_layout_text(home_layout):
    strings = _strings(home_layout)
    text = " ".join(strings)
    for expected in (
        "Home",
        "Datasets",
        "demo",
        "train",
        "val",
        "80",
        "Devices",
        "CPU",
        "Training runs",
    ):
        assert expected in strings or expected in text, f"{expected!r} not in Home layout text"
    assert "No training runs yet." in strings


def _dataset_rows(layout) -> dict[tuple[str, str], list]:
    table = next(c for c in _walk(layout) if getattr(c, "id", None) == Home.DATASETS)
    rows = {}
    for row in _walk(table):
        if isinstance(row, html.Tr) and "dataset-row" in _classes(row):
            cells = [cell for cell in row.children if isinstance(cell, html.Td)]
            rows[(_strings(cells[0])[0], _text(cells[1]))] = cells
    return rows


def test_home_datasets_table_lists_demo_splits(home_layout):
    rows = _dataset_rows(home_layout)
    assert set(rows) == {("demo", "train"), ("demo", "val")}
    expected_annotations = {"train": "705", "val": "815"}
    for (_name, split), cells in rows.items():
        assert len(cells) == 7
        assert "bundled" in _strings(cells[0])
        assert _text(cells[2]) == "80", f"{split} images: {_text(cells[2])!r}"
        assert _text(cells[3]) == expected_annotations[split]
        assert _text(cells[4]) == "80"
        badges = [c for c in _walk(cells[6]) if isinstance(c, dbc.Badge)]
        assert len(badges) == 1
        assert badges[0].children == "ok"
        assert badges[0].color == "success"


def test_home_device_panel_reports_cpu(home_layout):
    from cocoseg.pipeline.inference.predictor import usable_providers

    report = usable_providers()
    device = next(c for c in _walk(home_layout) if getattr(c, "id", None) == Home.DEVICE)
    badge = next(c for c in _walk(device) if "device-badge" in _classes(c))
    assert badge.children == report.device
    assert report.device in ("CPU", "GPU")
    usable_line = next(s for s in _strings(device) if s.startswith("Usable: "))
    assert "CPU" in usable_line.removeprefix("Usable: ").split(", ")
    if "CUDAExecutionProvider" not in report.usable and "TensorrtExecutionProvider" not in report.usable:
        assert badge.children == "CPU"
        assert "device-cpu" in _classes(badge)


def test_home_layout_reads_the_serving_apps_workspace(home_layout, workspace):
    assert f"workspace {workspace.root}" in _strings(home_layout)


# --- process hygiene ------------------------------------------------------------------------


def test_web_process_never_imports_tensorflow(tmp_path):
    """Import every module under cocoseg/app/, build the app, render Home and the index: no TensorFlow."""
    script = (
        "import sys, pkgutil, importlib, dash\n"
        "import cocoseg.app, cocoseg.app.main\n"
        "for info in pkgutil.walk_packages(cocoseg.app.__path__, 'cocoseg.app.'):\n"
        "    if not info.name.startswith('cocoseg.app.pages.') and info.name != 'cocoseg.app.worker':\n"
        "        importlib.import_module(info.name)\n"
        "application = cocoseg.app.main.create_app()\n"
        "assert any(page['name'] == 'Home' for page in dash.page_registry.values())\n"
        "client = application.server.test_client()\n"
        "assert client.get('/').status_code == 200\n"
        "assert client.get('/_dash-layout').status_code == 200\n"
        "page = next(page for page in dash.page_registry.values() if page['name'] == 'Home')\n"
        "with application.server.test_request_context('/'):\n"
        "    page['layout']()\n"
        "print(sorted(name for name in sys.modules "
        "if name.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx')))\n"
    )
    env = {**__import__("os").environ, "COCOSEG_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


def test_the_celery_worker_module_imports_no_tensorflow(tmp_path):
    """``cocoseg.app.worker`` builds the app in Celery mode (no broker connection yet): still no
    TensorFlow.
    """
    script = (
        "import sys, cocoseg.app.worker\n"
        "assert any(name.startswith('background_callback_') "
        "for name in cocoseg.app.worker.celery_app.tasks)\n"
        "print(sorted(name for name in sys.modules "
        "if name.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx')))\n"
    )
    env = {
        **__import__("os").environ,
        "COCOSEG_HOME": str(tmp_path / "home"),
        "COCOSEG_BROKER_URL": "redis://127.0.0.1:9/0",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


# --- serve command ----------------------------------------------------------------------------


def test_serve_binds_localhost_even_with_host_env(monkeypatch):
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("COCOSEG_HOST", "0.0.0.0")
    get_settings.cache_clear()
    arguments = cli.build_parser(get_settings()).parse_args(["serve"])
    assert arguments.host == "127.0.0.1"
    assert arguments.port == 8050


def test_serve_port_comes_from_settings(monkeypatch):
    monkeypatch.setenv("COCOSEG_PORT", "8123")
    get_settings.cache_clear()
    arguments = cli.build_parser(get_settings()).parse_args(["serve"])
    assert arguments.port == 8123
    assert cli.build_parser(get_settings()).parse_args(["serve", "--port", "9001"]).port == 9001


def test_serve_runs_waitress_on_localhost_with_the_limits(monkeypatch, isolated_home, capsys):
    import waitress

    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("COCOSEG_SERVER_THREADS", "6")
    get_settings.cache_clear()
    calls = []
    monkeypatch.setattr(waitress, "serve", lambda application, **kwargs: calls.append((application, kwargs)))
    monkeypatch.setattr(dash.Dash, "run", lambda *args, **kwargs: pytest.fail("--dev was not asked for"))
    assert cli.main(["serve", "--port", "8765"]) == cli.EXIT_OK
    assert len(calls) == 1
    server, kwargs = calls[0]
    assert kwargs["host"] == "127.0.0.1"
    assert kwargs["port"] == 8765
    assert kwargs["threads"] == 6
    assert kwargs["max_request_body_size"] == get_settings().max_request_bytes
    assert kwargs["channel_timeout"] > 0 and kwargs["expose_tracebacks"] is False
    assert server.config["MAX_CONTENT_LENGTH"] == get_settings().max_request_bytes
    assert server.config["COCOSEG_WORKSPACE"].root == Path(isolated_home).resolve()
    assert server.debug is False
    printed = capsys.readouterr().out
    assert "waitress, 6 threads" in printed and "http://127.0.0.1:8765/\n" in printed
    assert "token" not in printed  # loopback: no token by default


def test_serve_dev_runs_werkzeug_on_localhost_without_debug(monkeypatch, isolated_home):
    import waitress

    get_settings.cache_clear()
    calls = []
    monkeypatch.setattr(dash.Dash, "run", lambda self, *args, **kwargs: calls.append((self, args, kwargs)))
    monkeypatch.setattr(waitress, "serve", lambda *args, **kwargs: pytest.fail("--dev runs Werkzeug"))
    assert cli.main(["serve", "--dev", "--port", "8765"]) == cli.EXIT_OK
    assert len(calls) == 1
    application, args, kwargs = calls[0]
    assert args == ()
    assert kwargs == {"host": "127.0.0.1", "port": 8765, "debug": False}
    assert application.server.config["MAX_CONTENT_LENGTH"] == get_settings().max_request_bytes


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_serve_refuses_invalid_port(monkeypatch, capsys, port):
    import waitress

    calls = []
    monkeypatch.setattr(waitress, "serve", lambda *args, **kwargs: calls.append(kwargs))
    assert cli.main(["serve", "--port", port]) == cli.EXIT_INPUT
    assert calls == []
    assert "port must be between 1 and 65535" in capsys.readouterr().err


def test_home_device_panel_offers_the_training_check_until_one_was_made(workspace):
    from cocoseg.app.components.home_panels import device_panel
    from cocoseg.pipeline.inference import device_report

    report = device_report()
    unchecked = device_panel(report, None)
    assert "Training: TensorFlow's devices not checked yet." in _strings(unchecked)
    assert any(getattr(c, "id", None) == Home.DEVICE_CHECK for c in _walk(unchecked))
    checked = device_report({"version": "2.21.0", "built_cuda": "", "built_cudnn": "", "devices": []})
    checked["advice"] = [{"what": "TensorFlow sees no GPU", "command": "make run GPU=1"}]
    shown = device_panel(report, checked)
    assert "Training: CPU (TensorFlow sees no GPU)" in _strings(shown) and "make run GPU=1" in _strings(shown)
    assert f"Precision (auto): {checked['training']['precision']}" in _strings(shown)
    assert f"CPU: {report['cpu']['model']}, {report['cpu']['cores']} cores" in _strings(shown)
    report["onnxruntime"] |= {"version": "1.31.1", "cuda_build": "13.0"}  # as the H200 reported it
    assert any(
        text.endswith("ONNX Runtime 1.31.1 (built for CUDA 13.0)")
        for text in _strings(device_panel(report, None))
    )


def _served_callbacks(app) -> list[str]:
    return sorted(item["output"] for item in app.server.test_client().get("/_dash-dependencies").get_json())


def test_every_app_in_a_process_serves_every_callback(workspace):
    """Dash gives ``@callback``s to the first app that serves and forgets them: a second app once
    lacked the Train table's Delete and every other callback living beside its page."""
    _served_callbacks(create_app(workspace))  # takes whatever earlier apps in this process left unserved
    second, third = _served_callbacks(create_app(workspace)), _served_callbacks(create_app(workspace))
    assert third == second
    assert any(Train.DELETE_CONFIRM in output for output in third)  # run_actions
    assert any(Annotate.TOOL_STATE in output for output in third)  # click_to_mask


def test_every_module_with_callbacks_beside_the_pages_runs_again_for_each_app():
    app_folder = Path(main.__file__).parent
    with_callbacks = {
        f"cocoseg.app.{path.stem}"
        for path in app_folder.glob("*.py")
        if "\n@callback(" in path.read_text() or "\ndash.clientside_callback(" in path.read_text()
    }
    assert with_callbacks and with_callbacks == set(main.CALLBACK_MODULES)


def _declared_ids() -> list[str]:
    return [
        value
        for holder in vars(ids).values()
        if isinstance(holder, type)
        for name, value in vars(holder).items()
        if name.isupper() and isinstance(value, str)
    ]


def _callback_ids(dependency: dict) -> set[str]:
    """The component ids one served callback names (a pattern id by its ``type``)."""
    outputs = dependency["output"].strip(".").split("...")
    names = [output.rsplit(".", 1)[0] for output in outputs]
    names += [entry["id"] for entry in dependency["inputs"] + dependency["state"]]
    return {json.loads(name)["type"] if name.startswith("{") else name for name in names}


def test_every_callback_id_is_declared_in_ids_once(workspace):
    """The house rule "ids come from cocoseg.app.ids": a literal typed twice drifts apart silently."""
    declared = _declared_ids()
    assert len(declared) == len(set(declared)), "an id is declared twice in cocoseg.app.ids"
    application = create_app(workspace)
    dependencies = application.server.test_client().get("/_dash-dependencies").get_json()
    named = set().union(*(_callback_ids(dependency) for dependency in dependencies))
    assert Train.DELETE_CONFIRM in named and Annotate.REGISTER in named  # the parsing found real ids
    # Also allowed: Dash pages' own ids, and ids built from a declared one (a form field's feedback,
    # a tab's pane, the picture under Segment's overlay).
    derived = {f"{name}{suffix}" for name in declared for suffix in ("-feedback", "-pane", "-picture")}
    undeclared = {name for name in named - set(declared) - derived if not name.startswith("_pages_")}
    assert undeclared == set()
