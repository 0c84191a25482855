"""ECHONET Lite over UDP port 3610: nodes serving requests (the meter side) and the socket a
HEMS talks through.

**Serving** (``EchonetUdpServer``): each node gets a socket of its own on (its address, 3610),
so several meters on their own loopback addresses share one process and one selector loop.
Every socket sets SO_REUSEADDR, because HEMS software on the same host binds 0.0.0.0:3610 too
and the kernel would otherwise refuse one side. (On Linux that option also lets two sockets
take the very same address and port; the kernel then hands unicast to one of them only, so a
second node on an address is refused here by looking at the system's UDP table.) A node
answers each request to the sender's address and to port 3610, whatever port it came from (the
specification sends replies to 3610), echoing the request's TID; before that, an ``admit``
hook decides whether the source address may be answered at all (default: everyone; Route B's
PANA authentication belongs there). Nodes announce themselves at start-up (INF of 0xD5) to the
multicast group 224.0.23.0, and may announce more as time passes (``announce``).

Multicast requests (discovery) reach a socket only if it is bound to the group address or to
0.0.0.0, so the server keeps one more socket on (224.0.23.0, 3610), a member of the group on
the interface of the served addresses (loopback here); a request arriving there goes to every
node, and each answers from its own socket, so the HEMS sees each meter's address. Where the
group cannot be joined the server says why (``multicast``) and serves unicast only.

**Bounded**: one receive buffer, at most ``BATCH`` datagrams from one socket per wake-up (so
one busy peer cannot starve the other nodes), no queue of replies (a reply that cannot be sent
at once is dropped and counted, as UDP would lose it anyway), and the loop wakes at least every
``TICK_S`` seconds to see ``stop()`` and to poll announcements.

**HEMS side** (``EchonetSocket``): one socket on (interface, 3610), 0.0.0.0 by default, with
SO_REUSEADDR; multicast goes out through the given interface (loopback by default: the meters
here live there) and, to hear announcements, it joins the group.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from openami.errors import DecodeError, LocalProtocolError, TransportError
from openami.log import get_logger
from openami.protocols.echonet import (
    ECHONET_PORT,
    MULTICAST_IPV4,
    EchonetNode,
    Frame,
    decode_frame,
    encode_frame,
)

__all__ = [
    "BATCH",
    "ECHONET_PORT",
    "MULTICAST_IPV4",
    "TICK_S",
    "Admit",
    "EchonetSocket",
    "EchonetUdpServer",
    "ServerCounts",
    "admit_everyone",
]

log = get_logger("transport.echonet_udp")

Admit = Callable[[str], bool]
Announce = Callable[[], Iterable[Frame]]

BATCH = 64  # datagrams taken from one socket per wake-up
TICK_S = 0.25  # longest sleep of the loop: how late stop() and announcements can be
MAX_DATAGRAM = 65_535  # an ECHONET Lite frame fits one datagram; nothing is cut
LOOPBACK = "127.0.0.1"


def admit_everyone(_address: str) -> bool:
    """The default admission: every source may be answered."""
    return True


# -- sockets ---------------------------------------------------------------------------


def _ipv4(address: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(address))
    except ValueError:
        raise TransportError(f"{what} {address!r} is not an IPv4 address") from None


def _exact_holders(address: str, port: int) -> int | None:
    """How many UDP sockets of this host are bound to exactly ``address:port`` (Linux's
    /proc/net/udp); None where the table cannot be read."""
    table = Path("/proc/net/udp")
    try:
        lines = table.read_text(encoding="ascii").splitlines()[1:]
    except OSError:
        return None
    # the table prints the address as the host-order integer of its network-order octets
    ip = int.from_bytes(socket.inet_aton(address), sys.byteorder)
    wanted = f"{ip:08X}:{port:04X}"
    return sum(1 for line in lines if line.split()[1:2] == [wanted])


def _bind(address: str, port: int, *, exclusive: bool) -> socket.socket:
    """A non-blocking UDP socket on ``address:port`` with SO_REUSEADDR. With ``exclusive``,
    refuse an address another socket already holds exactly (see the module notes)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise TransportError(
                    f"cannot bind {address}:{port}: {address} is not an address of this host"
                ) from None
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise TransportError(f"cannot bind {address}:{port}: address in use") from None
            raise TransportError(f"cannot bind {address}:{port}: {exc.strerror}") from None
        holders = _exact_holders(address, port) if exclusive else None
        if holders is not None and holders > 1:
            raise TransportError(
                f"cannot bind {address}:{port}: address in use (another ECHONET Lite node "
                "is bound to it)"
            )
    except BaseException:
        sock.close()
        raise
    return sock


def _join(sock: socket.socket, interface: str) -> str | None:
    """Make ``sock`` a member of the ECHONET group on ``interface``'s device; the problem,
    or None when it is a member."""
    request = struct.pack("=4s4s", socket.inet_aton(MULTICAST_IPV4), socket.inet_aton(interface))
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:  # already a member on that device
            return None
        return f"cannot join {MULTICAST_IPV4} on the interface of {interface}: {exc.strerror}"
    return None


def _send_through(sock: socket.socket, interface: str) -> None:
    """Multicast from ``sock`` leaves through ``interface``'s device (loopback here; the
    default route would take it elsewhere) and comes back to this host's members."""
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)


def _is_wildcard(address: str) -> bool:
    return address == "0.0.0.0"  # noqa: S104 - the HEMS may listen on every interface


# -- the serving side ------------------------------------------------------------------


@dataclass
class ServerCounts:
    """What the server has done since it started (read them after ``serve`` returns)."""

    received: int = 0  # datagrams read
    answered: int = 0  # replies sent
    refused: int = 0  # requests from sources ``admit`` refused
    dropped: int = 0  # replies or announcements that could not be sent
    failed: int = 0  # requests a node's own data source raised on
    announced: int = 0  # announcements sent


@dataclass
class _Served:
    address: str
    node: EchonetNode
    sock: socket.socket
    admit: Admit
    announce: Announce | None


@dataclass
class _Wake:
    reader: socket.socket
    writer: socket.socket


class EchonetUdpServer:
    """Serves ``EchonetNode``s on UDP, one socket per address, in one selector loop.

    ``add`` the nodes, then ``serve()`` (blocks until ``stop()`` or ``duration``) or
    ``start()`` (a thread); ``close()`` (or the ``with`` block) releases the sockets.
    ``stop()`` may be called from any thread or a signal handler.
    """

    def __init__(
        self,
        *,
        admit: Admit = admit_everyone,
        port: int = ECHONET_PORT,
        multicast: bool = True,
    ) -> None:
        self.admit = admit
        self.port = port
        self.counts = ServerCounts()
        self._served: list[_Served] = []
        self._selector = selectors.DefaultSelector()
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._wake = _Wake(reader, writer)
        self._selector.register(reader, selectors.EVENT_READ, None)
        self._group: socket.socket | None = None
        self._want_multicast = multicast
        self._multicast_problem: str | None = None if multicast else "multicast is turned off"
        self._joined: set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._buffer = bytearray(MAX_DATAGRAM)

    # -- set-up --------------------------------------------------------------------------

    def add(
        self,
        address: str,
        node: EchonetNode,
        *,
        admit: Admit | None = None,
        announce: Announce | None = None,
    ) -> None:
        """Serve ``node`` on ``address``:port. ``admit`` (the server's when not given) says
        whether a source may be answered; ``announce`` is polled at every wake-up for frames
        to multicast (a meter's half-hourly INF)."""
        address = _ipv4(address, "node address")
        if any(served.address == address for served in self._served):
            raise TransportError(
                f"cannot bind {address}:{self.port}: address in use (this server serves it)"
            )
        sock = _bind(address, self.port, exclusive=True)
        served = _Served(address, node, sock, admit or self.admit, announce)
        try:
            _send_through(sock, address)
        except OSError as exc:  # not fatal: the node still answers unicast
            self._no_multicast(f"cannot send multicast from {address}: {exc.strerror}")
        self._served.append(served)
        self._selector.register(sock, selectors.EVENT_READ, served)
        if self._want_multicast:
            self._join_group(address)

    def _no_multicast(self, problem: str) -> None:
        if self._multicast_problem is None:
            self._multicast_problem = problem
            log.warning("no multicast: %s; discovery needs the meters' addresses", problem)

    def _join_group(self, interface: str) -> None:
        if self._multicast_problem is not None:
            return
        if self._group is None:
            try:
                self._group = _bind(MULTICAST_IPV4, self.port, exclusive=False)
            except TransportError as exc:
                self._no_multicast(str(exc))
                return
            self._selector.register(self._group, selectors.EVENT_READ, None)
        if interface in self._joined:
            return
        problem = _join(self._group, interface)
        if problem is not None:
            self._no_multicast(problem)
        else:
            self._joined.add(interface)

    @property
    def multicast(self) -> str:
        """One line saying whether discovery by multicast reaches the nodes, and if not why."""
        if self._multicast_problem is not None:
            return f"multicast off: {self._multicast_problem}"
        if not self._joined:
            return "multicast: no node yet"
        return f"multicast: member of {MULTICAST_IPV4} on the interface of {min(self._joined)}"

    @property
    def addresses(self) -> list[str]:
        return [served.address for served in self._served]

    # -- running -------------------------------------------------------------------------

    def start(self) -> threading.Thread:
        """Serve in a daemon thread until ``stop()``; the thread is returned (and joined by
        ``close``)."""
        if self._thread is not None:
            raise LocalProtocolError("the server is already running")
        thread = threading.Thread(target=self.serve, name="echonet-udp", daemon=True)
        self._thread = thread
        thread.start()
        return thread

    def serve(self, duration: float | None = None) -> None:
        """Announce every node, then answer requests until ``stop()`` (or ``duration``
        seconds)."""
        until = None if duration is None else time.monotonic() + duration
        for served in self._served:
            self._multicast(served, served.node.startup_announcement())
        while not self._stopping.is_set():
            timeout = TICK_S
            if until is not None:
                timeout = min(timeout, until - time.monotonic())
                if timeout <= 0:
                    break
            for key, _events in self._selector.select(timeout):
                if key.fileobj is self._wake.reader:
                    self._drain_wake()
                else:
                    target = key.data if isinstance(key.data, _Served) else None
                    self._receive(key.fileobj, target)  # type: ignore[arg-type]
            self._poll_announcements()

    def stop(self) -> None:
        """Make ``serve`` return (soon: at most one batch per socket later). Thread- and
        signal-safe."""
        self._stopping.set()
        # full (already woken) or closed (already stopped): either way nothing to do
        with contextlib.suppress(OSError):
            self._wake.writer.send(b"\0")

    def close(self) -> None:
        self.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._selector.close()
        for served in self._served:
            served.sock.close()
        if self._group is not None:
            self._group.close()
        self._wake.reader.close()
        self._wake.writer.close()

    def __enter__(self) -> EchonetUdpServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the loop's work -----------------------------------------------------------------

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake.reader.recv(64):
                pass

    def _receive(self, sock: socket.socket, target: _Served | None) -> None:
        """Up to ``BATCH`` datagrams from ``sock``: for ``target``, or (the group socket)
        for every node."""
        view = memoryview(self._buffer)
        for _ in range(BATCH):
            try:
                size, source = sock.recvfrom_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error from an earlier reply
                log.debug("receive failed: %s", exc.strerror)
                continue
            self.counts.received += 1
            try:
                request = decode_frame(bytes(view[:size]))
            except DecodeError:
                continue  # not ECHONET Lite, or broken: no answer, as the node would do
            if not 0x60 <= request.esv <= 0x6F:
                continue  # a response or announcement (our own, back from the group): no reply
            host = str(source[0])
            for served in (target,) if target is not None else self._served:
                self._answer(served, request, host)

    def _answer(self, served: _Served, request: Frame, host: str) -> None:
        try:
            admitted = served.admit(host)
        except Exception:  # a broken hook refuses rather than stops every node
            log.exception("admission hook failed; refusing %s", host)
            admitted = False
        if not admitted:
            self.counts.refused += 1
            return
        try:
            replies = served.node.respond(request)
        except LocalProtocolError as exc:
            self.counts.failed += 1
            log.error("node %s could not answer: %s", served.address, exc)
            return
        for reply in replies:
            if self._send(served.sock, encode_frame(reply), host):
                self.counts.answered += 1

    def _send(self, sock: socket.socket, data: bytes, host: str) -> bool:
        try:
            sock.sendto(data, (host, self.port))
        except OSError as exc:  # full buffer, unreachable: a lost datagram
            self.counts.dropped += 1
            log.debug("send to %s failed: %s", host, exc.strerror)
            return False
        return True

    def _multicast(self, served: _Served, frame: Frame) -> None:
        if self._multicast_problem is not None:
            return
        if self._send(served.sock, encode_frame(frame), MULTICAST_IPV4):
            self.counts.announced += 1

    def _poll_announcements(self) -> None:
        for served in self._served:
            if served.announce is None:
                continue
            try:
                frames = list(served.announce())
            except LocalProtocolError as exc:
                self.counts.failed += 1
                log.error("node %s could not announce: %s", served.address, exc)
                continue
            for frame in frames:
                self._multicast(served, frame)


# -- the HEMS side ---------------------------------------------------------------------


class EchonetSocket:
    """A HEMS's UDP endpoint on (``interface``, 3610), 0.0.0.0 by default.

    Multicast leaves through ``multicast_interface`` (``interface`` itself when it is an
    address, else loopback). With ``listen_multicast`` it joins the group to hear
    announcements: a socket on 0.0.0.0 joins itself; one on an address needs a second socket
    on the group address (a socket bound to a unicast address never sees multicast).
    """

    def __init__(
        self,
        interface: str = "0.0.0.0",  # noqa: S104 - HEMS software listens on every interface
        *,
        port: int = ECHONET_PORT,
        multicast_interface: str | None = None,
        listen_multicast: bool = True,
    ) -> None:
        self.interface = _ipv4(interface, "interface")
        self.port = port
        wildcard = _is_wildcard(self.interface)
        outgoing = multicast_interface or (LOOPBACK if wildcard else self.interface)
        outgoing = _ipv4(outgoing, "multicast interface")
        self.sock = _bind(self.interface, port, exclusive=False)
        self._group: socket.socket | None = None
        self.multicast_problem: str | None = None
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.sock, selectors.EVENT_READ)
        try:
            _send_through(self.sock, outgoing)
        except OSError as exc:
            self.multicast_problem = f"cannot send multicast through {outgoing}: {exc.strerror}"
        if listen_multicast and self.multicast_problem is None:
            if wildcard:
                self.multicast_problem = _join(self.sock, outgoing)
            else:
                try:
                    self._group = _bind(MULTICAST_IPV4, port, exclusive=False)
                except TransportError as exc:
                    self.multicast_problem = str(exc)
                else:
                    self.multicast_problem = _join(self._group, outgoing)
                    self._selector.register(self._group, selectors.EVENT_READ)

    def send(self, frame: Frame | bytes, host: str) -> None:
        """Send to ``host``:3610 (``MULTICAST_IPV4`` for everyone on the group)."""
        data = encode_frame(frame) if isinstance(frame, Frame) else frame
        try:
            self.sock.sendto(data, (host, self.port))
        except OSError as exc:
            raise TransportError(f"cannot send to {host}:{self.port}: {exc.strerror}") from None

    def receive(self, timeout: float) -> tuple[bytes, str] | None:
        """The next datagram and its source address, or None after ``timeout`` seconds."""
        until = time.monotonic() + timeout
        while True:
            remaining = until - time.monotonic()
            for key, _events in self._selector.select(max(remaining, 0.0)):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data, source = sock.recvfrom(MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # an ICMP error from an earlier send: nothing to read
                    continue
                return data, str(source[0])
            if remaining <= 0:
                return None

    def close(self) -> None:
        self._selector.close()
        self.sock.close()
        if self._group is not None:
            self._group.close()

    def __enter__(self) -> EchonetSocket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
