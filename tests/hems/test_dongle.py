"""The emulated dongle end to end: a HEMS on the pty's slave side, the dongle in between, and
a stand-in meter on real UDP sockets (a PAA on 716 and an echo on 3610) on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import select
import socket
import threading
import time
import tty
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from openami.hems.dongle import Dongle
from openami.protocols.wisun.pana import ClientState, PanaClient, PanaServer, Retransmit
from openami.transport.pana_udp import PanaUdpServer, serve_pana
from openami.transport.pty_serial import PtySerial

RBID = "00112233445566778899AABBCCDDEEFF"
PASSWORD = "0123456789AB"
METER = bytes.fromhex("001D129012345678")
METER_LL = "FE80:0000:0000:0000:021D:1290:1234:5678"
FRAME = bytes.fromhex("1081000105FF010288016201E700")  # Get 0xE7 (instantaneous power)
T = TypeVar("T")


def _reply(request: bytes) -> bytes:
    """The stand-in meter's Get_Res: the request with ESV 0x72 and a 4-octet value."""
    return request[:10] + b"\x72" + request[11:13] + b"\x04\x00\x00\x01\xf4"


def _free_addresses() -> tuple[str, str]:
    """Two loopback addresses on which ports 716 and 3610 are free."""
    for _ in range(50):
        candidates = [
            f"127.{random.randint(100, 250)}.{random.randint(1, 250)}.{i}" for i in (1, 2)
        ]
        probes = []
        try:
            for host in candidates:
                for port in (716, 3610):
                    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    probes.append(probe)
                    probe.bind((host, port))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return candidates[0], candidates[1]
    raise RuntimeError("no free loopback addresses for ports 716 and 3610")


class _Echo(asyncio.DatagramProtocol):
    """ECHONET Lite on the meter, reduced to answering admitted HEMS addresses."""

    def __init__(self, pana: PanaUdpServer) -> None:
        self.pana = pana
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None and self.pana.session_for(str(addr[0])) is not None:
            self.transport.sendto(_reply(data), addr)


class Lab:
    """The dongle and the stand-in meter on an event loop in a background thread."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.meter_ip, self.dongle_ip = _free_addresses()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self._start())

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _start(self) -> None:
        policy = Retransmit(0.2, 1.0, 3)
        self.pana = await serve_pana(
            self.meter_ip, lambda peer: PanaServer(self.known.get, request=policy)
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.meter_ip, 3610))
        self.echo = _Echo(self.pana)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: self.echo, sock=sock)
        self.dongle = Dongle(self.meter_ip, METER, 0x8888, 0x21, bind_ipv4=self.dongle_ip)
        await self.dongle.start()

    async def _stop(self) -> None:
        await self.dongle.close()
        self.pana.close()
        if self.echo.transport is not None:
            self.echo.transport.close()

    def close(self) -> None:
        try:
            self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5.0)
            self.loop.close()


class Hems:
    """What HEMS software does with a serial port, with a deadline on every wait."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.buffer = b""

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def line(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line within {timeout} s; have {self.buffer!r}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    self.buffer += os.read(self.fd, 4096)
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line.decode("latin-1")

    def until(self, *prefixes: str, timeout: float = 15.0) -> list[str]:
        lines = [self.line(timeout)]
        while not lines[-1].startswith(prefixes):
            lines.append(self.line(timeout))
        return lines

    def command(self, text: str) -> list[str]:
        self.write(text.encode() + b"\r\n")
        return self.until("OK", "FAIL")

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab({RBID: PASSWORD})
    try:
        yield lab
    finally:
        lab.close()


def _prepare(hems: Hems, password: str = PASSWORD) -> None:
    assert hems.command("SKVER")[-2:] == ["EVER 1.2.10", "OK"]
    assert hems.command("SKINFO")[-1] == "OK"
    assert hems.command("SKRESET") == ["SKRESET", "OK"]
    assert hems.command(f"SKSETPWD C {password}")[-1] == "OK"
    assert hems.command(f"SKSETRBID {RBID}")[-1] == "OK"
    assert hems.command("SKSCAN 2 FFFFFFFF 6 0")[-1] == "OK"
    scan = hems.until("EVENT 22")
    assert "  Addr:001D129012345678" in scan
    assert "  Pan ID:8888" in scan
    assert hems.command("SKSREG S2 21")[-1] == "OK"
    assert hems.command("SKSREG S3 8888")[-1] == "OK"
    hems.write(b"SKLL64 001D129012345678\r\n")
    assert hems.until("FE80") == ["SKLL64 001D129012345678", METER_LL]


def _join(hems: Hems) -> str:
    hems.write(f"SKJOIN {METER_LL}\r\n".encode())
    return hems.until("EVENT 24", "EVENT 25")[-1]


def _echonet_round_trip(hems: Hems) -> list[str]:
    header = f"SKSENDTO 1 {METER_LL} 0E1A 1 0 {len(FRAME):04X} "
    hems.write(header.encode() + FRAME)
    sent = hems.until("OK")
    assert sent == [header, f"EVENT 21 {METER_LL} 00", "OK"]
    return hems.until("ERXUDP").pop().split(" ")


def test_hems_joins_and_reads_the_meter_through_the_pty(lab: Lab) -> None:
    hems = Hems(lab.dongle.slave_path)
    try:
        _prepare(hems)
        assert _join(hems) == f"EVENT 25 {METER_LL}"
        fields = _echonet_round_trip(hems)
        assert fields[1] == METER_LL
        assert fields[3:7] == ["0E1A", "0E1A", "001D129012345678", "1"]
        assert bytes.fromhex(fields[8]) == _reply(FRAME)
        assert int(fields[7], 16) == len(_reply(FRAME))
        assert [host for host, _ in lab.pana.admitted] == [lab.dongle_ip]
    finally:
        hems.close()


def test_wrong_password_gives_event_24_and_no_data(lab: Lab) -> None:
    hems = Hems(lab.dongle.slave_path)
    try:
        _prepare(hems, password="wrongpasswrd")
        assert _join(hems) == f"EVENT 24 {METER_LL}"
        header = f"SKSENDTO 1 {METER_LL} 0E1A 1 0 {len(FRAME):04X} "
        hems.write(header.encode() + FRAME)
        assert hems.until("OK")[-2:] == [f"EVENT 21 {METER_LL} 01", "OK"]
        assert lab.pana.admitted == {}
    finally:
        hems.close()


def test_port_closed_and_reopened_then_joined_again(lab: Lab) -> None:
    first = Hems(lab.dongle.slave_path)
    _prepare(first)
    assert _join(first) == f"EVENT 25 {METER_LL}"
    first.write(b"SKSENDTO 1 FE80")  # half a command, then the HEMS goes away
    first.close()
    time.sleep(0.3)  # the dongle notices the hang-up
    second = Hems(lab.dongle.slave_path)
    try:
        assert second.command("SKVER")[0] == "SKVER"  # nothing stale before the echo
        assert second.command("SKSREG S3") == ["SKSREG S3", "ESREG 8888", "OK"]
        assert _join(second) == f"EVENT 25 {METER_LL}"
        assert bytes.fromhex(_echonet_round_trip(second)[8]) == _reply(FRAME)
    finally:
        second.close()


def test_pty_serial_reopen_and_symlink(tmp_path: Path) -> None:
    link = tmp_path / "wisun"
    port = PtySerial(link)
    try:
        assert port.slave_path == str(link)
        assert os.readlink(link) == port.device
        assert port.read() == b""
        assert not port.connected
        port.write(b"lost")  # nobody listening: dropped
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        os.write(fd, b"SKVER\r\n")
        time.sleep(0.05)
        assert port.read() == b"SKVER\r\n"
        assert port.connected
        port.write(b"EVER 1.2.10\r\n")
        assert os.read(fd, 100) == b"EVER 1.2.10\r\n"
        os.close(fd)
        assert port.read() == b""
        assert not port.connected
        port.write(b"stale")
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        assert port.read() == b""
        assert port.connected
        with pytest.raises(BlockingIOError):
            os.read(fd, 100)  # nothing written while the port was closed
        os.close(fd)
    finally:
        port.close()
    assert not link.exists()
    assert port.read() == b""


def test_pana_udp_serves_a_paa_per_pac_and_forgets_revoked_ids() -> None:
    meter_ip, pac_ip = _free_addresses()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        known = {RBID: PASSWORD}
        policy = Retransmit(0.05, 0.1, 2)
        pana = await serve_pana(meter_ip, lambda peer: PanaServer(known.get, request=policy))
        inbox: asyncio.Queue[bytes] = asyncio.Queue()

        class _Pac(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
                inbox.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(
            _Pac, local_addr=(pac_ip, 0), remote_addr=(meter_ip, 716)
        )
        try:
            transport.sendto(b"not PANA")  # dropped and logged, nothing else
            client = PanaClient(RBID, PASSWORD)
            out = client.start(loop.time())
            while client.state not in (ClientState.OPEN, ClientState.FAILED):
                for data in out:
                    transport.sendto(data)
                out = client.receive(await asyncio.wait_for(inbox.get(), 5.0), loop.time())
            for data in out:
                transport.sendto(data)
            await asyncio.sleep(0.1)
            assert client.state is ClientState.OPEN
            session = pana.session_for(pac_ip)
            assert session == client.session
            assert pana.session_for(meter_ip) is None
            assert pana.forget(RBID) == 1
            assert pana.admitted == {}
            # a PaC that goes quiet after its PCI: the PAA retransmits, then gives up
            transport.sendto(PanaClient(RBID, PASSWORD).start(loop.time())[0])
            await asyncio.sleep(0.6)
            assert pana.admitted == {}
            assert inbox.qsize() == 3  # PAR[S] and its two retransmissions
        finally:
            transport.close()
            pana.close()

    asyncio.run(asyncio.wait_for(scenario(), 20.0))
