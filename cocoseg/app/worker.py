"""The Celery application that ``cocoseg worker`` (or ``celery -A cocoseg.app.worker worker``) runs.

A Dash background callback becomes a Celery task when its page is imported: Dash
registers every background callback with every manager that exists. Importing this
module therefore builds the Dash app once, exactly as the web server does, so that the
worker knows every task the server can send (same page sources, same task names). The
Dash server itself is never started here.

Nothing here imports TensorFlow: pages reach models through ONNX Runtime, and a task
only starts and watches its job, which runs in a new interpreter (``cocoseg.pipeline.jobs.runner``),
so a pool process never holds TensorFlow state from one task to the next.
"""

from __future__ import annotations

import logging

from dash import CeleryManager

from cocoseg.app.main import create_app
from cocoseg.pipeline.core import Workspace, get_settings

logger = logging.getLogger(__name__)


class WorkerConfigurationError(RuntimeError):
    """The worker cannot start with these settings; the message says what to set."""


def _build_celery_app():
    """Build the Dash app in Celery mode and return the Celery application behind its manager."""
    settings = get_settings()
    if not settings.broker_url:
        raise WorkerConfigurationError(
            "COCOSEG_BROKER_URL is not set: a worker takes its jobs from Redis. Set it to the URL the web app uses, "
            "e.g. COCOSEG_BROKER_URL=redis://127.0.0.1:6379/0, then start `cocoseg worker`."
        )
    dash_app = create_app(Workspace(settings.home))
    # Dash keeps the manager it was given on this attribute; there is no public getter.
    manager = dash_app._background_manager
    if not isinstance(manager, CeleryManager):
        raise WorkerConfigurationError(
            f"the app's background manager is {type(manager).__name__}, not Celery; check COCOSEG_BROKER_URL"
        )
    tasks = sorted(name for name in manager.handle.tasks if name.startswith("background_callback_"))
    logger.info("cocoseg worker for workspace %s knows %d background job(s)", settings.home, len(tasks))
    return manager.handle


celery_app = _build_celery_app()
app = celery_app  # the name `celery -A cocoseg.app.worker` looks for first
