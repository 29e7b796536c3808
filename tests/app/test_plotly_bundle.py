"""plotly.js's cartesian bundle: found when make installed it, served at Dash's plotly.js URL, and enough
for every figure.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import dash
import plotly.graph_objects as go
import pytest
from plotly.basedatatypes import BaseTraceType

from cocoseg.app import plotly_bundle

APP_DIR = Path(plotly_bundle.__file__).resolve().parent
DASH_PLOTLY_URL = "/_dash-component-suites/plotly/package_data/plotly.min.js"


@pytest.fixture(autouse=True)
def no_choice_from_the_shell(monkeypatch):
    monkeypatch.delenv(plotly_bundle.ENVIRONMENT_VARIABLE, raising=False)


def bare_app() -> dash.Dash:
    app = dash.Dash(__name__)
    app.layout = dash.html.Div()
    return app


def fake_package(root: Path, version: str) -> Path:
    package = root / plotly_bundle.PACKAGE
    package.mkdir(parents=True)
    (package / "package.json").write_text(
        json.dumps({"name": plotly_bundle.PACKAGE, "version": version}), encoding="utf-8"
    )
    (package / plotly_bundle.BUNDLE_FILE).write_text("window.Plotly = {};", encoding="utf-8")
    return package / plotly_bundle.BUNDLE_FILE


def test_make_installed_the_bundle_for_plotly_pys_version():
    if shutil.which("npm") is None:
        pytest.skip(
            "npm is not installed, so make could not install the bundle (the app serves the full plotly.js)"
        )
    bundle = plotly_bundle.find_bundle()
    assert bundle is not None, (
        "node_modules lacks plotly.js-cartesian-dist-min or its version differs from plotly.py's: "
        "run make web"
    )
    assert 1_000_000 < bundle.stat().st_size < 2_500_000
    installed = json.loads((bundle.parent / "package.json").read_text(encoding="utf-8"))["version"]
    assert installed == plotly_bundle.expected_version()
    pinned = json.loads((Path(__file__).resolve().parents[2] / "package.json").read_text(encoding="utf-8"))[
        "dependencies"
    ]
    assert pinned[plotly_bundle.PACKAGE] == plotly_bundle.expected_version(), (
        "package.json pins another plotly.js than plotly.py's"
    )


def test_a_matching_version_is_used_and_anything_else_falls_back_to_the_full_bundle(
    tmp_path, monkeypatch, caplog
):
    matching = fake_package(tmp_path / "good", plotly_bundle.expected_version())
    assert plotly_bundle.find_bundle(tmp_path / "good") == matching
    fake_package(tmp_path / "old", "1.0.0")
    assert plotly_bundle.find_bundle(tmp_path / "old") is None
    assert "does not match" in caplog.text
    assert plotly_bundle.find_bundle(tmp_path / "missing") is None
    monkeypatch.setenv(plotly_bundle.ENVIRONMENT_VARIABLE, "full")
    assert plotly_bundle.find_bundle(tmp_path / "good") is None
    monkeypatch.setenv(plotly_bundle.ENVIRONMENT_VARIABLE, str(tmp_path / "nowhere.js"))
    assert plotly_bundle.find_bundle(tmp_path / "good") is None
    monkeypatch.setenv(plotly_bundle.ENVIRONMENT_VARIABLE, str(matching))
    assert plotly_bundle.find_bundle(tmp_path / "missing") == matching


def test_dashs_plotly_url_answers_with_the_bundle_and_revalidates(tmp_path):
    bundle = fake_package(tmp_path, plotly_bundle.expected_version())
    app = bare_app()
    assert plotly_bundle.register(app, bundle) == bundle
    client = app.server.test_client()
    response = client.get(DASH_PLOTLY_URL)
    assert response.status_code == 200 and response.data == bundle.read_bytes()
    assert response.mimetype in ("application/javascript", "text/javascript")
    again = client.get(DASH_PLOTLY_URL, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    fingerprinted = client.get("/_dash-component-suites/plotly/package_data/plotly.v4_1_1m1700000000.min.js")
    assert fingerprinted.data == bundle.read_bytes()
    other = client.get("/_dash-component-suites/dash/dcc/async-graph.js")  # Dash still serves everything else
    assert other.status_code == 200 and other.data != bundle.read_bytes()


def test_without_a_bundle_dash_serves_its_full_plotly(tmp_path, monkeypatch):
    monkeypatch.setenv(plotly_bundle.ENVIRONMENT_VARIABLE, "full")
    app = bare_app()
    assert plotly_bundle.register(app) is None
    response = app.server.test_client().get(DASH_PLOTLY_URL)
    assert response.status_code == 200 and len(response.data) > 4_000_000


def _trace_classes_called_in(path: Path) -> set[str]:
    """Names X of every ``go.X(...)`` call in a module that is a plotly trace class."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "go"
        ):
            candidate = getattr(go, node.func.attr, None)
            if isinstance(candidate, type) and issubclass(candidate, BaseTraceType):
                names.add(node.func.attr)
    return names


def test_every_trace_the_app_draws_is_in_the_cartesian_bundle():
    used = {
        name: getattr(go, name)().type
        for path in APP_DIR.rglob("*.py")
        for name in _trace_classes_called_in(path)
    }
    assert {"Bar", "Scatter", "Heatmap", "Image"} <= set(used), used  # the scan finds the app's figures
    assert set(used.values()) <= plotly_bundle.TRACE_TYPES, (
        f"not in the cartesian bundle: {set(used.values()) - plotly_bundle.TRACE_TYPES}"
    )
