"""Run the app: waitress (a production WSGI server, pure Python) by default, Werkzeug with ``dev``.

Waitress settings:

- ``threads`` (``COCOSEG_SERVER_THREADS``, default 8): callbacks block their thread while they
  run (a Segment prediction, a statistics pass); background-callback polls are short. Eight
  lets a few slow callbacks run while the rest of the page keeps answering; the work itself
  is bounded by the CPU, not by threads.
- ``max_request_body_size`` = ``COCOSEG_MAX_REQUEST_MB``: a larger body gets 413 before the
  app reads it (Flask's ``MAX_CONTENT_LENGTH`` says the same to the dev server).
- ``channel_timeout`` 120 s: an idle connection (nothing sent, no request running) is closed,
  so slow or abandoned clients do not hold sockets; ``connection_limit`` 200.
- ``expose_tracebacks`` off. Proxy headers are dropped unless ``COCOSEG_TRUSTED_PROXY`` names the
  reverse proxy in front: then its ``X-Forwarded-For/-Proto/-Host/-Port`` (one hop) set the
  client address (its own job-start bucket), the scheme (an HTTPS proxy makes the token cookie
  ``Secure``) and the host (which must then be in ``COCOSEG_ALLOWED_HOSTS``). From any other
  address they are dropped, so a client cannot forge them. ``--dev`` believes none.

Debug mode is off in both; a raising callback answers a one-line 500 (``cocoseg.app.main``).
"""

from __future__ import annotations

import dash

from cocoseg.pipeline.core import Settings

CHANNEL_TIMEOUT_S = 120
CONNECTION_LIMIT = 200


def waitress_options(settings: Settings) -> dict:
    """The keyword arguments ``waitress.serve`` gets (besides host and port)."""
    return {
        "threads": settings.server_threads,
        "max_request_body_size": settings.max_request_bytes,
        "channel_timeout": CHANNEL_TIMEOUT_S,
        "connection_limit": CONNECTION_LIMIT,
        "expose_tracebacks": False,
        "clear_untrusted_proxy_headers": True,
        "ident": "waitress",
        **_proxy_options(settings.trusted_proxy),
    }


def _proxy_options(trusted_proxy: str) -> dict:
    if not trusted_proxy:
        return {}
    return {
        "trusted_proxy": trusted_proxy,
        "trusted_proxy_count": 1,
        "trusted_proxy_headers": {
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-forwarded-port",
        },
    }


def run(app: dash.Dash, host: str, port: int, settings: Settings, dev: bool = False) -> None:
    """Serve ``app`` on ``host``:``port`` until interrupted."""
    if dev:
        app.run(host=host, port=port, debug=False)
        return
    import waitress

    waitress.serve(app.server, host=host, port=port, **waitress_options(settings))
