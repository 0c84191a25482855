from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import LocalProtocolError
from openami.protocols.wisun.pana import PanaServer
from openami.protocols.wisun.pana_message import MessageType, decode_message
from openami.protocols.wisun.skstack import (
    Beacon,
    Output,
    SendUdp,
    SkStack,
    format_ipv6,
    link_local,
    mac_of_link_local,
)

RBID = "00112233445566778899AABBCCDDEEFF"
PASSWORD = "0123456789AB"
METER = bytes.fromhex("001D129012345678")
METER_LL = "FE80:0000:0000:0000:021D:1290:1234:5678"
OWN = bytes.fromhex("001D1290000AC890")
OWN_LL = "FE80:0000:0000:0000:021D:1290:000A:C890"
FRAME = bytes.fromhex("1081000105FF010288016201E700")


class Rig:
    """The machine with an in-memory meter behind it: a PAA per PCI and an ECHONET Lite
    stand-in that answers every datagram the machine hands over."""

    def __init__(self, known: dict[str, str] | None = None) -> None:
        self.known = {RBID: PASSWORD} if known is None else known
        beacon = Beacon(METER, 0x8888, 0x21)
        self.machine = SkStack(OWN, beacons=[beacon], random=random.Random(1).randbytes)
        self.server: PanaServer | None = None
        self.meter_silent = False
        self.now = 0.0
        self.udp: list[SendUdp] = []

    def feed(self, data: bytes) -> str:
        return self._pump(self.machine.feed(data, self.now))

    def command(self, line: str) -> list[str]:
        return self.feed(line.encode() + b"\r\n").split("\r\n")[:-1]

    def _pump(self, out: Output) -> str:
        text = out.serial.decode("latin-1")
        for action in out.actions:
            if isinstance(action, SendUdp):
                self.udp.append(action)
                continue
            assert action.dest_ip == METER_LL
            if self.meter_silent:
                continue
            if decode_message(action.payload).type is MessageType.CLIENT_INITIATION:
                self.server = PanaServer(self.known.get, random=random.Random(2).randbytes)
            assert self.server is not None
            for answer in self.server.receive(action.payload, self.now):
                text += self._pump(self.machine.pana_received(METER_LL, answer, self.now))
        return text

    def wait(self, seconds: float) -> list[str]:
        """Advance time through every deadline within ``seconds``."""
        end, text = self.now + seconds, ""
        while (deadline := self.machine.next_deadline()) is not None and deadline <= end:
            self.now = deadline
            text += self._pump(self.machine.on_timeout(self.now))
        self.now = end
        return text.split("\r\n")[:-1]

    def configure(self) -> None:
        self.command(f"SKSETPWD C {PASSWORD}")
        self.command(f"SKSETRBID {RBID}")
        self.command("SKSREG S2 21")
        self.command("SKSREG S3 8888")

    def join(self) -> list[str]:
        self.configure()
        return self.command(f"SKJOIN {METER_LL}")


def test_skll64_formats_like_real_dongles() -> None:
    assert link_local(METER) == METER_LL
    assert (
        link_local(bytes.fromhex("021D129012345678")) == "FE80:0000:0000:0000:001D:1290:1234:5678"
    )
    assert mac_of_link_local(METER_LL) == METER
    assert mac_of_link_local("2001:db8::1") is None
    assert format_ipv6("fe80::1") == "FE80:0000:0000:0000:0000:0000:0000:0001"
    rig = Rig()
    assert rig.command("SKLL64 001D129012345678") == ["SKLL64 001D129012345678", METER_LL]
    assert rig.command("SKLL64 001d129012345678")[1] == METER_LL
    assert rig.command("SKLL64 001D1290123456") == ["SKLL64 001D1290123456", "FAIL ER06"]
    with pytest.raises(LocalProtocolError):
        link_local(b"short")


def test_version_info_and_reset() -> None:
    rig = Rig()
    assert rig.command("SKVER") == ["SKVER", "EVER 1.2.10", "OK"]
    assert rig.command("SKAPPVER") == ["SKAPPVER", "EAPPVER openami", "OK"]
    assert rig.command("SKINFO") == [
        "SKINFO",
        f"EINFO {OWN_LL} 001D1290000AC890 21 FFFF FFFE",
        "OK",
    ]
    rig.configure()
    assert rig.command("SKINFO")[1].endswith(" 21 8888 FFFE")
    assert rig.command("SKRESET") == ["SKRESET", "OK"]
    assert rig.machine.rbid is None
    assert rig.machine.password is None
    assert rig.command("SKSREG S3") == ["SKSREG S3", "ESREG FFFF", "OK"]
    assert rig.command("SKVER 1") == ["SKVER 1", "FAIL ER05"]


def test_registers_read_write_and_errors() -> None:
    rig = Rig()
    assert rig.command("SKSREG S2 2A") == ["SKSREG S2 2A", "OK"]
    assert rig.command("SKSREG S02") == ["SKSREG S02", "ESREG 2A", "OK"]
    assert rig.command("SKSREG S16") == ["SKSREG S16", "ESREG 00000384", "OK"]
    assert rig.command("SKSREG S1")[1] == "ESREG 001D1290000AC890"
    assert rig.command("SKSREG S2 20")[-1] == "FAIL ER06"  # below channel 33
    assert rig.command("SKSREG S2 3D")[-1] == "FAIL ER06"
    assert rig.command("SKSREG S3 12345")[-1] == "FAIL ER06"
    assert rig.command("SKSREG S3 XYZ")[-1] == "FAIL ER06"
    assert rig.command("SKSREG S1 0000000000000001")[-1] == "FAIL ER06"  # read-only
    assert rig.command("SKSREG S99")[-1] == "FAIL ER06"
    assert rig.command("SKSREG X2")[-1] == "FAIL ER06"
    assert rig.command("SKSREG")[-1] == "FAIL ER05"
    assert rig.command("SKSREG S2 21 22")[-1] == "FAIL ER05"
    assert rig.command("SKSREG SA ABCDEFGH") == ["SKSREG SA ABCDEFGH", "OK"]
    assert rig.command("SKSREG S0A")[1] == "ESREG ABCDEFGH"
    assert rig.command("SKSREG SA ABC")[-1] == "FAIL ER06"


def test_echo_back_can_be_turned_off() -> None:
    rig = Rig()
    assert rig.command("SKSREG SFE 0") == ["SKSREG SFE 0", "OK"]
    assert rig.command("SKVER") == ["EVER 1.2.10", "OK"]
    assert rig.command("SKSREG SFE") == ["ESREG 0", "OK"]
    rig.join()
    assert rig.feed(_sendto(1)) == f"\r\nEVENT 21 {METER_LL} 00\r\nOK\r\n"


def test_credentials() -> None:
    rig = Rig()
    assert rig.command(f"SKSETPWD C {PASSWORD}") == [f"SKSETPWD C {PASSWORD}", "OK"]
    assert rig.machine.password == PASSWORD
    assert rig.command("SKSETPWD C short")[-1] == "FAIL ER06"  # length says 12
    assert rig.command("SKSETPWD ZZ password")[-1] == "FAIL ER06"
    assert rig.command("SKSETPWD 21 " + "x" * 33)[-1] == "FAIL ER06"  # longer than 32
    assert rig.command("SKSETPWD C")[-1] == "FAIL ER05"
    assert rig.command(f"SKSETRBID {RBID}") == [f"SKSETRBID {RBID}", "OK"]
    assert rig.machine.registers[0x0A] == "CCDDEEFF"  # pairing ID: the last 8 characters
    assert rig.command("SKSETRBID 0011")[-1] == "FAIL ER06"
    assert rig.command("SKSETRBID")[-1] == "FAIL ER05"


def test_unknown_commands_and_line_ends() -> None:
    rig = Rig()
    assert rig.command("SKFOO") == ["SKFOO", "FAIL ER04"]
    assert rig.command("skver") == ["skver", "FAIL ER04"]
    assert rig.feed(b"SKVER\r") == "SKVER\r\nEVER 1.2.10\r\nOK\r\n"
    assert rig.feed(b"\nSKVER\n") == "SKVER\r\nEVER 1.2.10\r\nOK\r\n"  # the CR's LF is skipped
    assert rig.feed(b"\r\n\r\n") == ""
    assert rig.feed(b"SKV") == ""
    assert rig.feed(b"ER\r\n") == "SKVER\r\nEVER 1.2.10\r\nOK\r\n"
    assert rig.feed(b"X" * 600) == "FAIL ER09\r\n"


def test_active_scan_with_pairing_id() -> None:
    rig = Rig()
    assert rig.command("SKSCAN 2 FFFFFFFF 6 0") == ["SKSCAN 2 FFFFFFFF 6 0", "OK"]
    assert rig.wait(1.0) == [f"EVENT 22 {OWN_LL}"]  # no pairing ID yet: the meter keeps quiet
    rig.command(f"SKSETRBID {RBID}")
    assert rig.command("SKSCAN 2 FFFFFFFF 6") == ["SKSCAN 2 FFFFFFFF 6", "OK"]
    assert rig.wait(1.0) == [
        f"EVENT 20 {METER_LL}",
        "EPANDESC",
        "  Channel:21",
        "  Channel Page:09",
        "  Pan ID:8888",
        "  Addr:001D129012345678",
        "  LQI:E1",
        "  PairID:CCDDEEFF",
        f"EVENT 22 {OWN_LL}",
    ]


def test_other_scans_and_scan_errors() -> None:
    rig = Rig()
    rig.command("SKSCAN 3 FFFFFFFF 6")
    lines = rig.wait(1.0)
    assert "  LQI:E1" in lines
    assert not any("PairID" in line for line in lines)
    rig.command("SKSCAN 3 FFFFFFFE 6")  # channel 33 (bit 0) left out
    assert rig.wait(1.0) == [f"EVENT 22 {OWN_LL}"]
    rig.command("SKSCAN 0 00000003 2")
    assert rig.wait(1.0) == [f"EVENT 1F {OWN_LL}", "EEDSCAN", "21 E1 22 04"]
    assert rig.command("SKSCAN 1 FFFFFFFF 6")[-1] == "FAIL ER06"
    assert rig.command("SKSCAN 2 FFFF 6")[-1] == "FAIL ER06"
    assert rig.command("SKSCAN 2 FFFFFFFF F")[-1] == "FAIL ER06"
    assert rig.command("SKSCAN 2 FFFFFFFF 6 2")[-1] == "FAIL ER06"
    assert rig.command("SKSCAN 2 FFFFFFFF")[-1] == "FAIL ER05"
    rig.command("SKSCAN 3 FFFFFFFF 6")
    assert rig.command("SKSCAN 3 FFFFFFFF 6")[-1] == "FAIL ER10"  # still scanning


def test_join_succeeds_with_the_events_real_dongles_print() -> None:
    rig = Rig()
    lines = rig.join()
    assert lines[:5] == [
        f"SKJOIN {METER_LL}",
        "OK",
        f"EVENT 21 {METER_LL} 02",
        f"EVENT 02 {METER_LL}",
        f"EVENT 21 {METER_LL} 00",
    ]
    assert lines[-1] == f"EVENT 25 {METER_LL}"
    erxudp = [line for line in lines if line.startswith("ERXUDP")]
    assert len(erxudp) == 4
    assert erxudp[0].startswith(f"ERXUDP {METER_LL} {OWN_LL} 02CC 02CC 001D129012345678 0 ")
    assert rig.machine.session is not None
    assert rig.machine.session == (rig.server.session if rig.server else None)


def test_join_fails_with_event_24() -> None:
    rig = Rig(known={RBID: "otherpasswd1"})
    assert rig.join()[-1] == f"EVENT 24 {METER_LL}"
    assert rig.machine.session is None
    unknown = Rig(known={})
    assert unknown.join()[-1] == f"EVENT 24 {METER_LL}"


def test_join_to_an_unreachable_meter_times_out() -> None:
    rig = Rig()
    rig.configure()
    rig.command("SKSREG S2 22")  # the meter is on channel 33
    lines = rig.command(f"SKJOIN {METER_LL}")
    assert lines[-2:] == [f"EVENT 21 {METER_LL} 02", f"EVENT 21 {METER_LL} 01"]
    assert rig.wait(60.0)[-1] == f"EVENT 24 {METER_LL}"
    assert rig.machine.next_deadline() is None


def test_join_errors() -> None:
    rig = Rig()
    assert rig.command(f"SKJOIN {METER_LL}")[-1] == "FAIL ER10"  # no ID or password
    rig.configure()
    assert rig.command("SKJOIN FE80::ZZ")[-1] == "FAIL ER06"
    assert rig.command("SKJOIN")[-1] == "FAIL ER05"
    rig.meter_silent = True
    rig.command(f"SKJOIN {METER_LL}")
    assert rig.command(f"SKJOIN {METER_LL}")[-1] == "FAIL ER10"  # a join is running


def _sendto(sec: int, data: bytes = FRAME, handle: int = 1, side: str = " 0") -> bytes:
    return f"SKSENDTO {handle} {METER_LL} 0E1A {sec}{side} {len(data):04X} ".encode() + data


def test_sendto_after_join_reaches_the_meter() -> None:
    rig = Rig()
    rig.join()
    header = f"SKSENDTO 1 {METER_LL} 0E1A 1 0 {len(FRAME):04X} "
    assert rig.feed(_sendto(1)) == f"{header}\r\nEVENT 21 {METER_LL} 00\r\nOK\r\n"
    assert rig.udp == [SendUdp(METER_LL, 0x0E1A, 3610, FRAME)]
    rig.feed(_sendto(2, side=""))  # the BP35A1 form, without the side field
    assert len(rig.udp) == 2
    rig.feed(_sendto(0))  # plain text: the meter would drop it
    assert len(rig.udp) == 2


def test_sendto_before_join_does_not_reach_the_meter() -> None:
    rig = Rig()
    rig.configure()
    assert rig.feed(_sendto(1)).split("\r\n")[1:-1] == [f"EVENT 21 {METER_LL} 01", "OK"]
    assert rig.feed(_sendto(2)).split("\r\n")[-2] == "OK"
    assert rig.udp == []


def test_sendto_errors() -> None:
    rig = Rig()
    rig.join()
    assert rig.feed(_sendto(1, handle=7)).split("\r\n")[-2] == "FAIL ER06"
    assert rig.feed(_sendto(1, handle=3)).split("\r\n")[-2] == "FAIL ER10"  # no port
    assert rig.feed(_sendto(3)).split("\r\n")[-2] == "FAIL ER06"
    assert rig.feed(_sendto(1, data=b"")).split("\r\n")[-2] == "FAIL ER06"
    assert rig.feed(_sendto(1, data=bytes(0x4D1))).split("\r\n")[-2] == "FAIL ER06"
    bad_address = b"SKSENDTO 1 FE80::G 0E1A 1 0001 x"
    assert rig.feed(bad_address).split("\r\n")[-2] == "FAIL ER06"
    assert rig.command(f"SKSENDTO 1 {METER_LL} 0E1A 1 0 000E")[-1] == "FAIL ER05"
    assert rig.command(f"SKSENDTO 1 {METER_LL}")[-1] == "FAIL ER05"
    assert rig.udp == []
    assert rig.command("SKVER")[-1] == "OK"  # still in step


@given(st.binary(min_size=1, max_size=40), st.data())
def test_binary_sendto_split_anywhere_gives_the_same_result(
    payload: bytes, data: st.DataObject
) -> None:
    stream = _sendto(1, data=payload) + b"SKVER\r\n"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    whole = Rig()
    whole.join()
    expected = whole.feed(stream)
    split = Rig()
    split.join()
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert "".join(split.feed(piece) for piece in pieces) == expected
    assert split.udp == whole.udp == [SendUdp(METER_LL, 0x0E1A, 3610, payload)]


def test_erxudp_from_the_meter_in_hex_or_raw() -> None:
    rig = Rig()
    rig.join()
    line = rig._pump(rig.machine.udp_received(METER_LL, 3610, 3610, FRAME, rig.now))
    assert line == (
        f"ERXUDP {METER_LL} {OWN_LL} 0E1A 0E1A 001D129012345678 1 000E {FRAME.hex().upper()}\r\n"
    )
    assert rig.command("ROPT") == ["ROPT", "OK 01"]
    assert rig.command("WOPT 00") == ["WOPT 00", "OK"]
    raw = rig.machine.udp_received("fe80::21d:1290:1234:5678", 3610, 3610, b"\r\n", rig.now)
    assert raw.serial.endswith(b" 1 0002 \r\n\r\n")
    assert rig.command("ROPT")[1] == "OK 00"
    assert rig.command("WOPT 02")[-1] == "FAIL ER06"


def test_term_closes_the_session() -> None:
    rig = Rig()
    assert rig.command("SKTERM")[-1] == "FAIL ER10"
    rig.join()
    lines = rig.command("SKTERM")
    assert lines[:2] == ["SKTERM", "OK"]
    assert lines[-1] == f"EVENT 27 {METER_LL}"
    assert rig.machine.session is None
    rig.join()
    rig.meter_silent = True
    rig.command("SKTERM")
    assert rig.wait(60.0)[-1] == f"EVENT 28 {METER_LL}"


def test_state_survives_the_port_being_reopened() -> None:
    rig = Rig()
    rig.join()
    assert rig.feed(b"SKSENDTO 1 FE80") == ""
    rig.machine.discard_input()  # the HEMS closed the port in the middle of a command
    assert rig.command("SKVER")[-1] == "OK"
    assert rig.machine.session is not None
    assert rig.machine.rbid == RBID
    rig.feed(_sendto(1)[:-3])
    rig.machine.discard_input()  # ... or in the middle of SKSENDTO's data
    assert rig.feed(_sendto(1)).endswith("OK\r\n")
    assert len(rig.udp) == 1


@given(st.lists(st.binary(max_size=60), max_size=8))
def test_any_serial_input_is_answered_without_raising(chunks: list[bytes]) -> None:
    rig = Rig()
    for chunk in chunks:
        rig.feed(chunk)
    rig.wait(60.0)
    rig.machine.discard_input()
    assert rig.command("SKVER")[-1] == "OK"


@given(
    st.lists(
        st.sampled_from(
            [
                b"SKSENDTO ",
                b"SKSREG S",
                b"SKSCAN 2 ",
                b"SKJOIN ",
                b"SKSETPWD ",
                b"FE80::1 ",
                b"0E1A ",
                b"0001 ",
                b"1 ",
                b"\r",
                b"\n",
                b"x",
                b"\x00",
                b"\xff",
            ]
        ),
        max_size=25,
    )
)
def test_command_shaped_input_is_answered_without_raising(words: list[bytes]) -> None:
    rig = Rig()
    rig.configure()
    rig.feed(b"".join(words))
    rig.wait(60.0)
    rig.machine.discard_input()
    assert rig.command("SKVER")[-1] == "OK"
