"""The SKSTACK-IP command interpreter of an emulated Wi-SUN B-route dongle (sans-IO).

A HEMS talks to a USB Wi-SUN dongle (BP35A1, RL7023 and the like) through a serial port with
SKSTACK-IP text commands; this machine answers them as the firmware does. Serial bytes go in
through ``feed``; what the transport must do comes out as an ``Output``: bytes to write to the
serial line, and actions (``SendUdp`` to the meter, ``SendPana`` for the join). UDP from the
meter comes in through ``udp_received`` / ``pana_received``; timers through ``next_deadline``
and ``on_timeout``, with time passed in. The state (registers, B-route ID and password, the
PANA session) outlives the serial port: the transport reopens the port, the machine carries on.

Serial syntax, as in the BP35A1 command reference and the logs of real dongles:

* A command is one line ending in CRLF; CR alone and LF alone are taken too. With register SFE
  = 1 (the default) the line is echoed first, then the answer: ``OK``, ``FAIL ERxx``, or data
  lines followed by ``OK``. SKLL64 answers with the address alone (no ``OK``).
* ``SKSENDTO handle ipaddr port sec [side] datalen data``: ``datalen`` is 4 hex digits and is
  followed by one space and exactly that many raw octets, with no CRLF; the echo is the header
  up to that space, then CRLF (the data is not echoed; without echo the CRLF still comes).
  ``side`` (BP35C0 and later) is accepted and ignored; a one-character field before the
  4-digit length is the side.
* Numbers are hexadecimal; IPv6 addresses print as eight groups of four upper-case hex digits
  (``FE80:0000:0000:0000:021D:1290:1234:5678``); SKLL64 makes the interface identifier from
  the 64-bit MAC with the universal/local bit flipped.
* Errors: ER04 unsupported command, ER05 wrong number of arguments, ER06 argument format or
  range, ER09 UART input error (here: a line longer than the buffer), ER10 the command failed.
* Events: EVENT 20 beacon received (followed by an EPANDESC block), EVENT 22 active scan done,
  EVENT 1F energy scan done (EEDSCAN follows), EVENT 21 UDP sent (param 00 sent, 01 failed,
  02 neighbour solicitation), EVENT 02 neighbour advertisement received, EVENT 24 PANA join
  failed, EVENT 25 PANA join done, EVENT 27 PANA session closed, EVENT 28 closing timed out.
  During SKJOIN the PANA datagrams to and from port 716 show up as EVENT 21 and ERXUDP lines,
  as on real dongles.
* ``ERXUDP sender dest rport lport senderlla secured datalen data``; the data is hex text,
  the form the HEMS scripts we looked at expect (ROHM's BP35A1 selects it with WOPT 01,
  Skyley's generic firmware always prints it), unless WOPT 00 asks for raw octets; ROPT reads
  the setting.
* SKSETRBID also sets the pairing ID (register S0A) to the last 8 characters of the ID; an
  active scan with information elements (mode 2) shows it as PairID and only finds meters
  when it is set, because a B-route meter answers only a matching pairing ID.

Emulation choices: the radio is the list of ``Beacon``s given to the constructor; a meter is
reachable when S2 and S3 match its channel and PAN ID and the address is its link-local one.
A scan ends ``scan_delay`` seconds after it starts, whatever its duration (a real full scan
takes seconds to minutes). The meter accepts UDP only from a dongle holding an open PANA
session, secured: before the join, or with SEC 0, SKSENDTO still answers EVENT 21 00 and OK
(the frame leaves the radio) but nothing reaches the meter, and SEC 1 (encryption required)
without a session fails with EVENT 21 01. Output is in the BP35A1 form (no side fields).
No flash: SKSAVE/SKLOAD and the registers not in the table answer ER04 or ER06.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.wisun.pana import ClientState, PanaClient, PanaSession, Retransmit
from openami.protocols.wisun.pana_message import PANA_PORT

__all__ = [
    "ECHONET_PORT",
    "Beacon",
    "Output",
    "SendPana",
    "SendUdp",
    "SkStack",
    "format_ipv6",
    "link_local",
    "mac_of_link_local",
]

ECHONET_PORT = 3610
MAX_LINE = 512  # longer input without a line end is thrown away (ER09)
MAX_DATALEN = 0x4D0  # SKSENDTO's largest payload
_HEADER = re.compile(
    rb"SKSENDTO ([^ \r\n]+) ([^ \r\n]+) ([^ \r\n]+) ([^ \r\n]+) (?:([^ \r\n]) )?([0-9A-Fa-f]{4}) "
)


@dataclass(frozen=True, slots=True)
class Beacon:
    """A coordinator (meter) on the emulated air."""

    mac: bytes
    pan_id: int
    channel: int  # 33..60 (0x21..0x3C)
    lqi: int = 0xE1


@dataclass(frozen=True, slots=True)
class SendUdp:
    dest_ip: str  # as printed by the dongle
    dest_port: int
    src_port: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class SendPana:
    dest_ip: str
    payload: bytes


Action = SendUdp | SendPana


@dataclass(frozen=True, slots=True)
class Output:
    serial: bytes = b""
    actions: tuple[Action, ...] = ()


def format_ipv6(address: str | ipaddress.IPv6Address) -> str:
    """Eight upper-case groups of four hex digits, as SKSTACK prints addresses."""
    packed = ipaddress.IPv6Address(address).packed
    return ":".join(f"{int.from_bytes(packed[i : i + 2], 'big'):04X}" for i in range(0, 16, 2))


def link_local(mac: bytes) -> str:
    """SKLL64: FE80::/64 with the MAC as interface identifier, universal/local bit flipped."""
    if len(mac) != 8:
        raise LocalProtocolError("a Wi-SUN MAC address is 8 octets")
    iid = bytes((mac[0] ^ 0x02,)) + mac[1:]
    return format_ipv6(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid))


def mac_of_link_local(address: str) -> bytes | None:
    try:
        packed = ipaddress.IPv6Address(address).packed
    except ValueError:
        return None
    if packed[:8] != b"\xfe\x80" + bytes(6):
        return None
    return bytes((packed[8] ^ 0x02,)) + packed[9:]


@dataclass(frozen=True, slots=True)
class _Register:
    digits: int  # hex digits ESREG prints; 0: ASCII text of ``high`` characters
    low: int
    high: int
    default: int | str
    writable: bool = True


# SKSREG registers (BP35A1 command reference 3.1). S1, the MAC, is filled in per dongle.
_REGISTERS: dict[int, _Register] = {
    0x01: _Register(16, 0, 2**64 - 1, 0, writable=False),  # 64-bit MAC address
    0x02: _Register(2, 0x21, 0x3C, 0x21),  # channel
    0x03: _Register(4, 0, 0xFFFF, 0xFFFF),  # PAN ID
    0x07: _Register(8, 0, 2**32 - 1, 0, writable=False),  # MAC frame counter
    0x0A: _Register(0, 8, 8, ""),  # pairing ID
    0x15: _Register(1, 0, 1, 1),  # answer beacon requests
    0x16: _Register(8, 60, 2**32 - 1, 0x384),  # PANA session lifetime (s)
    0x17: _Register(1, 0, 1, 1),  # automatic re-authentication
    0xA0: _Register(1, 0, 1, 1),  # MAC broadcast encryption
    0xA1: _Register(1, 0, 1, 1),  # ICMP echo answered
    0xFB: _Register(1, 0, 1, 0, writable=False),  # transmission time limit in force
    0xFD: _Register(16, 0, 2**64 - 1, 0, writable=False),  # cumulative transmission time
    0xFE: _Register(1, 0, 1, 1),  # echo back
    0xFF: _Register(1, 0, 1, 0),  # auto load
}
_JOIN_RETRANSMIT = Retransmit(0.5, 4.0, 4)  # 0.5+1+2+4+4 s: a join gives up within 12 s
_UDP_PORTS = {1: ECHONET_PORT, 2: PANA_PORT, 3: 0, 4: 0, 5: 0, 6: 0}  # handle -> local port


class _Fail(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"ER{code:02d}")
        self.code = code


def _hex(token: str, digits: int | None = None, low: int = 0, high: int | None = None) -> int:
    """A hex argument, ER06 unless it has ``digits`` digits (any number when None) and lies in
    ``low..high``."""
    if not token or len(token) > 16 or (digits is not None and len(token) != digits):
        raise _Fail(6)
    if any(c not in string.hexdigits for c in token):  # int() would take "0x", "_", "+"
        raise _Fail(6)
    value = int(token, 16)
    if value < low or (high is not None and value > high):
        raise _Fail(6)
    return value


def _address(token: str) -> str:
    try:
        return format_ipv6(token)
    except ValueError:
        raise _Fail(6) from None


class SkStack:
    """One emulated dongle. ``mac`` is its own 64-bit address; ``beacons`` the meters its radio
    can hear. PANA timers are ``pana_initiation``/``pana_timeout`` (defaults suit a HEMS on
    loopback; a real join takes seconds)."""

    _COMMANDS: ClassVar[dict[str, tuple[int, int, str]]] = {
        # name: (fewest arguments, most arguments, handler)
        "SKVER": (0, 0, "_skver"),
        "SKAPPVER": (0, 0, "_skappver"),
        "SKINFO": (0, 0, "_skinfo"),
        "SKRESET": (0, 0, "_skreset"),
        "SKSREG": (1, 2, "_sksreg"),
        "SKSETPWD": (2, 2, "_sksetpwd"),
        "SKSETRBID": (1, 1, "_sksetrbid"),
        "SKSCAN": (3, 4, "_skscan"),
        "SKLL64": (1, 1, "_skll64"),
        "SKJOIN": (1, 1, "_skjoin"),
        "SKTERM": (0, 0, "_skterm"),
        "SKSENDTO": (6, 7, "_sksendto_line"),  # only reached without the binary data
        "WOPT": (1, 1, "_wopt"),
        "ROPT": (0, 0, "_ropt"),
    }

    def __init__(
        self,
        mac: bytes,
        *,
        beacons: Sequence[Beacon] = (),
        version: str = "1.2.10",
        random: Callable[[int], bytes] = os.urandom,
        pana_initiation: Retransmit = _JOIN_RETRANSMIT,
        pana_request: Retransmit = _JOIN_RETRANSMIT,
        pana_timeout: float = 20.0,
        scan_delay: float = 0.1,
    ) -> None:
        self.mac = bytes(mac)
        self.address = link_local(self.mac)
        self.beacons = tuple(beacons)
        self._version = version
        self._random = random
        self._pana_timers = (pana_initiation, pana_request, pana_timeout)
        self._scan_delay = scan_delay
        self._buffer = bytearray()
        self._skip_lf = False
        self._sendto: tuple[bytes, tuple[str, ...]] | None = None  # header, its fields
        self._need = 0
        self._data = bytearray()
        self._serial = bytearray()
        self._actions: list[Action] = []
        self._reset()

    def _reset(self) -> None:
        self.registers: dict[int, int | str] = {n: r.default for n, r in _REGISTERS.items()}
        self.registers[0x01] = int.from_bytes(self.mac, "big")
        self.rbid: str | None = None
        self.password: str | None = None
        self.hex_output = True  # WOPT bit 0
        self._neighbours: set[str] = set()
        self._scan: tuple[int, int, float] | None = None  # mode, channel mask, deadline
        self._pana: PanaClient | None = None
        self._peer: str | None = None
        self._reported = ClientState.IDLE

    # --- what the transport calls -------------------------------------------------------

    @property
    def session(self) -> PanaSession | None:
        pana = self._pana
        return pana.session if pana is not None and pana.state is ClientState.OPEN else None

    @property
    def peer(self) -> str | None:
        """The address SKJOIN was given, printed the SKSTACK way."""
        return self._peer

    def feed(self, data: bytes, now: float) -> Output:
        self._buffer += data
        while True:
            if self._sendto is not None:
                take = bytes(self._buffer[: self._need - len(self._data)])
                del self._buffer[: len(take)]
                self._data += take
                if len(self._data) < self._need:
                    break
                self._finish_sendto(now)
                continue
            if not self._buffer:
                break
            if self._skip_lf and self._buffer[0] == 0x0A:
                del self._buffer[0]
                self._skip_lf = False
                continue
            self._skip_lf = False
            header = _HEADER.match(self._buffer)
            if header is not None:
                fields = tuple(f.decode("latin-1") if f else "" for f in header.groups())
                self._sendto = (bytes(header.group(0)), fields)
                self._need, self._data = int(fields[5], 16), bytearray()
                del self._buffer[: header.end()]
                continue
            ends = [i for i in (self._buffer.find(b"\r"), self._buffer.find(b"\n")) if i >= 0]
            if not ends:
                if len(self._buffer) > MAX_LINE:
                    self._buffer.clear()
                    self._line("FAIL ER09")
                break
            end = min(ends)
            line = bytes(self._buffer[:end]).decode("latin-1")
            self._skip_lf = self._buffer[end] == 0x0D
            del self._buffer[: end + 1]
            self._command(line, now)
        return self._flush()

    def discard_input(self) -> None:
        """The serial port was closed: a half-typed line (or SKSENDTO data) goes with it."""
        self._buffer.clear()
        self._sendto, self._data, self._skip_lf = None, bytearray(), False

    def udp_received(
        self, sender: str, sender_port: int, local_port: int, payload: bytes, now: float
    ) -> Output:
        """A UDP datagram from the meter (ECHONET Lite on 3610) becomes an ERXUDP line."""
        source = format_ipv6(sender)
        secured = self.session is not None and source == self._peer
        self._erxudp(source, sender_port, local_port, payload, secured)
        return self._flush()

    def pana_received(self, sender: str, payload: bytes, now: float) -> Output:
        source = format_ipv6(sender)
        self._erxudp(source, PANA_PORT, PANA_PORT, payload, False)
        pana = self._pana
        if pana is not None and source == self._peer:
            with contextlib.suppress(DecodeError):  # not PANA: dropped after it was shown
                self._send_pana(pana.receive(payload, now))
            self._report()
        return self._flush()

    def next_deadline(self) -> float | None:
        times = [self._scan[2]] if self._scan else []
        pana = self._pana.next_deadline() if self._pana is not None else None
        return min([*times, pana] if pana is not None else times, default=None)

    def on_timeout(self, now: float) -> Output:
        if self._scan is not None and now >= self._scan[2]:
            self._scan_done()
        if self._pana is not None:
            deadline = self._pana.next_deadline()
            if deadline is not None and now >= deadline:
                self._send_pana(self._pana.on_timeout(now))
                self._report()
        return self._flush()

    # --- plumbing -----------------------------------------------------------------------

    def _line(self, text: str) -> None:
        self._serial += text.encode("latin-1") + b"\r\n"

    def _flush(self) -> Output:
        out = Output(bytes(self._serial), tuple(self._actions))
        self._serial.clear()
        self._actions.clear()
        return out

    def _echo(self, text: bytes) -> None:
        if self.registers[0xFE]:
            self._serial += text + b"\r\n"

    def _command(self, line: str, now: float) -> None:
        if not line.strip():
            return
        self._echo(line.encode("latin-1"))
        name, *args = line.split()
        entry = self._COMMANDS.get(name)
        try:
            if entry is None:
                raise _Fail(4)
            low, high, handler = entry
            if not low <= len(args) <= high:
                raise _Fail(5)
            getattr(self, handler)(args, now)
        except _Fail as failure:
            self._line(f"FAIL ER{failure.code:02d}")

    def _erxudp(self, source: str, rport: int, lport: int, payload: bytes, secured: bool) -> None:
        mac = mac_of_link_local(source)
        lla = mac.hex().upper() if mac is not None else "0" * 16
        head = f"ERXUDP {source} {self.address} {rport:04X} {lport:04X} {lla} {int(secured)} "
        head += f"{len(payload):04X} "
        data = payload.hex().upper().encode() if self.hex_output else payload
        self._serial += head.encode() + data + b"\r\n"

    def _reachable(self, address: str) -> bool:
        return any(
            link_local(b.mac) == address
            and b.channel == self.registers[0x02]
            and b.pan_id == self.registers[0x03]
            for b in self.beacons
        )

    def _transmit(self, address: str) -> bool:
        """EVENT lines for one datagram to ``address``; whether it reaches the air there."""
        reachable = self._reachable(address)
        if address not in self._neighbours:
            self._line(f"EVENT 21 {address} 02")  # neighbour solicitation first
            if reachable:
                self._line(f"EVENT 02 {address}")
                self._neighbours.add(address)
        self._line(f"EVENT 21 {address} {'00' if reachable else '01'}")
        return reachable

    def _send_pana(self, datagrams: list[bytes]) -> None:
        assert self._peer is not None
        for datagram in datagrams:
            if self._transmit(self._peer):
                self._actions.append(SendPana(self._peer, datagram))

    def _report(self) -> None:
        """EVENT 24/25/27/28 when the PANA client reaches a new final state."""
        pana = self._pana
        if pana is None or pana.state is self._reported:
            return
        self._reported = pana.state
        if pana.state is ClientState.OPEN:
            self._line(f"EVENT 25 {self._peer}")
        elif pana.state is ClientState.FAILED:
            self._line(f"EVENT 24 {self._peer}")
        elif pana.state is ClientState.CLOSED:
            self._line(f"EVENT {27 if pana.termination_acknowledged else 28} {self._peer}")

    # --- commands -----------------------------------------------------------------------

    def _skver(self, args: list[str], now: float) -> None:
        self._line(f"EVER {self._version}")
        self._line("OK")

    def _skappver(self, args: list[str], now: float) -> None:
        self._line("EAPPVER openami")
        self._line("OK")

    def _skinfo(self, args: list[str], now: float) -> None:
        channel, pan = self.registers[0x02], self.registers[0x03]
        self._line(f"EINFO {self.address} {self.mac.hex().upper()} {channel:02X} {pan:04X} FFFE")
        self._line("OK")

    def _skreset(self, args: list[str], now: float) -> None:
        self._reset()
        self._line("OK")

    def _sksreg(self, args: list[str], now: float) -> None:
        if not args[0].startswith("S"):
            raise _Fail(6)
        number = _hex(args[0][1:], high=0xFF)
        register = _REGISTERS.get(number)
        if register is None:
            raise _Fail(6)
        if len(args) == 1:
            value = self.registers[number]
            text = value if isinstance(value, str) else f"{value:0{register.digits}X}"
            self._line(f"ESREG {text}")
        elif not register.writable:
            raise _Fail(6)
        elif register.digits == 0:
            if len(args[1]) != register.high or not args[1].isascii():
                raise _Fail(6)
            self.registers[number] = args[1]
        else:
            digits = register.digits
            if len(args[1]) > digits:
                raise _Fail(6)
            self.registers[number] = _hex(args[1], None, register.low, register.high)
        self._line("OK")

    def _sksetpwd(self, args: list[str], now: float) -> None:
        length = _hex(args[0], None, 1, 32)
        if len(args[1]) != length or not args[1].isascii():
            raise _Fail(6)
        self.password = args[1]
        self._line("OK")

    def _sksetrbid(self, args: list[str], now: float) -> None:
        if len(args[0]) != 32 or not args[0].isascii():
            raise _Fail(6)
        self.rbid = args[0]
        self.registers[0x0A] = args[0][-8:]
        self._line("OK")

    def _skscan(self, args: list[str], now: float) -> None:
        mode = _hex(args[0], 1)
        mask = _hex(args[1], 8)
        _hex(args[2], None, 0, 14)
        if len(args) == 4:
            _hex(args[3], 1, 0, 1)  # side: one radio here
        if mode not in (0, 2, 3):
            raise _Fail(6)
        if self._scan is not None:
            raise _Fail(10)
        self._scan = (mode, mask, now + self._scan_delay)
        self._line("OK")

    def _scan_done(self) -> None:
        assert self._scan is not None
        mode, mask, _ = self._scan
        self._scan = None
        channels = [c for c in range(0x21, 0x3D) if mask >> (c - 0x21) & 1]
        if mode == 0:
            heard = {b.channel: b.lqi for b in self.beacons}
            self._line(f"EVENT 1F {self.address}")
            self._line("EEDSCAN")
            self._line(" ".join(f"{c:02X} {heard.get(c, 0x04):02X}" for c in channels))
            return
        pairing = self.registers[0x0A]
        for beacon in self.beacons:
            if beacon.channel not in channels or (mode == 2 and not pairing):
                continue
            self._line(f"EVENT 20 {link_local(beacon.mac)}")
            self._line("EPANDESC")
            self._line(f"  Channel:{beacon.channel:02X}")
            self._line("  Channel Page:09")
            self._line(f"  Pan ID:{beacon.pan_id:04X}")
            self._line(f"  Addr:{beacon.mac.hex().upper()}")
            self._line(f"  LQI:{beacon.lqi:02X}")
            if mode == 2:
                self._line(f"  PairID:{pairing}")
        self._line(f"EVENT 22 {self.address}")

    def _skll64(self, args: list[str], now: float) -> None:
        self._line(link_local(_hex(args[0], 16).to_bytes(8, "big")))

    def _skjoin(self, args: list[str], now: float) -> None:
        peer = _address(args[0])
        if self.rbid is None or self.password is None:
            raise _Fail(10)
        if self._pana is not None and self._pana.state in (
            ClientState.INITIATING,
            ClientState.AUTHENTICATING,
            ClientState.TERMINATING,
        ):
            raise _Fail(10)
        initiation, request, timeout = self._pana_timers
        self._pana = PanaClient(
            self.rbid,
            self.password,
            random=self._random,
            initiation=initiation,
            request=request,
            auth_timeout=timeout,
        )
        self._peer, self._reported = peer, ClientState.INITIATING
        self._line("OK")
        self._send_pana(self._pana.start(now))

    def _skterm(self, args: list[str], now: float) -> None:
        if self._pana is None or self._pana.state is not ClientState.OPEN:
            raise _Fail(10)
        self._line("OK")
        self._send_pana(self._pana.terminate(now))

    def _sksendto_line(self, args: list[str], now: float) -> None:
        raise _Fail(5)  # the header did not end in "datalen " followed by the data

    def _finish_sendto(self, now: float) -> None:
        assert self._sendto is not None
        header, (handle, address, port, sec, side, _) = self._sendto
        payload = bytes(self._data)
        self._sendto, self._data = None, bytearray()
        # the firmware ends the command line itself after the data: CRLF even without echo
        self._serial += (header if self.registers[0xFE] else b"") + b"\r\n"
        try:
            local_port = _UDP_PORTS.get(_hex(handle, 1, 1, 6), 0)
            dest = _address(address)
            dest_port = _hex(port, 4, 1, 0xFFFF)
            security = _hex(sec, 1, 0, 2)
            if side:
                _hex(side, 1, 0, 1)
            if len(payload) > MAX_DATALEN or not payload:
                raise _Fail(6)
            if local_port == 0:
                raise _Fail(10)
        except _Fail as failure:
            self._line(f"FAIL ER{failure.code:02d}")
            return
        secured = self.session is not None and dest == self._peer
        if security == 1 and not secured:
            self._line(f"EVENT 21 {dest} 01")  # encryption required, no key for this peer
        elif self._transmit(dest) and secured and security != 0:
            self._actions.append(SendUdp(dest, dest_port, local_port, payload))
        self._line("OK")

    def _wopt(self, args: list[str], now: float) -> None:
        self.hex_output = bool(_hex(args[0], 2, 0, 1))
        self._line("OK")

    def _ropt(self, args: list[str], now: float) -> None:
        self._line(f"OK {int(self.hex_output):02X}")
