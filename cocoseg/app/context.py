"""Per-app context that page layouts and callbacks read from the serving Flask app.

The workspace is attached to the Flask config by ``create_app``; pages read it
here instead of importing the app object (dash pages docs: pages never import app).
"""

from __future__ import annotations

from pathlib import Path

import flask

from cocoseg.pipeline.core import Settings, Workspace, get_settings

WORKSPACE_CONFIG_KEY = "COCOSEG_WORKSPACE"
SERVE_HOST_CONFIG_KEY = "COCOSEG_SERVE_HOST"  # the address ``cocoseg serve`` binds (``create_app``)
UPLOAD_ROUTE = "/uploads/"  # + "<key>.jpg": an upload's display picture (cocoseg.app.main serves it)


_process_workspace: Workspace | None = None
_process_host: str = "127.0.0.1"


def remember_workspace(workspace: Workspace) -> None:
    """Record the served workspace for background jobs, which run outside any request."""
    global _process_workspace
    _process_workspace = workspace


def current_workspace() -> Workspace:
    """The workspace of the app serving the current request (or, in a background job,
    the one the serving process recorded; a Celery worker falls back to the settings)."""
    if flask.has_app_context():
        return flask.current_app.config[WORKSPACE_CONFIG_KEY]
    if _process_workspace is not None:
        return _process_workspace
    from cocoseg.pipeline.core import default_workspace

    return default_workspace()


def current_settings() -> Settings:
    """Process settings (read once from the environment)."""
    return get_settings()


def remember_serve_host(host: str) -> None:
    """Record the address the server binds, for background jobs (as ``remember_workspace``)."""
    global _process_host
    _process_host = host


def serve_host() -> str:
    """The address this app is served on (``cocoseg serve --host``)."""
    if flask.has_app_context():
        return flask.current_app.config.get(SERVE_HOST_CONFIG_KEY, _process_host)
    return _process_host


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve to anything: treat as reachable from others


def registration_roots() -> tuple[Path, ...] | None:
    """Where the app may register datasets from: None (anywhere) on a loopback address, else
    the configured data roots (``COCOSEG_DATA_ROOTS``; none configured refuses every path)."""
    if is_loopback(serve_host()):
        return None
    return current_settings().data_roots


def browse_roots() -> tuple[Path, ...]:
    """The folders the add-dataset form's browser may show: the data roots, else (served on a
    loopback address only) the user's home folder."""
    roots = current_settings().data_roots
    if roots or not is_loopback(serve_host()):
        return roots
    return (Path.home().resolve(),)
