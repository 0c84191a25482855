"""Helpers shared by tests of more than one package."""

from __future__ import annotations

import socket

from hypothesis import settings

from openami.fleet.fleet import Fleet
from openami.headend.keystore import KeyStore

# Timing belongs in benchmarks, not in tests: on a busy 2-core machine one example can take
# longer than Hypothesis's default 200 ms deadline without anything being wrong.
settings.register_profile("openami", deadline=None)
settings.load_profile("openami")


def provisioned_keys(fleet: Fleet) -> KeyStore:
    """A head-end key store holding every meter of ``fleet``, as from a key shipment."""
    keys = KeyStore()
    keys.provision_all(fleet.identities())
    return keys


def free_port(count: int = 1) -> int:
    """A TCP port on loopback that nothing listens on right now, and with ``count`` > 1 the
    first of that many consecutive free ports (lab meters with ``--per-port`` take one each)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = int(s.getsockname()[1])
        if first + count - 1 > 65535:
            continue
        held = []
        try:
            for port in range(first, first + count):
                probe = socket.socket()
                held.append(probe)
                probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for probe in held:
                probe.close()
        return first
    raise RuntimeError(f"no {count} consecutive free ports on loopback")
