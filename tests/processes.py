"""Helpers for tests that run openami's commands as real processes beside NATS."""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openami.bus.nats import JetStreamBus


def nats_reason() -> str | None:
    """Why NATS cannot be used here, or None when it answers on 127.0.0.1:4222."""
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1.0):
            return None
    except OSError as exc:
        return f"NATS is not reachable on 127.0.0.1:4222 ({exc.strerror})"


def free_headend_port() -> int:
    """A port free on loopback for UDP and for TCP (the head-end listens on both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise OSError("no port free for both UDP and TCP")


def openami(*args: str) -> list[str]:
    """The command line of ``openami ARGS`` in this interpreter's environment."""
    return [str(Path(sys.executable).parent / "openami"), *args]


def nats_stream(kind: str) -> Iterator[str]:
    """A stream of its own on the real NATS server (skipping, saying why, when there is
    none), deleted afterwards: yield from it in a fixture."""
    reason = nats_reason()
    if reason is not None:
        pytest.skip(reason)
    name = f"{kind}_{uuid.uuid4().hex[:10]}"
    yield name
    bus = JetStreamBus(stream=name, prefix=f"{name}.")
    bus.delete_stream()
    bus.close()
