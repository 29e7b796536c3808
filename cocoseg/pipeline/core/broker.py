"""The Celery broker URL: its password never printed, and no password-less broker on the network.

One home for both rules, used by the settings (checked when they are read, so every command
refuses at start), the web app's job manager, ``cocoseg worker`` and ``cocoseg doctor``.

- ``redacted(url)`` masks ``user:PASSWORD@`` and a ``?password=`` query value: every message,
  log line or page that names the broker goes through it.
- ``check_broker_url(url, allow_insecure)`` refuses a Redis URL without a password whose host is
  not loopback (anyone who reaches that Redis can queue jobs into the workers, and read results)
  unless ``COCOSEG_BROKER_INSECURE=1`` says the user means it (a private network, TLS tunnel).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qs, urlsplit

INSECURE_VARIABLE = "COCOSEG_BROKER_INSECURE"
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def redacted(url: str) -> str:
    """The URL without its password (``user:PASSWORD@`` or ``?password=``), for messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
        host, port = parts.hostname or "", parts.port
    except ValueError:  # a malformed port or netloc: hide everything between :// and @
        return re.sub(r"(://)[^@/]*@", r"\1***@", re.sub(r"([?&]password=)[^&#]*", r"\1***", url))
    if password is not None:
        user = f"{parts.username}:" if parts.username else ":"
        url = parts._replace(netloc=f"{user}***@{host}" + (f":{port}" if port else "")).geturl()
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url)


def _has_password(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.password) or bool(parse_qs(parts.query).get("password"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_broker_url(url: str, allow_insecure: bool = False) -> None:
    """Refuse a broker any host on the network could use: no password and not on loopback.

    A ``unix://`` socket is local by nature; ``rediss://`` encrypts but still needs a password.

    Raises:
        ValueError: the URL cannot be parsed, or it has no password on a non-loopback host and
            ``allow_insecure`` is False (the message names ``COCOSEG_BROKER_INSECURE``).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - parses the port, which raises for a bad one
    except ValueError as error:
        raise ValueError(f"COCOSEG_BROKER_URL {redacted(url)} cannot be parsed: {error}") from None
    if parts.scheme == "unix" or is_loopback(host) or _has_password(url) or allow_insecure:
        return
    raise ValueError(
        f"COCOSEG_BROKER_URL {redacted(url)} has no password and its host {host or '(none)'} is not this "
        "machine: anyone who reaches that Redis could queue jobs for the workers. Set a password "
        "(redis://:PASSWORD@host:6379/0, and requirepass in redis.conf), or set "
        f"{INSECURE_VARIABLE}=1 if this network is private and you accept the risk."
    )
