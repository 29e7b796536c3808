"""Per-app context that page layouts and callbacks read from the serving Flask app.

The workspace is attached to the Flask config by ``create_app``; pages read it
here instead of importing the app object (dash pages docs: pages never import app).
"""

from __future__ import annotations

import flask

from pipeline.settings import Settings, get_settings
from pipeline.workspace import Workspace

WORKSPACE_CONFIG_KEY = "COCOSEG_WORKSPACE"


def current_workspace() -> Workspace:
    """The workspace of the app serving the current request."""
    return flask.current_app.config[WORKSPACE_CONFIG_KEY]


def current_settings() -> Settings:
    """Process settings (read once from the environment)."""
    return get_settings()
