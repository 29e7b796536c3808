"""Who may talk to the app: a Host allow-list and, beyond loopback, a token (as Jupyter and TensorBoard do).

``AccessMiddleware`` wraps the Flask app's WSGI callable, so it runs before any route,
Dash's own (``/_dash-*``, ``/assets/…``, the component suites and the plotly bundle)
included, and before Flask even matches the path:

1. **Host check.** A request whose ``Host`` header is not an allowed name gets 400. This
   stops DNS rebinding: a web page on ``evil.example`` that makes its name resolve to
   127.0.0.1 still sends ``Host: evil.example``. Allowed: the bound address, ``localhost``,
   ``127.0.0.1`` and ``[::1]`` (for an SSH tunnel), the names in ``COCOSEG_ALLOWED_HOSTS``,
   and, when bound to every interface (``0.0.0.0``/``::``), this machine's host name and
   any IP address literal (a rebinding attack always carries the attacker's *name*; a
   browser sends an IP literal only when the user typed or clicked that address).
2. **Token**, when the policy has one (always beyond loopback; on loopback with
   ``--token-required`` / ``COCOSEG_TOKEN_REQUIRED=1``). A request is let through with
   the token's cookie, or ``Authorization: Bearer <token>`` (scripts). A ``GET`` with
   ``?token=<token>`` sets the cookie (HttpOnly, SameSite=Strict, Secure behind HTTPS) and
   redirects to the same URL without the token, so it leaves the address bar and the
   history. Anything else gets 401 and no data: a browser asking for a page gets a tiny
   login form (paste the token), everything else one line of text. Comparisons are
   constant-time (``hmac.compare_digest``); the cookie holds an HMAC of the token, not
   the token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import html
import ipaddress
import secrets
import socket
import urllib.parse
from collections.abc import Callable, Iterable

from werkzeug.wrappers import Request, Response

from cocoseg.pipeline.core import Settings

LOGIN_PATH = "/_cocoseg/login"
TOKEN_PARAMETER = "token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", ""})
# the middleware's own answers (login page, refusals) load nothing and run no script
OWN_RESPONSE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the app on this machine (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_name(header: str | None) -> str | None:
    """The name part of a ``Host`` header, lower-cased, without port or brackets; None if malformed."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):
        name, bracket, rest = header[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name if _is_ip_literal(name) else None
    name, colon, port = header.partition(":")
    if colon and not port.isdigit():
        return None
    name = name.rstrip(".")
    return name or None


@dataclasses.dataclass(frozen=True)
class AccessPolicy:
    """What the middleware enforces; ``token`` None means no token is needed."""

    allowed_hosts: frozenset[str]
    any_ip_literal: bool = False
    token: str | None = dataclasses.field(default=None, repr=False)
    cookie_name: str = "cocoseg-token"

    def host_allowed(self, header: str | None) -> bool:
        name = host_name(header)
        if name is None:
            return False
        return name in self.allowed_hosts or (self.any_ip_literal and _is_ip_literal(name))

    def cookie_value(self) -> str:
        """What the cookie holds: an HMAC of the token (the token itself never sits in the cookie jar)."""
        assert self.token is not None
        return hmac.new(self.token.encode(), b"cocoseg-session", hashlib.sha256).hexdigest()

    def token_matches(self, candidate: str | None) -> bool:
        if self.token is None or not candidate:
            return False
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def cookie_matches(self, candidate: str | None) -> bool:
        if self.token is None or not candidate:
            return False
        return hmac.compare_digest(candidate.encode(), self.cookie_value().encode())


def machine_names() -> set[str]:
    """This machine's own host names (for a server bound to every interface)."""
    names = set()
    for lookup in (socket.gethostname, socket.getfqdn):
        try:
            names.add(lookup().lower().rstrip("."))
        except OSError:
            pass
    return {name for name in names if name}


def access_policy(
    host: str,
    port: int,
    settings: Settings,
    *,
    token_required: bool = False,
    new_token: Callable[[], str] = lambda: secrets.token_urlsafe(32),
) -> AccessPolicy:
    """The policy for serving on ``host``:``port``: a token beyond loopback or when asked for one
    (``COCOSEG_TOKEN``, else a new random one), and the names the Host header may carry."""
    bound = host.strip().strip("[]").lower()
    wildcard = bound in WILDCARD_ADDRESSES
    allowed = set(LOOPBACK_NAMES) | set(settings.allowed_hosts)
    if not wildcard:
        allowed.add(bound)
    else:
        allowed |= machine_names()
    needs_token = token_required or settings.token_required or not is_loopback(host)
    token = (settings.token or new_token()) if needs_token else None
    return AccessPolicy(
        allowed_hosts=frozenset(allowed),
        any_ip_literal=wildcard,
        token=token,
        cookie_name=f"cocoseg-token-{port}",  # cookies ignore ports: one per server on a machine
    )


def login_urls(policy: AccessPolicy, host: str, port: int) -> list[str]:
    """Ready-to-click addresses to print on start (with ``?token=`` when one is needed)."""
    bound = host.strip().strip("[]")
    if bound.lower() in WILDCARD_ADDRESSES:
        hosts = sorted(machine_names())[:1] + ["127.0.0.1"]
    else:
        hosts = [bound]
    query = f"/?{TOKEN_PARAMETER}={urllib.parse.quote(policy.token, safe='')}" if policy.token else "/"
    return [f"http://{f'[{name}]' if ':' in name else name}:{port}{query}" for name in hosts]


def _local_path(target: str | None) -> str:
    """``target`` if it is a path on this server, else ``/`` (no open redirect via ``next``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _own_response(body: str, status: int, mimetype: str = "text/plain") -> Response:
    response = Response(body, status=status, mimetype=mimetype)
    response.headers.update(OWN_RESPONSE_HEADERS)
    return response


def login_page(next_path: str, message: str = "", status: int = 401) -> Response:
    """The one page served without the token: a form to paste it into."""
    next_path = html.escape(_local_path(next_path), quote=True)
    note = f"<p><strong>{html.escape(message)}</strong></p>" if message else ""
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cocoseg: sign in</title></head>
<body>
<h1>cocoseg</h1>
<p>This server needs its access token: open the address that <code>cocoseg serve</code> printed,
or paste the token here.</p>{note}
<form method="post" action="{LOGIN_PATH}">
<input type="hidden" name="next" value="{next_path}">
<label>Token <input type="password" name="{TOKEN_PARAMETER}" autocomplete="off" autofocus></label>
<button type="submit">Open</button>
</form>
<p>Already signed in on this browser? <a href="{next_path}">Continue</a>.</p>
</body></html>
"""
    return _own_response(body, status, "text/html")


class AccessMiddleware:
    """WSGI middleware enforcing an ``AccessPolicy`` in front of ``app``."""

    def __init__(self, app: Callable, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not self.policy.host_allowed(environ.get("HTTP_HOST")):
            return _own_response(
                "400 Bad Request: this Host is not allowed (add the name to COCOSEG_ALLOWED_HOSTS)\n", 400
            )(environ, start_response)
        if self.policy.token is None:
            return self.app(environ, start_response)
        request = Request(environ)
        if request.path == LOGIN_PATH:
            return self._login(request)(environ, start_response)
        offered = request.args.get(TOKEN_PARAMETER)
        if offered is not None:
            if not self.policy.token_matches(offered):
                return self._refuse(request, "wrong token")(environ, start_response)
            if request.method in ("GET", "HEAD"):
                return self._signed_in(request, _without_token(request))(environ, start_response)
            return self.app(environ, start_response)
        if self._authenticated(request):
            return self.app(environ, start_response)
        return self._refuse(request)(environ, start_response)

    def _authenticated(self, request: Request) -> bool:
        if self.policy.cookie_matches(request.cookies.get(self.policy.cookie_name)):
            return True
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() in ("bearer", "token") and self.policy.token_matches(credentials.strip())

    def _signed_in(self, request: Request, target: str) -> Response:
        response = _own_response("", 303)
        response.headers["Location"] = target
        response.set_cookie(
            self.policy.cookie_name,
            self.policy.cookie_value(),
            httponly=True,
            samesite="Strict",
            secure=request.scheme == "https",
            path="/",
        )
        return response

    def _login(self, request: Request) -> Response:
        if request.method == "POST":
            target = _local_path(request.form.get("next"))
            if self.policy.token_matches(request.form.get(TOKEN_PARAMETER, "").strip()):
                return self._signed_in(request, target)
            return login_page(target, "That token is not right.")
        if request.method in ("GET", "HEAD"):
            return login_page(request.args.get("next", "/"), status=200)
        return _own_response("405 Method Not Allowed\n", 405)

    def _refuse(self, request: Request, reason: str = "") -> Response:
        wants_page = request.method in ("GET", "HEAD") and "text/html" in request.headers.get("Accept", "")
        if wants_page:
            return login_page(_without_token(request), "That token is not right." if reason else "")
        return _own_response("401 Unauthorized: this server needs its access token\n", 401)


def _without_token(request: Request) -> str:
    """The request's path and query, less the token parameter."""
    query = [(key, value) for key, value in request.args.items(multi=True) if key != TOKEN_PARAMETER]
    path = urllib.parse.quote(request.path, safe="/:@!$&'()*+,;=-._~")
    return _local_path(path + (f"?{urllib.parse.urlencode(query)}" if query else ""))


def install(server, policy: AccessPolicy) -> AccessPolicy:
    """Put the middleware in front of the Flask ``server``'s WSGI app; returns the policy."""
    server.wsgi_app = AccessMiddleware(server.wsgi_app, policy)
    return policy
