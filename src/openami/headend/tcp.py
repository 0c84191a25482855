"""Meters that push over TCP: the IEC 62056-4-7 wrapper on a byte stream.

Some communication units (wired, cellular) keep a TCP connection to the head-end instead
of sending UDP datagrams. The wrapper header carries the APDU length, so frames are cut out
of the stream by it: version (2 octets, 0x0001), source and destination wPort (2 each),
length (2), then the APDU. ``TcpFrames`` accepts connections without blocking and returns
the complete frames received, each with its sender's address, for the same ingest as UDP.

A connection that breaks the framing (wrong version) is closed: a stream cannot resync on
its own. Connections and their buffers are bounded, so a flood of idle or slow connections
costs a known amount of memory.
"""

from __future__ import annotations

import selectors
import socket
import struct

from openami.errors import TransportError
from openami.log import get_logger
from openami.transport.memory import Address
from openami.transport.udp_batch import ip_to_int

__all__ = ["TcpFrames"]

log = get_logger("headend.tcp")
_HEADER = struct.Struct(">HHHH")
WRAPPER_VERSION = 1


class _Connection:
    __slots__ = ("buffer", "peer", "sock")

    def __init__(self, sock: socket.socket, peer: Address) -> None:
        self.sock = sock
        self.peer = peer
        self.buffer = bytearray()


class TcpFrames:
    def __init__(self, listen: Address, max_connections: int = 10_000) -> None:
        self.max_connections = max_connections
        self._selector = selectors.DefaultSelector()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._server.bind(listen)
            self._server.listen(1024)
        except OSError as exc:
            self._server.close()
            msg = f"cannot listen on tcp {listen[0]}:{listen[1]}: {exc.strerror}"
            raise TransportError(msg) from None
        self._server.setblocking(False)
        self._selector.register(self._server, selectors.EVENT_READ, None)
        self.address: Address = self._server.getsockname()
        self.connections = 0
        self.refused = 0  # connections closed for broken framing or over the limit

    def poll(self, timeout: float = 0.0) -> list[tuple[bytes, int, int]]:
        """Complete frames received since the last call: (frame, sender IPv4, port)."""
        frames: list[tuple[bytes, int, int]] = []
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                self._accept()
            else:
                self._read(key.data, frames)
        return frames

    def _accept(self) -> None:
        while True:
            try:
                sock, peer = self._server.accept()
            except BlockingIOError:
                return
            if self.connections >= self.max_connections:
                sock.close()
                self.refused += 1
                continue
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ, _Connection(sock, peer))
            self.connections += 1

    def _read(self, conn: _Connection, frames: list[tuple[bytes, int, int]]) -> None:
        try:
            data = conn.sock.recv(65_536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.buffer += data
        ip = ip_to_int(conn.peer[0])
        while len(conn.buffer) >= _HEADER.size:
            version, _source, _destination, length = _HEADER.unpack_from(conn.buffer)
            if version != WRAPPER_VERSION:
                log.info("closed a tcp connection", extra={"fields": {"reason": "not a wrapper"}})
                self.refused += 1
                self._close(conn)
                return
            end = _HEADER.size + length
            if len(conn.buffer) < end:
                return
            frames.append((bytes(conn.buffer[:end]), ip, conn.peer[1]))
            del conn.buffer[:end]

    def _close(self, conn: _Connection) -> None:
        self._selector.unregister(conn.sock)
        conn.sock.close()
        self.connections -= 1

    def close(self) -> None:
        for key in list(self._selector.get_map().values()):
            if isinstance(key.data, _Connection):
                self._close(key.data)
        self._selector.unregister(self._server)
        self._server.close()
        self._selector.close()
