"""Per-app context that page layouts and callbacks read from the serving Flask app.

The workspace is attached to the Flask config by ``create_app``; pages read it
here instead of importing the app object (dash pages docs: pages never import app).
"""

from __future__ import annotations

import flask

from cocoseg.pipeline.core import Settings, Workspace, get_settings

WORKSPACE_CONFIG_KEY = "COCOSEG_WORKSPACE"
UPLOAD_ROUTE = "/uploads/"  # + "<key>.jpg": an upload's display picture (cocoseg.app.main serves it)


_process_workspace: Workspace | None = None


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
