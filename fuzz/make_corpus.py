"""Write the seed corpus of every fuzz target: valid encodings made by openami's own encoders.

Run from the project root: ``.venv/bin/python fuzz/make_corpus.py``. Each target's folder
``fuzz/corpus/<target>/`` is rewritten with exactly the seeds below (deterministic content,
descriptive names), so the committed corpus can be regenerated after a format change.
"""

from __future__ import annotations

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
