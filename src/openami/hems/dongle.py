"""An emulated Wi-SUN B-route USB dongle: a pty speaking SKSTACK-IP, UDP on loopback behind it.

HEMS software opens ``Dongle.slave_path`` as its serial port and drives it with SKSTACK-IP
commands (``protocols.wisun.skstack``). What the real radio would carry goes over UDP on
loopback instead: the meter's link-local IPv6 address (made from ``meter_mac``) stands for the
meter's IPv4 loopback address ``meter_ipv4``. SKSENDTO to the meter leaves from
``bind_ipv4:3610`` for ``meter_ipv4:<port>``, the join's PANA from ``bind_ipv4:716`` for
``meter_ipv4:716``; the meter answers to the sender's address, and what it sends comes back to
the HEMS as ERXUDP lines. Both sockets set SO_REUSEADDR, so several dongles and meters share
the ports on different loopback addresses. The dongle knows only what the air would tell it
(the meter's MAC, PAN ID and channel, as a beacon) and what the HEMS sets (B-route ID and
password): whether those are right is for the meter to decide.

The event loop is asyncio: ``await dongle.start()``, then ``await dongle.close()`` (or
``async with``). Closing and reopening the serial port by the HEMS is routine; the SKSTACK
state (registers, credentials, the PANA session) survives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from types import TracebackType

from openami.errors import TransportError
from openami.log import get_logger
from openami.protocols.wisun.pana import PANA_PORT
from openami.protocols.wisun.skstack import (
    ECHONET_PORT,
    Beacon,
    Output,
    SendPana,
    SkStack,
    format_ipv6,
    link_local,
)
from openami.transport.pty_serial import PtySerial

__all__ = ["DEFAULT_MAC", "Dongle"]

log = get_logger("hems.dongle")
DEFAULT_MAC = bytes.fromhex("001D129000000001")
_PROBE = 0.05  # s between reads of a pty nobody holds open (its descriptor is not watched)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, deliver: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._deliver = deliver

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self._deliver(data, (str(addr[0]), int(addr[1])))


async def _bind_udp(
    host: str, port: int, deliver: Callable[[bytes, tuple[str, int]], None]
) -> asyncio.DatagramTransport:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Udp(deliver), sock=sock
        )
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot bind UDP {host}:{port}: {exc.strerror}") from None
    return transport


class Dongle:
    def __init__(
        self,
        meter_ipv4: str,
        meter_mac: bytes,
        pan_id: int,
        channel: int,
        *,
        bind_ipv4: str = "127.0.0.1",
        mac: bytes = DEFAULT_MAC,
        link: str | None = None,
        machine: SkStack | None = None,
    ) -> None:
        """``link``: a symlink path for the serial port (e.g. ``/tmp/openami-wisun``);
        ``machine``: a preconfigured ``SkStack`` (timers, version) instead of the default."""
        self.meter_ipv4, self.bind_ipv4, self._link = meter_ipv4, bind_ipv4, link
        self.meter_address = link_local(meter_mac)
        beacon = Beacon(bytes(meter_mac), pan_id, channel)
        self.machine = machine if machine is not None else SkStack(mac, beacons=[beacon])
        if machine is not None and not machine.beacons:
            self.machine.beacons = (beacon,)
        self._pty: PtySerial | None = None
        self._echonet: asyncio.DatagramTransport | None = None
        self._pana: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._watching = False
        self._closed = asyncio.Event()

    @property
    def slave_path(self) -> str:
        if self._pty is None:
            raise TransportError("the dongle is not started")
        return self._pty.slave_path

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pty = PtySerial(self._link)
        try:
            self._echonet = await _bind_udp(self.bind_ipv4, ECHONET_PORT, self._from_echonet)
            self._pana = await _bind_udp(self.bind_ipv4, PANA_PORT, self._from_pana)
        except TransportError:
            await self.close()
            raise
        self._probe()
        log.info(
            "dongle ready",
            extra={"fields": {"serial": self.slave_path, "meter": self.meter_ipv4}},
        )

    async def serve(self, duration: float | None = None) -> None:
        """Run until ``close()`` or for ``duration`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), duration)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for transport in (self._echonet, self._pana):
            if transport is not None:
                transport.close()
        self._echonet = self._pana = None
        if self._pty is not None:
            self._watch(False)
            self._pty.close()
        self._closed.set()
        await asyncio.sleep(0)  # let the transports finish closing

    async def __aenter__(self) -> Dongle:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    # --- serial side --------------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _watch(self, on: bool) -> None:
        """Watch the pty descriptor only while a HEMS holds the port open: a hung-up master
        reads as ready forever."""
        pty, loop = self._pty, self._loop
        if pty is None or loop is None or on == self._watching:
            return
        self._watching = on
        if on:
            loop.add_reader(pty.fileno(), self._from_serial)
        else:
            loop.remove_reader(pty.fileno())
            loop.remove_writer(pty.fileno())

    def _from_serial(self) -> None:
        pty = self._pty
        if pty is None or pty.closed:
            return
        data = pty.read()
        if data:
            self._apply(self.machine.feed(data, self._now()))
        if not pty.connected:
            log.info("serial port closed by the HEMS")
            self.machine.discard_input()
            self._watch(False)
            self._probe()

    def _probe(self) -> None:
        pty, loop = self._pty, self._loop
        if pty is None or pty.closed or loop is None or self._closed.is_set():
            return
        data = pty.read()
        if pty.connected:
            log.info("serial port opened by the HEMS")
            self._watch(True)
            if data:
                self._apply(self.machine.feed(data, self._now()))
        else:
            loop.call_later(_PROBE, self._probe)

    def _write(self, data: bytes) -> None:
        pty, loop = self._pty, self._loop
        if pty is None or loop is None or not data:
            return
        pty.write(data)
        if pty.pending and self._watching:
            loop.add_writer(pty.fileno(), self._drain)

    def _drain(self) -> None:
        pty, loop = self._pty, self._loop
        if pty is None or loop is None:
            return
        pty.flush()
        if not pty.pending:
            loop.remove_writer(pty.fileno())

    # --- radio side ---------------------------------------------------------------------

    def _from_echonet(self, data: bytes, source: tuple[str, int]) -> None:
        if source[0] == self.meter_ipv4:
            out = self.machine.udp_received(
                self.meter_address, source[1], ECHONET_PORT, data, self._now()
            )
            self._apply(out)

    def _from_pana(self, data: bytes, source: tuple[str, int]) -> None:
        if source[0] == self.meter_ipv4:
            self._apply(self.machine.pana_received(self.meter_address, data, self._now()))

    def _apply(self, out: Output) -> None:
        self._write(out.serial)
        for action in out.actions:
            if format_ipv6(action.dest_ip) != self.meter_address:
                continue  # nothing else is on the air
            if isinstance(action, SendPana):
                transport, target = self._pana, (self.meter_ipv4, PANA_PORT)
            elif action.src_port == ECHONET_PORT:
                transport, target = self._echonet, (self.meter_ipv4, action.dest_port)
            else:
                continue  # no socket behind that UDP handle
            if transport is not None:
                transport.sendto(action.payload, target)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.machine.next_deadline()
        if deadline is not None and self._loop is not None and not self._closed.is_set():
            self._timer = self._loop.call_at(deadline, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._apply(self.machine.on_timeout(self._now()))
