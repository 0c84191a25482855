"""Where a webhook may be sent: the checks on a subscriber's callback URL."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from openami.errors import ConfigError

__all__ = ["check_url"]

_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def check_url(url: str) -> str:
    """The callback URL if acceptable: ``https://`` to a public host (no private address
    written as a literal, no user info), or ``http://`` on loopback (a receiver on the same
    machine); ``ConfigError`` otherwise."""
    if len(url) > 512:
        raise ConfigError("the callback URL is longer than 512 characters")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018  # raises ValueError on a port that is not a number
    except ValueError:
        raise ConfigError(f"{url!r} is not a URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError("the callback URL must be https:// (or http:// on loopback)")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise ConfigError("the callback URL may carry no user, password or fragment")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ConfigError("the callback URL may carry no spaces or control characters")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    loopback = host in _LOOPBACK_HOSTS or (address is not None and address.is_loopback)
    if parts.scheme == "http" and not loopback:
        raise ConfigError("http:// callbacks only on loopback (127.0.0.1, ::1, localhost)")
    if address is not None and not loopback and not address.is_global:
        raise ConfigError(f"{host} is not a public address")
    return url
