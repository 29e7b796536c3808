"""Serve plotly.js's cartesian bundle in place of the full one when it is installed.

``dcc.Graph`` loads plotly.js the first time a graph mounts, from Dash's copy of the
full bundle (4.8 MB, every trace type). The app draws only cartesian traces (bar,
scatter, heatmap, image), which plotly's own cartesian distribution holds in 1.5 MB.
``make`` installs that distribution from the npm registry (``package.json``, pinned to
the plotly.js version that the installed plotly.py was built for) into
``node_modules``; nothing of it is committed.

When the bundle is there and its version matches, the app answers Dash's plotly.js URL
with it; otherwise (no npm, another version) Dash serves the full bundle as usual and the
log says why. ``COCOSEG_PLOTLY_BUNDLE=full`` forces the full bundle (the benchmark
compares both), and a path names another bundle file.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import dash
import flask

logger = logging.getLogger(__name__)

PACKAGE = "plotly.js-cartesian-dist-min"
BUNDLE_FILE = "plotly-cartesian.min.js"
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
ENVIRONMENT_VARIABLE = "COCOSEG_PLOTLY_BUNDLE"
FULL = "full"
# the trace modules of plotly's cartesian distribution (its README); figures must stay within them
TRACE_TYPES = frozenset(
    {
        "bar",
        "box",
        "contour",
        "heatmap",
        "histogram",
        "histogram2d",
        "histogram2dcontour",
        "image",
        "pie",
        "scatter",
        "scatterternary",
        "violin",
    }
)
# Dash's URL for its copy of plotly.js, with or without the cache-busting fingerprint
_DASH_PLOTLY_PATH = r"_dash-component-suites/plotly/package_data/plotly(\.v[\w-]+)?\.min\.js"


def expected_version() -> str:
    """The plotly.js version the installed plotly.py writes figures for."""
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()


def find_bundle(node_modules: Path = NODE_MODULES) -> Path | None:
    """The cartesian bundle to serve, or None for Dash's full bundle (with the reason logged)."""
    chosen = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if chosen == FULL:
        logger.info("plotly.js: the full bundle (%s=%s)", ENVIRONMENT_VARIABLE, FULL)
        return None
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            logger.warning(
                "plotly.js: %s names %s, which is not a file; serving the full bundle",
                ENVIRONMENT_VARIABLE,
                path,
            )
            return None
        return path
    package = node_modules / PACKAGE
    try:
        version = json.loads((package / "package.json").read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        logger.info(
            "plotly.js: %s is not installed (make installs it with npm); serving the full bundle", PACKAGE
        )
        return None
    if version != expected_version():
        logger.warning(
            "plotly.js: %s %s does not match plotly.py's plotly.js %s (run make); serving the full bundle",
            PACKAGE,
            version,
            expected_version(),
        )
        return None
    bundle = package / BUNDLE_FILE
    return bundle if bundle.is_file() else None


def register(app: dash.Dash, bundle: Path | None = None) -> Path | None:
    """Answer Dash's plotly.js URL with ``bundle`` (default: ``find_bundle()``); returns what is served."""
    bundle = bundle if bundle is not None else find_bundle()
    if bundle is None:
        return None
    prefix = app.config.requests_pathname_prefix or "/"
    pattern = re.compile("^" + re.escape(prefix) + _DASH_PLOTLY_PATH + "$")

    @app.server.before_request
    def serve_cartesian_plotly():
        if flask.request.method == "GET" and pattern.match(flask.request.path):
            # conditional: the browser revalidates with its ETag and gets 304 on every later visit
            return flask.send_file(
                bundle, mimetype="application/javascript", conditional=True, etag=True, max_age=0
            )
        return None

    logger.info("plotly.js: serving %s (%.1f MB) for the app's graphs", bundle, bundle.stat().st_size / 1e6)
    return bundle
