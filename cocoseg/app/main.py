"""The Dash app: frame, side navigation from the page registry, vendor assets (Bootstrap, plotly.js), limits.

``create_app`` builds a fresh app per call (tests build several); the pages under
``app/pages`` register themselves. The web process never imports TensorFlow.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
import flask
from dash import dcc, html

from cocoseg.app import plotly_bundle
from cocoseg.app.context import (
    SERVE_HOST_CONFIG_KEY,
    UPLOAD_ROUTE,
    WORKSPACE_CONFIG_KEY,
    remember_serve_host,
    remember_workspace,
)
from cocoseg.app.ids import Review
from cocoseg.app.jobs import background_manager
from cocoseg.pipeline.core import ASSETS_DIR, Workspace, default_workspace, get_settings
from cocoseg.pipeline.core.settings import DEFAULT_HOST
from cocoseg.pipeline.jobs import reconcile_runs

logger = logging.getLogger(__name__)

PAGES_DIR = Path(__file__).resolve().parent / "pages"
VENDOR_ROUTE = "/vendor/bootstrap/"
VENDOR_STYLESHEETS = [
    VENDOR_ROUTE + "bootstrap5/css/bootstrap.min.css",
    VENDOR_ROUTE + "bootstrap5/css/font/bootstrap-icons.min.css",
]


def _register_vendor_route(server: flask.Flask) -> None:
    """Serve Bootstrap 5 and its icon font from the installed bootstrap-flask wheel.

    The app works offline: no CDN, and nothing third-party copied into the repository.
    ``send_from_directory`` refuses paths that leave the package's static folder.
    """
    import flask_bootstrap

    static_root = Path(flask_bootstrap.__file__).resolve().parent / "static"

    @server.route(VENDOR_ROUTE + "<path:relative>")
    def vendor_file(relative: str):
        return flask.send_from_directory(static_root, relative, max_age=86400)

    @server.before_request
    def refuse_unmatched_vendor_paths():
        # '/vendor/bootstrap//etc/passwd' does not match <path:> and would fall through to
        # Dash's catch-all page route with a 200; anything under the prefix is a file or 404
        if flask.request.path.startswith(VENDOR_ROUTE) and flask.request.endpoint != "vendor_file":
            flask.abort(404)


def _register_upload_route(server: flask.Flask) -> None:
    """Serve an upload's display JPEG by its unguessable key, so pages send the picture once
    as a cacheable file instead of a data URL inside every callback response."""
    from cocoseg.pipeline.inference import display_jpeg

    @server.route(UPLOAD_ROUTE + "<key>.jpg")
    def upload_picture(key: str):
        data = display_jpeg(server.config[WORKSPACE_CONFIG_KEY], key)
        if data is None:
            flask.abort(404)
        response = flask.make_response(data)
        response.headers["Content-Type"] = "image/jpeg"
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    @server.before_request
    def refuse_unmatched_upload_paths():
        # as for the vendor route: a path under the prefix that is not '<key>.jpg' would
        # otherwise fall through to Dash's catch-all page route with a 200
        if flask.request.path.startswith(UPLOAD_ROUTE) and flask.request.endpoint != "upload_picture":
            flask.abort(404)


def _add_security_headers(response: flask.Response) -> flask.Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _navigation() -> html.Nav:
    links = [
        dbc.NavLink(
            [html.I(className=f"bi bi-{page.get('icon', 'circle')} me-2"), page["name"]],
            href=page["relative_path"],
            active="exact",
            id=f"nav-{page['module'].split('.')[-1]}",
        )
        for page in sorted(dash.page_registry.values(), key=lambda page: page.get("order", 99))
    ]
    return html.Nav(
        [
            html.Div(
                [html.I(className="bi bi-grid-3x3-gap-fill me-2"), "cocoseg"], className="sidebar-brand"
            ),
            dbc.Nav(links, vertical=True, pills=True, className="sidebar-links"),
            html.Div("semantic segmentation studio", className="sidebar-footer"),
        ],
        className="sidebar",
    )


def create_app(workspace: Workspace | None = None, host: str = DEFAULT_HOST) -> dash.Dash:
    """Build the multi-page app for ``workspace`` (default: the settings' workspace).

    ``host``: the address ``cocoseg serve`` binds; pages ask ``context.registration_roots``
    whether it is reachable from other machines (then datasets register from data roots only).
    """
    settings = get_settings()
    workspace = (workspace or default_workspace()).ensure()
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PAGES_DIR),
        assets_folder=str(ASSETS_DIR),
        assets_ignore=r"demo/.*",
        external_stylesheets=VENDOR_STYLESHEETS,
        title="cocoseg",
        suppress_callback_exceptions=True,
        update_title=None,
        background_callback_manager=background_manager(workspace, settings.broker_url),
    )
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    server.config[WORKSPACE_CONFIG_KEY] = workspace
    server.config[SERVE_HOST_CONFIG_KEY] = host
    remember_workspace(workspace)
    remember_serve_host(host)
    server.after_request(_add_security_headers)
    _register_vendor_route(server)
    _register_upload_route(server)
    plotly_bundle.register(app)
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),  # a callback may move to another page
            dcc.Store(id=Review.NEXT, storage_type="session"),  # the review queue, for Annotate's "next"
            _navigation(),
            html.Main(dash.page_container, className="content"),
        ],
        className="app-frame",
    )
    recovered = reconcile_runs(workspace)
    if recovered:
        logger.warning(
            "marked %d job(s) interrupted whose process had ended: %s", len(recovered), ", ".join(recovered)
        )
    logger.info("app created for workspace %s", workspace.root)
    return app
