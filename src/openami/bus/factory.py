"""Pick a bus backend from one setting, so that every command takes ``--bus URL``.

``memory`` is the single-process default; ``nats://host[:port]`` is NATS JetStream on the
default stream, and ``nats://host[:port]/NAME`` on a stream of its own whose subjects live
under ``NAME.`` on the wire (a separate system, or a test run, sharing the server).
Anything else is a configuration mistake and says so, rather than falling back to memory and
silently losing durability.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from openami.bus.base import Bus
from openami.errors import ConfigError

__all__ = ["bus_from_url"]

_FORMS = "'memory' or 'nats://host[:port][/STREAM]'"
_STREAM = re.compile(r"/([A-Za-z0-9_-]{1,64})/?")


def bus_from_url(url: str) -> Bus:
    """The bus named by ``url``: ``memory`` -> MemoryBus, ``nats://host[:port]`` ->
    JetStreamBus (port 4222 by default; connects now, BusError if it cannot)."""
    text = url.strip()
    if text == "memory":
        from openami.bus.memory import MemoryBus

        return MemoryBus()
    parts = urlsplit(text)
    if parts.scheme != "nats":
        raise ConfigError(f"bus URL {url!r}: expected {_FORMS}")
    try:
        port = parts.port or 4222
    except ValueError:
        raise ConfigError(f"bus URL {url!r}: the port is not a number in 1..65535") from None
    named = _STREAM.fullmatch(parts.path)
    if not parts.hostname or (parts.path not in ("", "/") and not named):
        raise ConfigError(f"bus URL {url!r}: expected {_FORMS}, nothing more")
    if parts.query or parts.fragment:
        raise ConfigError(f"bus URL {url!r}: expected {_FORMS}, nothing more")
    if parts.username or parts.password:
        raise ConfigError(f"bus URL {url!r}: credentials in the URL are not supported")
    from openami.bus.nats import JetStreamBus

    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if named:
        name = named.group(1)
        return JetStreamBus(f"nats://{host}:{port}", stream=name, prefix=f"{name}.")
    return JetStreamBus(f"nats://{host}:{port}")
