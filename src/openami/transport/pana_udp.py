"""The meter side of the B-route join on UDP port 716 (asyncio): one ``PanaServer`` per PaC.

``serve_pana(host, factory)`` binds ``host:716`` and hands every PaC address its own PAA from
``factory(address)``; a PANA-Client-Initiation from an address whose PAA is past the start
(a dongle that reset and joins again) gets a fresh one. Retransmissions run on the event loop's
clock. ``admitted`` maps each PaC address to its open ``PanaSession``; the ECHONET Lite side of
the meter asks ``session_for(ip)`` whether a HEMS at that address (its port 3610 differs from
716) may be served. At most ``max_peers`` PaCs are tracked: the oldest one that is not open
makes room first.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import cast

from openami.errors import AmiError, TransportError
from openami.log import get_logger
from openami.protocols.wisun.pana import PANA_PORT, PanaServer, PanaSession, ServerState
from openami.protocols.wisun.pana_message import MessageType, decode_message

__all__ = ["PanaFactory", "PanaUdpServer", "serve_pana"]

log = get_logger("transport.pana")
Address = tuple[str, int]
PanaFactory = Callable[[Address], PanaServer]


class PanaUdpServer(asyncio.DatagramProtocol):
    def __init__(self, factory: PanaFactory, max_peers: int = 256) -> None:
        self._factory = factory
        self._max_peers = max_peers
        self._servers: dict[Address, PanaServer] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def admitted(self) -> dict[Address, PanaSession]:
        return {
            address: server.session
            for address, server in self._servers.items()
            if server.state is ServerState.OPEN and server.session is not None
        }

    def session_for(self, ip: str) -> PanaSession | None:
        """The open session of a PaC at ``ip`` (any port), if there is one."""
        return next((s for (host, _), s in self.admitted.items() if host == ip), None)

    def completing(self, ip: str) -> bool:
        """Whether a PaC at ``ip`` has been told it succeeded and its last answer (the PAN
        that opens the session) has not arrived yet."""
        return any(
            host == ip and server.state is ServerState.COMPLETING
            for (host, _), server in list(self._servers.items())
        )

    def forget(self, rbid: str) -> int:
        """Drop every session of ``rbid`` (its password was revoked); how many there were."""
        gone = [a for a, s in self._servers.items() if s.rbid == rbid]
        for address in gone:
            del self._servers[address]
        return len(gone)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        peer = (str(addr[0]), int(addr[1]))
        now = asyncio.get_running_loop().time()
        try:
            initiation = decode_message(data).type is MessageType.CLIENT_INITIATION
        except AmiError as exc:
            log.info("datagram dropped", extra={"fields": {"peer": peer, "reason": str(exc)}})
            return
        server = self._servers.get(peer)
        fresh = server is None or server.state not in (ServerState.IDLE, ServerState.STARTING)
        if initiation and fresh:
            if server is None:
                self._make_room()
            server = self._servers[peer] = self._factory(peer)
        if server is None:
            return
        before = server.state
        try:
            self._send(server.receive(data, now), peer)
        except AmiError as exc:
            log.info("PANA message refused", extra={"fields": {"peer": peer, "reason": str(exc)}})
        if server.state is not before and server.state in (ServerState.OPEN, ServerState.FAILED):
            fields = {"peer": peer, "rbid": server.rbid, "reason": server.reason}
            log.info(f"PANA {server.state.name.lower()}", extra={"fields": fields})
        self._arm()

    def _make_room(self) -> None:
        while len(self._servers) >= self._max_peers:
            idle = [a for a, s in self._servers.items() if s.state is not ServerState.OPEN]
            del self._servers[(idle or list(self._servers))[0]]

    def _send(self, datagrams: list[bytes], peer: Address) -> None:
        if self._transport is not None:
            for datagram in datagrams:
                self._transport.sendto(datagram, peer)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [d for s in self._servers.values() if (d := s.next_deadline()) is not None]
        if deadlines and self._transport is not None:
            self._timer = asyncio.get_running_loop().call_at(min(deadlines), self._tick)

    def _tick(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        for peer, server in list(self._servers.items()):
            deadline = server.next_deadline()
            if deadline is not None and now >= deadline:
                self._send(server.on_timeout(now), peer)
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None


async def serve_pana(
    host: str, factory: PanaFactory, *, port: int = PANA_PORT, max_peers: int = 256
) -> PanaUdpServer:
    """Listen on ``host:port`` (SO_REUSEADDR, so that other services of the same meter may
    share the address); ``close()`` the returned server to stop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot listen on {host}:{port} (UDP): {exc.strerror}") from None
    server = PanaUdpServer(factory, max_peers)
    loop = asyncio.get_running_loop()
    try:
        await loop.create_datagram_endpoint(lambda: server, sock=sock)
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot serve PANA on {host}:{port}: {exc.strerror}") from None
    return server
