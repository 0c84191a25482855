"""IEC 62056-4-7 wrapper over TCP and UDP (asyncio): the only sockets of Route A.

A server hands each TCP connection (or each UDP peer) its own ``Session``: wrapper frames
in, the APDU it answers out. Clients send one APDU and wait for one answer, with a timeout.
Every wait is bounded; nothing here retries on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol, cast

from openami.errors import AmiError, DecodeError, TransportError
from openami.log import get_logger
from openami.protocols.dlms.wrapper import (
    WrapperFrame,
    WrapperStreamDecoder,
    decode_wrapper,
    encode_wrapper,
)

__all__ = ["Session", "TcpWrapperClient", "UdpWrapperClient", "serve_tcp", "serve_udp"]

log = get_logger("transport.wrapper")
Address = tuple[str, int]


class Session(Protocol):
    def handle(self, apdu: bytes, source_wport: int) -> bytes | None:
        """Answer one APDU (or ``None`` for no answer)."""

    def closed(self) -> None:
        """The connection ended."""


SessionFactory = Callable[[Address], Session]


def _answer(session: Session, frame: WrapperFrame) -> bytes | None:
    try:
        reply = session.handle(frame.apdu, frame.source_wport)
    except AmiError as exc:
        log.info("request refused", extra={"fields": {"reason": str(exc)}})
        return None
    if reply is None:
        return None
    return encode_wrapper(WrapperFrame(frame.destination_wport, frame.source_wport, reply))


async def serve_tcp(host: str, port: int, factory: SessionFactory) -> asyncio.Server:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        session = factory((str(peer[0]), int(peer[1])))
        decoder = WrapperStreamDecoder()
        try:
            while data := await reader.read(65536):
                for frame in decoder.feed(data):
                    reply = _answer(session, frame)
                    if reply is not None:
                        writer.write(reply)
                await writer.drain()
        except (DecodeError, ConnectionError) as exc:
            log.info("connection dropped", extra={"fields": {"peer": peer, "reason": str(exc)}})
        finally:
            session.closed()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    try:
        return await asyncio.start_server(connection, host, port, reuse_address=True)
    except OSError as exc:
        raise TransportError(f"cannot listen on {host}:{port} (TCP): {exc.strerror}") from None


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, factory: SessionFactory) -> None:
        self.factory = factory
        self.sessions: dict[Address, Session] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector transport implements DatagramTransport without subclassing it
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        peer = (str(addr[0]), int(addr[1]))
        try:
            frame = decode_wrapper(data)
        except DecodeError as exc:
            log.info("datagram dropped", extra={"fields": {"peer": peer, "reason": str(exc)}})
            return
        session = self.sessions.get(peer)
        if session is None:
            session = self.sessions[peer] = self.factory(peer)
        reply = _answer(session, frame)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, peer)


async def serve_udp(host: str, port: int, factory: SessionFactory) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpServer(factory), local_addr=(host, port), reuse_port=True
        )
    except OSError as exc:
        raise TransportError(f"cannot listen on {host}:{port} (UDP): {exc.strerror}") from None
    return transport


class TcpWrapperClient:
    """One TCP connection to a meter: send an APDU, wait for its answer."""

    def __init__(self, client_wport: int = 1, server_wport: int = 1, timeout: float = 5.0) -> None:
        self.client_wport, self.server_wport, self.timeout = client_wport, server_wport, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = WrapperStreamDecoder()
        self._frames: list[WrapperFrame] = []

    async def connect(self, host: str, port: int) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"cannot connect to {host}:{port}: {exc}") from None

    async def request(self, apdu: bytes) -> bytes:
        if self._reader is None or self._writer is None:
            raise TransportError("not connected")
        frame = WrapperFrame(self.client_wport, self.server_wport, apdu)
        self._writer.write(encode_wrapper(frame))
        await self._writer.drain()
        try:
            while not self._frames:
                data = await asyncio.wait_for(self._reader.read(65536), self.timeout)
                if not data:
                    raise TransportError("the meter closed the connection")
                self._frames += self._decoder.feed(data)
        except TimeoutError:
            raise TransportError(f"no answer within {self.timeout} s") from None
        return self._frames.pop(0).apdu

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
            self._writer = None


class UdpWrapperClient:
    """Request/answer over UDP: one datagram out, the next datagram in."""

    def __init__(self, client_wport: int = 1, server_wport: int = 1, timeout: float = 5.0) -> None:
        self.client_wport, self.server_wport, self.timeout = client_wport, server_wport, timeout
        self._transport: asyncio.DatagramTransport | None = None
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()

    async def connect(self, host: str, port: int) -> None:
        inbox = self._inbox

        class _Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
                inbox.put_nowait(data)

        loop = asyncio.get_running_loop()
        try:
            self._transport, _ = await loop.create_datagram_endpoint(
                _Client, remote_addr=(host, port)
            )
        except OSError as exc:
            raise TransportError(f"cannot reach {host}:{port} (UDP): {exc.strerror}") from None

    async def request(self, apdu: bytes) -> bytes:
        if self._transport is None:
            raise TransportError("not connected")
        self._transport.sendto(
            encode_wrapper(WrapperFrame(self.client_wport, self.server_wport, apdu))
        )
        try:
            return decode_wrapper(await asyncio.wait_for(self._inbox.get(), self.timeout)).apdu
        except TimeoutError:
            raise TransportError(f"no answer within {self.timeout} s") from None

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
