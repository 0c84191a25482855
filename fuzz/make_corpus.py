"""Write the seed corpus of every fuzz target: valid encodings made by openami's own encoders.

Run from the project root: ``.venv/bin/python fuzz/make_corpus.py``. Each target's folder
``fuzz/corpus/<target>/`` is rewritten with exactly the seeds below (deterministic content,
descriptive names), so the committed corpus can be regenerated after a format change.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from fixed_keys import AK, EK, SYSTEM_TITLE
from openami.bus.contract import CollectRequest, ReadBatch, encode_message
from openami.protocols.dlms import obis
from openami.protocols.dlms.apdu import (
    DataAccessResult,
    DataNotification,
    GeneralGloCiphering,
    GetRequestNormal,
    GetResponseNormal,
    encode_apdu,
)
from openami.protocols.dlms.axdr import (
    BitString,
    CompactArray,
    Data,
    DataType,
    TypeDescription,
    decode_data,
    encode_data,
)
from openami.protocols.dlms.cosem_datetime import encode_datetime
from openami.protocols.dlms.profile import encode_entry, entry_prefix, range_descriptor
from openami.protocols.dlms.security import (
    SC_AUTHENTICATED,
    SC_AUTHENTICATED_ENCRYPTED,
    SuiteZero,
)
from openami.protocols.dlms.wrapper import WrapperFrame, encode_wrapper
from openami.protocols.echonet import (
    EOJ,
    ESV,
    LOW_VOLTAGE_SMART_METER_CLASS,
    NODE_PROFILE,
    Access,
    EchonetClient,
    FixedTimeReading,
    Frame,
    HalfHourlyHistory,
    History2,
    History2Setting,
    Property,
    encode_frame,
)
from openami.protocols.wisun.eap_psk import EapCode, EapPacket, encode_eap
from openami.protocols.wisun.pana import ClientState, PanaClient, PanaServer
from openami.protocols.wisun.pana_message import AvpCode, decode_message
from openami.protocols.wisun.skstack import link_local

CORPUS = Path(__file__).resolve().parent / "corpus"
JST = timezone(timedelta(hours=9), "JST")
END = datetime(2024, 4, 1, 0, 30, tzinfo=JST)

D = DataType
T = TypeDescription


def _datetimes() -> dict[str, bytes]:
    return {
        "jst": encode_datetime(END),
        "utc_hundredths": encode_datetime(datetime(2023, 12, 31, 23, 59, 59, 990_000, tzinfo=UTC)),
        "minus_five_status": encode_datetime(
            datetime(2020, 2, 29, 12, 0, tzinfo=timezone(timedelta(hours=-5))), clock_status=0x80
        ),
        "first_year": encode_datetime(datetime(1, 1, 1, 12, tzinfo=UTC)),
        "last_year": encode_datetime(datetime(9999, 12, 31, 11, 59, tzinfo=UTC)),
    }


def _profile_entry(minutes: int, imp: int) -> bytes:
    return encode_entry(entry_prefix(END + timedelta(minutes=minutes)), 0, 1000 + imp, 5, imp, 0)


def _data() -> dict[str, bytes]:
    pair = T.structure(T(D.LONG_UNSIGNED), T(D.DOUBLE_LONG_UNSIGNED))
    items = {
        "null": Data(D.NULL, None),
        "bool": Data(D.BOOLEAN, True),
        "scalars": Data(
            D.STRUCTURE,
            (
                Data(D.DOUBLE_LONG, -5),
                Data(D.LONG64_UNSIGNED, 2**64 - 1),
                Data(D.FLOAT32, 1.5),
                Data(D.FLOAT64, -0.25),
                Data(D.ENUM, 27),
                Data(D.BCD, 0x42),
                Data(D.DATE, b"\x07\xe8\x04\x01\x01"),
                Data(D.TIME, b"\x00\x1e\x00\x00"),
                Data(D.DONT_CARE, None),
            ),
        ),
        "strings": Data(
            D.ARRAY,
            (
                Data(D.OCTET_STRING, obis.CLOCK.to_bytes()),
                Data(D.VISIBLE_STRING, "OPENAMI"),
                Data(D.UTF8_STRING, "東京"),
                Data(D.BIT_STRING, BitString(10, b"\xa5\x40")),
                Data(D.OCTET_STRING, bytes(200)),  # a two-octet A-XDR length
            ),
        ),
        "range_descriptor": range_descriptor(END, END + timedelta(days=1)),
        "compact_pairs": Data(
            D.COMPACT_ARRAY,
            CompactArray(
                pair,
                tuple(
                    Data(D.STRUCTURE, (Data(D.LONG_UNSIGNED, n), Data(D.DOUBLE_LONG_UNSIGNED, w)))
                    for n, w in ((1, 100), (2, 200), (3, 300))
                ),
            ),
        ),
        "compact_strings": Data(
            D.COMPACT_ARRAY,
            CompactArray(
                T.structure(T(D.OCTET_STRING), T.array(2, T(D.UNSIGNED)), T(D.NULL)),
                (
                    Data(
                        D.STRUCTURE,
                        (
                            Data(D.OCTET_STRING, encode_datetime(END)),
                            Data(D.ARRAY, (Data(D.UNSIGNED, 1), Data(D.UNSIGNED, 2))),
                            Data(D.NULL, None),
                        ),
                    ),
                ),
            ),
        ),
    }
    seeds = {name: encode_data(item) for name, item in items.items()}
    seeds["profile_entry"] = _profile_entry(0, 120)
    seeds["profile_buffer"] = b"\x01\x02" + _profile_entry(0, 120) + _profile_entry(30, 95)
    return seeds


def _apdus() -> dict[str, bytes]:
    entry = decode_data(_profile_entry(0, 120))
    return {
        "data_notification": encode_apdu(DataNotification(0x40000001, encode_datetime(END), entry)),
        "data_notification_compact": encode_apdu(
            DataNotification(1, None, Data(D.COMPACT_ARRAY, CompactArray(T(D.UNSIGNED), ())))
        ),
        "get_request": encode_apdu(GetRequestNormal(0xC1, 7, obis.LOAD_PROFILE.to_bytes(), 2)),
        "get_request_range": encode_apdu(
            GetRequestNormal(
                0xC1,
                7,
                obis.LOAD_PROFILE.to_bytes(),
                2,
                1,
                range_descriptor(END, END + timedelta(hours=1)),
            )
        ),
        "get_response_data": encode_apdu(GetResponseNormal(0xC1, Data(D.LONG_UNSIGNED, 300))),
        "get_response_error": encode_apdu(
            GetResponseNormal(0xC1, DataAccessResult.OBJECT_UNDEFINED)
        ),
        "glo_ciphering": encode_apdu(
            GeneralGloCiphering(SYSTEM_TITLE, _suite().protect(SYSTEM_TITLE, 7, b"\x0f" + bytes(9)))
        ),
    }


def _wrappers(apdus: dict[str, bytes]) -> dict[str, bytes]:
    return {
        "empty": encode_wrapper(WrapperFrame(1, 1, b"")),
        "notification": encode_wrapper(WrapperFrame(1, 0x66, apdus["data_notification"])),
        "get_request": encode_wrapper(WrapperFrame(0x10, 1, apdus["get_request_range"])),
    }


def _suite() -> SuiteZero:
    return SuiteZero(EK, AK)


def _security() -> dict[str, bytes]:
    zero = _suite()
    notification = b"\x0f\x00\x00\x00\x01\x00" + _profile_entry(0, 120)
    return {
        "encrypted": zero.protect(SYSTEM_TITLE, 1, notification, SC_AUTHENTICATED_ENCRYPTED),
        "authenticated": zero.protect(SYSTEM_TITLE, 2, notification, SC_AUTHENTICATED),
        "encrypted_empty": zero.protect(SYSTEM_TITLE, 0xFFFFFFFF, b"", SC_AUTHENTICATED_ENCRYPTED),
    }


def _bus() -> dict[str, bytes]:
    batch = ReadBatch(
        meter_id=[1, 2],
        channel=[1, 3],
        interval_end=[1_711_900_800, 1_711_900_800],
        value_wh=[120, 1_000_120],
        source=[1, 2],
        status=[0, 0x80],
    )
    return {
        "reads": encode_message(batch),
        "reads_empty": encode_message(ReadBatch([], [], [], [], [], [])),
        "collect": encode_message(CollectRequest(7, 1_711_900_800, 1_711_987_200, "req-1")),
    }


def _echonet() -> dict[str, bytes]:
    meter = EOJ(0x02, 0x88, 0x01)
    client = EchonetClient()
    table = LOW_VOLTAGE_SMART_METER_CLASS

    def reply(epc: int, value: object) -> Property:
        spec = table.spec(epc)
        assert spec is not None
        return Property(epc, spec.encode(value))

    at = END.replace(hour=0)
    get_res = Frame(
        1,
        meter,
        client.seoj,
        ESV.GET_RES,
        (
            reply(0xE7, -1_250),
            reply(0xE8, (-63, None)),
            reply(0xE2, HalfHourlyHistory(1, (*range(47), None))),
            reply(0xEA, FixedTimeReading(at, 123_456)),
            reply(0xEC, History2(at, ((10, 1), (None, None), (8, 0)))),
            reply(0x9F, table.epcs(Access.GET)),
        ),
    )
    return {
        "get_node_profile": encode_frame(client.get(NODE_PROFILE, [0x80, 0x9F, 0xD6, 0xD7])),
        "get_meter_all": encode_frame(client.get(meter, sorted(table.epcs(Access.GET)))),
        "get_res_meter": encode_frame(get_res),
        "get_sna": bytes.fromhex("1081000102880105FF0152018300"),
        "setc_history_days": encode_frame(
            client.set_c(meter, {0xE5: 1, 0xED: History2Setting(at, 6)})
        ),
        "seti_location": encode_frame(client.set_i(meter, {0x81: b"\x08"})),
        "setget": encode_frame(
            Frame(7, client.seoj, meter, ESV.SETGET, (Property(0xE2),), (Property(0xE5, b"\x02"),))
        ),
        "inf_instance_list": bytes.fromhex("108100000EF0010EF0017301D50401028801"),
        "inf_req_all_meters": encode_frame(client.inf_req(meter.with_instance(0), [0x80, 0x88])),
        "infc": encode_frame(
            Frame(9, client.seoj, NODE_PROFILE, ESV.INFC, (Property(0xD5, b"\x01\x05\xff\x01"),))
        ),
    }


# --- Route B: the constants must match fuzz/fuzz_pana.py and fuzz/fuzz_skstack.py ------------

RBID = "00112233445566778899AABBCCDDEEFF"
PASSWORD = "0123456789AB"  # noqa: S105 -- a test B-route password, guards nothing
CLIENT_SEED, SERVER_SEED = 1, 2  # fuzz_skstack: the dongle's and the meter's
METER = bytes.fromhex("001D129012345678")


def _pana_exchange(
    password: str = PASSWORD, known: dict[str, str] | None = None
) -> tuple[list[bytes], list[bytes]]:
    """A join and its termination in memory, with the targets' seeded randomness and time 0:
    ``(PaC to PAA, PAA to PaC)`` datagrams in order."""
    client = PanaClient(RBID, password, random=random.Random(CLIENT_SEED).randbytes)
    lookup = {RBID: PASSWORD} if known is None else known
    server = PanaServer(lookup.get, random=random.Random(SERVER_SEED).randbytes)
    up_log: list[bytes] = []
    down_log: list[bytes] = []
    up = client.start(0.0)
    while up:
        down: list[bytes] = []
        for datagram in up:
            up_log.append(datagram)
            down += server.receive(datagram, 0.0)
        up = []
        for datagram in down:
            down_log.append(datagram)
            up += client.receive(datagram, 0.0)
        if not up and client.state is ClientState.OPEN:
            up = client.terminate(0.0)  # as fuzz_pana does with a client that opened
    return up_log, down_log


def _datagrams(client_side: bool, datagrams: list[bytes], step: int = 0) -> bytes:
    """fuzz_pana's layout: role and count, then step | length | datagram each."""
    out = bytearray(((0x80 if client_side else 0) | len(datagrams),))
    for datagram in datagrams:
        out += bytes((step,)) + len(datagram).to_bytes(2, "big") + datagram
    return bytes(out)


def _pana() -> dict[str, bytes]:
    up, down = _pana_exchange()
    assert len(up) == 6  # PCI, 4 PAN, PTR
    assert len(down) == 5  # 4 PAR, PTA
    rejected_up, _ = _pana_exchange(password="WRONGPASSWRD")  # noqa: S106 -- the wrong one
    _, unknown_down = _pana_exchange(known={})
    eap_psk_first = decode_message(down[1]).value(AvpCode.EAP_PAYLOAD)
    assert eap_psk_first is not None
    return {
        "pci": up[0],
        "par_start": down[0],
        "pan_eap_psk_2": up[2],
        "par_eap_psk_3": down[2],
        "par_complete": down[3],
        "ptr": up[5],
        "eap_psk_1": eap_psk_first,
        "eap_success": encode_eap(EapPacket(EapCode.SUCCESS, 7)),
        "server_join_and_terminate": _datagrams(False, up),
        "server_wrong_password": _datagrams(False, rejected_up),
        "server_slow_join": _datagrams(False, up, step=20),  # 5 s apart: retransmissions
        "client_join_and_terminate": _datagrams(True, down),
        "client_unknown_rbid": _datagrams(True, unknown_down),
    }


class _Steps:
    """An input for fuzz_skstack, built the way its FuzzedDataProvider takes it apart: octet
    strings from the front, one-octet numbers from the back (the first taken is the last)."""

    def __init__(self, live: bool) -> None:
        self._front = bytearray()
        self._back = bytearray((int(live),))

    def feed(self, raw: bytes, chunk: int = 64) -> _Steps:
        for start in range(0, len(raw), chunk):
            piece = raw[start : start + chunk]
            self._back += bytes((0, len(piece) - 1))
            self._front += piece
        return self

    def lines(self, *lines: str, end: bytes = b"\r\n", chunk: int = 64) -> _Steps:
        return self.feed(b"".join(line.encode("ascii") + end for line in lines), chunk)

    def wait(self, tenths: int) -> _Steps:
        self._back += bytes((4, tenths))
        return self

    def pana(self, payload: bytes, sender: int = 0) -> _Steps:
        self._back += bytes((5, sender, len(payload)))
        self._front += payload
        return self

    def udp(self, payload: bytes, sender: int = 0, port: int = 0) -> _Steps:
        self._back += bytes((6, sender, port, len(payload)))
        self._front += payload
        return self

    def build(self) -> bytes:
        return bytes(self._front) + bytes(reversed(self._back))


def _skstack() -> dict[str, bytes]:
    meter_ll = link_local(METER)
    setup = (
        "SKVER",
        f"SKSETPWD C {PASSWORD}",
        f"SKSETRBID {RBID}",
        "SKSCAN 2 FFFFFFFF 6 0",
    )
    after_scan = (f"SKLL64 {METER.hex().upper()}", "SKSREG S2 21", "SKSREG S3 8888")
    sendto = f"SKSENDTO 1 {meter_ll} 0E1A 1 0 0005 ".encode() + bytes.fromhex("1081000102")
    frame = bytes.fromhex("1081000102880105FF017201E704FFFFFB1E")

    def hems(live: bool) -> _Steps:
        steps = _Steps(live).lines(*setup).wait(2).lines(*after_scan, f"SKJOIN {meter_ll}")
        return steps.wait(5).feed(sendto)

    return {
        "hems_join_live": hems(True).udp(frame).lines("SKTERM").wait(5).build(),
        "hems_join_silent_meter": hems(False).wait(255).wait(255).build(),
        "hems_small_chunks_lf": _Steps(True)
        .lines(*setup, end=b"\n", chunk=3)
        .wait(2)
        .lines(*after_scan, f"SKJOIN {meter_ll}", end=b"\r", chunk=5)
        .feed(sendto, chunk=7)
        .build(),
        "registers_and_options": _Steps(False)
        .lines(
            "SKINFO",
            "SKAPPVER",
            "SKSREG S16 E10",
            "SKSREG S0A 89ABCDEF",
            "SKSREG S0A",
            "SKSREG SFE 0",
            "WOPT 00",
            "ROPT",
            "SKSCAN 0 FFFFFFFF 4",
        )
        .wait(2)
        .lines("SKSCAN 3 00000001 6")
        .wait(2)
        .lines("SKRESET", "SKSREG S1 0", "SKTERM", "SKSAVE")
        .build(),
        "received_datagrams": _Steps(False)
        .udp(frame)
        .udp(frame, sender=1, port=1)
        .pana(bytes(16))
        .lines(f"SKSETPWD C {PASSWORD}", f"SKSETRBID {RBID}", f"SKJOIN {meter_ll}")
        .pana(bytes.fromhex("0000001080000002000000010000000a"))
        .wait(30)
        .build(),
    }


def main() -> None:
    apdus = _apdus()
    corpora = {
        "axdr": _data(),
        "apdu": apdus,
        "wrapper": _wrappers(apdus),
        "datetime": _datetimes(),
        "security": _security(),
        "bus": _bus(),
        "echonet": _echonet(),
        "pana": _pana(),
        "skstack": _skstack(),
    }
    for target, seeds in corpora.items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            if stale.name.removesuffix(".bin") not in seeds:
                stale.unlink()
        for name, raw in seeds.items():
            (folder / f"{name}.bin").write_bytes(raw)
        print(f"{target}: {len(seeds)} seeds in {folder.relative_to(CORPUS.parent.parent)}")


if __name__ == "__main__":
    main()
