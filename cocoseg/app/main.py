"""The Dash app: frame, side navigation from the page registry, vendor assets (Bootstrap, plotly.js), limits.

``create_app`` builds a fresh app per call (tests build several); the pages under
``app/pages`` register themselves, and ``CALLBACK_MODULES`` (a page's callbacks that live
beside it in ``app/``) are executed again for each app. The web process never imports TensorFlow. Access
(Host check, token) is ``cocoseg.app.access``, installed here in front of every route;
the response headers (Content-Security-Policy, nosniff) are set here.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
import flask
from dash import dcc, html
from werkzeug.exceptions import InternalServerError

from cocoseg.app import access, limits, plotly_bundle
from cocoseg.app.context import (
    SERVE_HOST_CONFIG_KEY,
    UPLOAD_ROUTE,
    WORKSPACE_CONFIG_KEY,
    remember_serve_host,
    remember_workspace,
)
from cocoseg.app.ids import Frame, Review
from cocoseg.app.jobs import background_manager
from cocoseg.pipeline.core import (
    ASSETS_DIR,
    UnsafePathError,
    Workspace,
    default_workspace,
    get_settings,
)
from cocoseg.pipeline.core.settings import DEFAULT_HOST
from cocoseg.pipeline.jobs import reconcile_runs

logger = logging.getLogger(__name__)

PAGES_DIR = Path(__file__).resolve().parent / "pages"
VENDOR_ROUTE = "/vendor/bootstrap/"
# Content-Security-Policy of the app's responses. script-src: the app's own files and the
# hashes of Dash's inline scripts (its renderer start-up, inline clientside callbacks), so
# no injected inline script or event-handler attribute runs. 'unsafe-eval' is there for
# dash-canvas alone: its fabric.js builds every object's accessors with `new Function`, and
# the Annotate editor does not start without it; the app is one document whose policy
# comes from whichever page loaded first, so it cannot be given to /annotate only. Styles
# stay 'unsafe-inline': React, Plotly and fabric set inline styles, Plotly adds <style> rules.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'",
    "script-src 'self' 'unsafe-eval' {hashes}",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
)
VENDOR_STYLESHEETS = [
    VENDOR_ROUTE + "bootstrap5/css/bootstrap.min.css",
    VENDOR_ROUTE + "bootstrap5/css/font/bootstrap-icons.min.css",
]


def _bootstrap_static_root() -> Path:
    import flask_bootstrap

    return Path(flask_bootstrap.__file__).resolve().parent / "static"


def served_folders(server: flask.Flask | None = None) -> list[Path]:
    """Folders whose files the app serves to any visitor: Dash's assets, Flask's static folder,
    the vendored Bootstrap files."""
    folders = [ASSETS_DIR, _bootstrap_static_root()]
    if server is not None and server.static_folder:
        folders.append(Path(server.static_folder))
    return [folder.resolve() for folder in folders]


def refuse_served_home(home: Path, server: flask.Flask | None = None) -> None:
    """Raise (one line) when the workspace sits inside a folder the app serves: every file of
    it (uploads, annotations, the cache) would be downloadable."""
    home = Path(home).expanduser().resolve()
    for folder in served_folders(server):
        if home == folder or folder in home.parents:
            raise UnsafePathError(
                f"COCOSEG_HOME {home} is inside {folder}, which the app serves to browsers; "
                "choose a workspace outside it"
            )


def _register_vendor_route(server: flask.Flask) -> None:
    """Serve Bootstrap 5 and its icon font from the installed bootstrap-flask wheel.

    The app works offline: no CDN, and nothing third-party copied into the repository.
    ``send_from_directory`` refuses paths that leave the package's static folder.
    """
    static_root = _bootstrap_static_root()

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
        response.headers["Content-Disposition"] = f'inline; filename="{key}.jpg"'
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    @server.before_request
    def refuse_unmatched_upload_paths():
        # as for the vendor route: a path under the prefix that is not '<key>.jpg' would
        # otherwise fall through to Dash's catch-all page route with a 200
        if flask.request.path.startswith(UPLOAD_ROUTE) and flask.request.endpoint != "upload_picture":
            flask.abort(404)


def content_security_policy(app: dash.Dash) -> str:
    """The policy for ``app``: its own scripts and the hashes of its inline ones."""
    return "; ".join(CONTENT_SECURITY_POLICY).format(hashes=" ".join(app.csp_hashes()))


def _security_headers(app: dash.Dash) -> Callable[[flask.Response], flask.Response]:
    cached: dict[int, str] = {}

    def add_security_headers(response: flask.Response) -> flask.Response:
        # the inline scripts are known once the pages are imported; a new one (a page's
        # clientside callback registered later) changes the count and the policy with it
        count = len(app._inline_scripts) + len(dash._callback.GLOBAL_INLINE_SCRIPTS)
        if count not in cached:
            cached.clear()
            cached[count] = content_security_policy(app)
        response.headers.setdefault("Content-Security-Policy", cached[count])
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return add_security_headers


def _generic_server_error(_error: InternalServerError) -> flask.Response:
    """A raising callback or route: one line, no traceback, no exception text (the log has them)."""
    response = flask.make_response("500 Internal Server Error\n", 500)
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
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


# Modules beside the pages whose ``@callback``s belong to a page: registered here, the one place.
CALLBACK_MODULES = (
    "cocoseg.app.add_dataset",
    "cocoseg.app.annotate_controls",
    "cocoseg.app.annotate_saving",
    "cocoseg.app.augmentation_preview",
    "cocoseg.app.click_to_mask",
    "cocoseg.app.correction_round",
    "cocoseg.app.explore_browser",
    "cocoseg.app.explore_stats",
    "cocoseg.app.run_actions",
)


def register_callback_modules() -> None:
    """Execute ``CALLBACK_MODULES`` so the next app gets their callbacks.

    Dash hands the callbacks registered with ``@callback`` to the first app that serves in the
    process and forgets them; it executes page files again for every app, but a module a page
    imports runs once. So a second app in one process (the tests build many) had no Cancel,
    Delete or Fine-tune callbacks until each such module runs again here.
    """
    for name in CALLBACK_MODULES:
        module = sys.modules.get(name)
        if module is None:
            importlib.import_module(name)
        else:
            importlib.reload(module)


def create_app(
    workspace: Workspace | None = None,
    policy: access.AccessPolicy | None = None,
    host: str = DEFAULT_HOST,
) -> dash.Dash:
    """Build the multi-page app for ``workspace`` (default: the settings' workspace).

    ``host``: the address ``cocoseg serve`` binds; pages ask ``context.registration_roots``
    whether it is reachable from other machines (then datasets register from data roots only).
    ``policy``: who may use it (``cocoseg.app.access``); default, the policy for ``host`` on the
    settings' port (no token on loopback unless ``COCOSEG_TOKEN_REQUIRED`` asks for one).
    A workspace inside a folder the app serves is refused (``UnsafePathError``).
    """
    settings = get_settings()
    workspace = workspace or default_workspace()
    refuse_served_home(workspace.root)
    workspace = workspace.ensure()
    register_callback_modules()
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
    refuse_served_home(workspace.root, server)
    server.after_request(_security_headers(app))
    server.register_error_handler(InternalServerError, _generic_server_error)
    policy = policy or access.access_policy(host, settings.port, settings)
    access.install(server, policy)
    shared = policy.token is not None
    limits.install(
        server, limits.rate_per_minute(settings.job_starts_per_minute, shared), settings.job_start_burst
    )
    _register_vendor_route(server)
    _register_upload_route(server)
    plotly_bundle.register(app)
    app.layout = html.Div(
        [
            dcc.Location(id=Frame.URL, refresh="callback-nav"),  # a callback may move to another page
            dcc.Store(id=Review.NEXT, storage_type="session"),  # the review queue, for Annotate's "next"
            dcc.Store(id=Frame.AUGMENTATION, storage_type="local"),  # Prepare's strengths, for Train
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
