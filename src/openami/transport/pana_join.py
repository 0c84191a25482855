"""The HEMS side of a B-route join without a dongle: a blocking PANA exchange over UDP 716
from a given local address, for HEMS software on the meters' own network (the lab's
loopback stands for the Wi-SUN link). The meter admits that address once it succeeds."""

from __future__ import annotations

import socket
import time

from openami.errors import SecurityError, TransportError
from openami.protocols.wisun.pana import PANA_PORT, ClientState, PanaClient, PanaSession

__all__ = ["join"]


def join(
    meter: str,
    rbid: str,
    password: str,
    *,
    bind: str = "0.0.0.0",  # noqa: S104 -- the HEMS's own address; a caller names one
    timeout: float = 10.0,
    port: int = PANA_PORT,
) -> PanaSession:
    """Authenticate to the meter at ``meter`` with the B-route ID and password; the session,
    or ``SecurityError`` (refused) / ``TransportError`` (no answer in ``timeout`` s)."""
    client = PanaClient(rbid, password)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind, port))
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot bind {bind}:{port} (UDP) to join: {exc.strerror}") from None
    began = time.monotonic()
    try:
        for datagram in client.start(time.monotonic()):
            sock.sendto(datagram, (meter, port))
        while client.state not in (ClientState.OPEN, ClientState.FAILED):
            now = time.monotonic()
            if now - began > timeout:
                raise TransportError(f"no B-route join with {meter} within {timeout:g} s")
            deadline = client.next_deadline()
            wait = min(0.2, max(0.0, (deadline - now) if deadline is not None else 0.2))
            sock.settimeout(max(wait, 0.001))
            try:
                data, source = sock.recvfrom(4096)
            except TimeoutError:
                for datagram in client.on_timeout(time.monotonic()):
                    sock.sendto(datagram, (meter, port))
                continue
            if source[0] != meter:
                continue
            for datagram in client.receive(data, time.monotonic()):
                sock.sendto(datagram, (meter, port))
        # the last answer (the PAN completing the exchange) has gone out above
        if client.state is ClientState.FAILED or client.session is None:
            raise SecurityError(f"the meter at {meter} refused the B-route join: {client.reason}")
        return client.session
    finally:
        sock.close()
