"""Batched UDP for Linux: ``sendmmsg``/``recvmmsg`` through ctypes, with per-datagram IP_PKTINFO.

Why this exists:

- The fleet simulator plays up to a million meters on loopback. Each meter must appear to the
  head-end with its own source address in 127.0.0.0/8 and must answer requests sent to that
  address, yet a process cannot hold a million sockets. One socket bound to ``0.0.0.0:PORT``
  does it: on send, an IP_PKTINFO control message per datagram picks the source address; on
  receive, the IP_PKTINFO socket option reports which local address (which meter) a datagram
  was sent to.
- The head-end must ingest at least 100,000 datagrams/s, and a Python ``recvfrom`` loop is
  the bottleneck. One ``recvmmsg`` call takes up to ``max_batch`` datagrams.

The message headers live in NumPy structured arrays laid out like the x86_64/aarch64 Linux
structs (``mmsghdr``, ``iovec``, ``sockaddr_in``, ``cmsghdr`` + ``in_pktinfo``). They are
allocated once per socket with every pointer pre-filled, so a call only writes the columns that
change (lengths, addresses) with vectorised assignments: no per-datagram Python apart from
slicing the received payloads out of the shared buffer.

Where ``sendmmsg``/``recvmmsg`` are unavailable (not Linux, or not a 64-bit ABI) the same API
falls back to ``socket.sendmsg``/``socket.recvmsg`` one datagram at a time: correct, but about
as slow as a plain loop.

A socket is not safe for two threads sending at once (they share the send headers), nor two
receiving at once; one sender thread and one receiver thread may share it. ctypes releases the
GIL during the system calls.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import math
import os
import select
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openami.errors import LocalProtocolError, TransportError

__all__ = ["BatchUdpSocket", "ReceivedBatch", "int_to_ip", "ip_to_int"]

Address = tuple[str, int]

#: Linux value; Python 3.11's socket module does not define it.
IP_PKTINFO: int = getattr(socket, "IP_PKTINFO", 8)
_IPPROTO_IP = socket.IPPROTO_IP
_PKTINFO_LEN = 28  # CMSG_LEN(sizeof(struct in_pktinfo)) = 16 + 12
_PKTINFO_SPACE = 32  # CMSG_SPACE(12): what one control message occupies
_SOCKADDR_LEN = 16
# EAGAIN/EWOULDBLOCK: a non-blocking socket's send buffer is full; ENOBUFS: a device queue is.
# Either way the caller retries the rest later.
_SEND_BACKOFF = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS})

_MMSGHDR = np.dtype(
    {
        "names": ["name", "namelen", "iov", "iovlen", "control", "controllen", "flags", "len"],
        "formats": ["<u8", "<u4", "<u8", "<u8", "<u8", "<u8", "<i4", "<u4"],
        "offsets": [0, 8, 16, 24, 32, 40, 48, 56],
        "itemsize": 64,
    }
)
_IOVEC = np.dtype({"names": ["base", "len"], "formats": ["<u8", "<u8"], "itemsize": 16})
# Port and address in network byte order: assigning host-order integers converts them.
_SOCKADDR_IN = np.dtype(
    {
        "names": ["family", "port", "addr"],
        "formats": ["<u2", ">u2", ">u4"],
        "offsets": [0, 2, 4],
        "itemsize": _SOCKADDR_LEN,
    }
)
_PKTINFO_CMSG = np.dtype(
    {
        "names": ["len", "level", "type", "ifindex", "spec_dst", "addr"],
        "formats": ["<u8", "<i4", "<i4", "<i4", ">u4", ">u4"],
        "offsets": [0, 8, 12, 16, 20, 24],
        "itemsize": _PKTINFO_SPACE,
    }
)


def _load_mmsg() -> tuple[Any, Any] | None:
    """``(sendmmsg, recvmmsg)`` from libc, or ``None`` where the layouts above do not hold."""
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    if sys.byteorder != "little":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        send, recv = libc.sendmmsg, libc.recvmmsg
    except (OSError, AttributeError):
        return None
    send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    send.restype = ctypes.c_int
    recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    recv.restype = ctypes.c_int
    return send, recv


_MMSG = _load_mmsg()


def ip_to_int(ip: str) -> int:
    """``"127.1.2.3"`` -> ``0x7F010203`` (host order), the form the batch arrays take."""
    try:
        return int(ipaddress.IPv4Address(ip))
    except ValueError as exc:
        raise LocalProtocolError(f"not an IPv4 address: {ip!r} ({exc})") from None


def int_to_ip(value: int) -> str:
    """``0x7F010203`` -> ``"127.1.2.3"``."""
    try:
        return str(ipaddress.IPv4Address(int(value)))
    except ValueError as exc:
        raise LocalProtocolError(f"not an IPv4 address: {value!r} ({exc})") from None


def _os_error(call: str, code: int, where: Address, text: str | None = None) -> TransportError:
    """One line naming the call, the socket and the errno."""
    name = errno.errorcode.get(code, f"errno {code}")
    text = text or os.strerror(code)
    return TransportError(f"{call} on udp {where[0]}:{where[1]} failed: {name} ({text})")


@dataclass(frozen=True, slots=True)
class ReceivedBatch:
    """Datagrams taken in one receive call; the arrays are columns aligned with ``payloads``.

    Addresses are host-order integers (``ip_to_int``). ``dest_ip`` is the address each datagram
    was sent to (IP_PKTINFO ``ipi_addr``): which meter it is for when the socket is bound to
    ``0.0.0.0``. It is 0 when the socket was opened without ``pktinfo``.
    """

    payloads: list[bytes]
    source_ip: NDArray[np.uint32]
    source_port: NDArray[np.uint16]
    dest_ip: NDArray[np.uint32]

    def __len__(self) -> int:
        return len(self.payloads)


def _empty_batch() -> ReceivedBatch:
    return ReceivedBatch([], np.zeros(0, np.uint32), np.zeros(0, np.uint16), np.zeros(0, np.uint32))


class _Headers:
    """One ``mmsghdr`` array with its ``iovec``, ``sockaddr_in`` and control arrays, linked.

    Every pointer is set once here; the arrays are attributes, so they outlive each call.
    """

    def __init__(self, count: int, slot: int) -> None:
        self.hdr = np.zeros(count, _MMSGHDR)
        self.iov = np.zeros(count, _IOVEC)
        self.addr = np.zeros(count, _SOCKADDR_IN)
        self.cmsg = np.zeros(count, _PKTINFO_CMSG)
        self.buffer = np.zeros(count * slot, np.uint8)
        index = np.arange(count, dtype=np.uint64)
        self.addr["family"] = socket.AF_INET
        self.cmsg["len"] = _PKTINFO_LEN
        self.cmsg["level"] = _IPPROTO_IP
        self.cmsg["type"] = IP_PKTINFO
        self.iov["base"] = self.buffer.ctypes.data + index * np.uint64(slot)
        self.iov["len"] = slot
        self.hdr["name"] = self.addr.ctypes.data + index * np.uint64(_SOCKADDR_LEN)
        self.hdr["namelen"] = _SOCKADDR_LEN
        self.hdr["iov"] = self.iov.ctypes.data + index * np.uint64(_IOVEC.itemsize)
        self.hdr["iovlen"] = 1
        self.control_ptr = self.cmsg.ctypes.data + index * np.uint64(_PKTINFO_SPACE)
        self.address = self.hdr.ctypes.data


def _column(value: Any, n: int, name: str) -> Any:
    """A scalar stays a scalar (broadcast on assignment); an array must have ``n`` entries."""
    if isinstance(value, int | np.integer):
        return int(value)
    column = np.asarray(value)
    if column.shape != (n,):
        raise LocalProtocolError(f"{name} has shape {column.shape}, expected ({n},)")
    return column


class BatchUdpSocket:
    """An IPv4 UDP socket that sends and receives many datagrams per system call.

    ``pktinfo`` turns on the IP_PKTINFO socket option so ``recv_batch`` reports each datagram's
    destination address. Sending with ``source_ip`` works with or without it. ``rcvbuf`` and
    ``sndbuf`` are requests: Linux caps them at ``net.core.rmem_max``/``wmem_max`` without an
    error, so read ``rcvbuf_effective`` to see what was granted. Datagrams longer than
    ``max_datagram`` are dropped and counted in ``truncated``, never passed on cut short.
    """

    def __init__(
        self,
        bind: Address,
        *,
        reuse_addr: bool = False,
        reuse_port: bool = False,
        pktinfo: bool = False,
        rcvbuf: int | None = None,
        sndbuf: int | None = None,
        max_batch: int = 1024,
        max_datagram: int = 2048,
        blocking: bool = True,
    ) -> None:
        if not 1 <= max_batch <= 1024:  # UIO_MAXIOV: the kernel's limit on vlen
            raise LocalProtocolError(f"max_batch must be in 1..1024, got {max_batch}")
        if not 1 <= max_datagram <= 65535:
            raise LocalProtocolError(f"max_datagram must be in 1..65535, got {max_datagram}")
        self.max_batch = max_batch
        self.max_datagram = max_datagram
        self.pktinfo = pktinfo
        self.truncated = 0
        self._mmsg = _MMSG
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            options = [
                (socket.SO_REUSEADDR, int(reuse_addr)),
                (socket.SO_REUSEPORT, int(reuse_port)),
                (socket.SO_RCVBUF, rcvbuf),
                (socket.SO_SNDBUF, sndbuf),
            ]
            for option, value in options:
                if value:
                    self._sock.setsockopt(socket.SOL_SOCKET, option, value)
            if pktinfo:
                self._sock.setsockopt(_IPPROTO_IP, IP_PKTINFO, 1)
            self._sock.setblocking(blocking)
            self._sock.bind(bind)
        except OSError as exc:
            self._sock.close()
            raise _os_error("bind", exc.errno or 0, (bind[0], bind[1]), exc.strerror) from None
        self._address: Address = self._sock.getsockname()
        self._poll = select.poll()
        self._poll.register(self._sock.fileno(), select.POLLIN)
        self._send = _Headers(max_batch, 0)
        self._recv = _Headers(max_batch, max_datagram)
        self._recv.hdr["control"] = self._recv.control_ptr if pktinfo else 0

    @property
    def address(self) -> Address:
        """The bound address (with the port the kernel chose when bound to port 0)."""
        return self._address

    @property
    def rcvbuf_effective(self) -> int:
        """The receive buffer the kernel granted (it doubles requests and caps them)."""
        return int(self._live().getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    @property
    def closed(self) -> bool:
        return self._sock.fileno() < 0

    def fileno(self) -> int:
        return self._live().fileno()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> BatchUdpSocket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _live(self) -> socket.socket:
        if self._sock.fileno() < 0:
            raise TransportError(f"udp socket {self._address[0]}:{self._address[1]} is closed")
        return self._sock

    # -- sending ------------------------------------------------------------------------------

    def send_batch(
        self,
        payloads: Sequence[bytes],
        dest_ip: NDArray[np.uint32] | int,
        dest_port: NDArray[np.uint16] | int,
        source_ip: NDArray[np.uint32] | None = None,
    ) -> int:
        """Send ``payloads[i]`` to ``(dest_ip[i], dest_port[i])``; return how many the kernel took.

        Addresses are host-order integers; a scalar applies to every datagram. ``source_ip[i]``,
        when given, must be a local address (any of 127.0.0.0/8 on loopback); it is set per
        datagram with an IP_PKTINFO control message, the source port being the bound port.
        Batches longer than ``max_batch`` go out in several calls. A return value below
        ``len(payloads)`` means the send buffer or a device queue was full (EAGAIN, ENOBUFS):
        the caller retries the rest. Any other failure raises ``TransportError``.
        """
        sock = self._live()
        n = len(payloads)
        dest = _column(dest_ip, n, "dest_ip")
        port = _column(dest_port, n, "dest_port")
        source = None if source_ip is None else _column(source_ip, n, "source_ip")
        if n == 0:
            return 0
        if self._mmsg is None:
            return self._send_each(sock, payloads, dest, port, source)
        joined = b"".join(payloads)  # one copy; the kernel reads every datagram out of it
        data = np.frombuffer(joined, np.uint8)
        lengths = np.fromiter(map(len, payloads), np.uint64, count=n)
        starts = np.uint64(data.ctypes.data) + np.cumsum(lengths) - lengths
        return self._send_from(sock, data, starts, lengths, dest, port, source)

    def send_rows(
        self,
        rows: NDArray[np.uint8],
        dest_ip: NDArray[np.uint32] | int,
        dest_port: NDArray[np.uint16] | int,
        source_ip: NDArray[np.uint32] | None = None,
    ) -> int:
        """``send_batch`` for datagrams of one length held as the rows of a 2-D array (the
        fleet's pushes): the kernel reads them straight out of the array, with no copy."""
        sock = self._live()
        if rows.ndim != 2 or rows.dtype != np.uint8:
            raise LocalProtocolError("send_rows needs a 2-D uint8 array")
        rows = np.ascontiguousarray(rows)
        n, width = rows.shape
        dest = _column(dest_ip, n, "dest_ip")
        port = _column(dest_port, n, "dest_port")
        source = None if source_ip is None else _column(source_ip, n, "source_ip")
        if n == 0:
            return 0
        if self._mmsg is None:
            return self._send_each(sock, [r.tobytes() for r in rows], dest, port, source)
        lengths = np.full(n, width, dtype=np.uint64)
        starts = np.uint64(rows.ctypes.data) + np.arange(n, dtype=np.uint64) * np.uint64(width)
        return self._send_from(sock, rows, starts, lengths, dest, port, source)

    def _send_from(
        self,
        sock: socket.socket,
        data: NDArray[np.uint8],
        starts: NDArray[np.uint64],
        lengths: NDArray[np.uint64],
        dest: Any,
        port: Any,
        source: Any,
    ) -> int:
        n = int(starts.shape[0])
        assert self._mmsg is not None  # callers take the portable path without it
        h = self._send
        sent = 0
        while sent < n:
            m = min(n - sent, self.max_batch)
            chunk = slice(sent, sent + m)
            h.iov["base"][:m] = starts[chunk]
            h.iov["len"][:m] = lengths[chunk]
            h.addr["addr"][:m] = dest if isinstance(dest, int) else dest[chunk]
            h.addr["port"][:m] = port if isinstance(port, int) else port[chunk]
            if source is None:
                h.hdr["control"][:m] = 0
                h.hdr["controllen"][:m] = 0
            else:
                h.cmsg["spec_dst"][:m] = source if isinstance(source, int) else source[chunk]
                h.hdr["control"][:m] = h.control_ptr[:m]
                h.hdr["controllen"][:m] = _PKTINFO_SPACE
            done = self._mmsg[0](sock.fileno(), h.address, m, 0)
            if done < 0:
                code = ctypes.get_errno()
                if code == errno.EINTR:
                    continue
                if code in _SEND_BACKOFF:
                    break
                raise _os_error("sendmmsg", code, self._address)
            sent += done
        return sent  # ``data`` stayed referenced through every call above

    def _send_each(
        self, sock: socket.socket, payloads: Sequence[bytes], dest: Any, port: Any, source: Any
    ) -> int:
        """The portable path: one ``sendmsg`` per datagram."""
        for i, payload in enumerate(payloads):
            ip = int_to_ip(dest if isinstance(dest, int) else int(dest[i]))
            where = (ip, port if isinstance(port, int) else int(port[i]))
            ancillary = []
            if source is not None:
                src = source if isinstance(source, int) else int(source[i])
                info = bytes(4) + src.to_bytes(4, "big") + bytes(4)
                ancillary.append((_IPPROTO_IP, IP_PKTINFO, info))
            try:
                sock.sendmsg([payload], ancillary, 0, where)
            except OSError as exc:
                if exc.errno in _SEND_BACKOFF:
                    return i
                raise _os_error("sendmsg", exc.errno or 0, self._address) from None
        return len(payloads)

    # -- receiving ----------------------------------------------------------------------------

    def recv_batch(self, timeout: float | None = 0.0) -> ReceivedBatch:
        """Take up to ``max_batch`` queued datagrams in one call.

        Waits up to ``timeout`` seconds (``None``: for ever) for the first datagram, then takes
        what is queued without waiting for more, so a batch is never held back to fill up.
        Returns an empty batch on timeout.
        """
        sock = self._live()
        wait = -1 if timeout is None else math.ceil(max(timeout, 0.0) * 1000)
        if wait != 0 and not self._poll.poll(wait):
            return _empty_batch()
        if self._mmsg is None:
            return self._recv_each(sock)
        h = self._recv
        h.hdr["namelen"] = _SOCKADDR_LEN  # value-result fields: the kernel overwrote them
        h.hdr["controllen"] = _PKTINFO_SPACE if self.pktinfo else 0
        while True:
            n = self._mmsg[1](sock.fileno(), h.address, self.max_batch, socket.MSG_DONTWAIT, None)
            if n >= 0:
                break
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EWOULDBLOCK):
                return _empty_batch()
            if code != errno.EINTR:
                raise _os_error("recvmmsg", code, self._address)
        whole = (h.hdr["flags"][:n] & socket.MSG_TRUNC) == 0
        keep = np.flatnonzero(whole)
        self.truncated += n - len(keep)
        starts = keep * self.max_datagram
        ends = starts + h.hdr["len"][keep]
        # One copy out of the shared buffer, then C-level slicing: no bytecode per datagram.
        raw = h.buffer[: n * self.max_datagram].tobytes()
        payloads = list(map(raw.__getitem__, map(slice, starts.tolist(), ends.tolist())))
        if self.pktinfo:
            cmsg = h.cmsg[keep]
            valid = (
                (h.hdr["controllen"][keep] >= _PKTINFO_LEN)
                & (cmsg["level"] == _IPPROTO_IP)
                & (cmsg["type"] == IP_PKTINFO)
            )
            dest = np.where(valid, cmsg["addr"], 0).astype(np.uint32)
        else:
            dest = np.zeros(len(keep), np.uint32)
        addr = h.addr[keep]
        return ReceivedBatch(
            payloads, addr["addr"].astype(np.uint32), addr["port"].astype(np.uint16), dest
        )

    def _recv_each(self, sock: socket.socket) -> ReceivedBatch:
        """The portable path: ``recvmsg`` until the queue is empty or the batch is full."""
        payloads: list[bytes] = []
        src: list[int] = []
        ports: list[int] = []
        dst: list[int] = []
        ancillary_size = socket.CMSG_SPACE(12) if self.pktinfo else 0
        while len(payloads) < self.max_batch:
            try:
                data, ancillary, flags, peer = sock.recvmsg(
                    self.max_datagram, ancillary_size, socket.MSG_DONTWAIT
                )
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                raise _os_error("recvmsg", exc.errno or 0, self._address) from None
            if flags & socket.MSG_TRUNC:
                self.truncated += 1
                continue
            to = 0
            for level, kind, value in ancillary:
                if level == _IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
                    to = int.from_bytes(value[8:12], "big")
            payloads.append(data)
            src.append(ip_to_int(peer[0]))
            ports.append(peer[1])
            dst.append(to)
        return ReceivedBatch(
            payloads,
            np.array(src, np.uint32),
            np.array(ports, np.uint16),
            np.array(dst, np.uint32),
        )
