from __future__ import annotations

from datetime import datetime

import pytest

import openami.protocols.echonet as echonet
from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.echonet import (
    EOJ,
    ESV,
    JST,
    NODE_PROFILE,
    EchonetClient,
    EchonetNode,
    FixedTimeReading,
    Frame,
    HalfHourlyHistory,
    History2,
    History2Setting,
    LowVoltageSmartMeter,
    Property,
    encode_frame,
)
from tests.protocols.echonet.fakes import FakeMeterSource, export_at, import_at

METER = EOJ(0x02, 0x88, 0x01)


def test_requests_carry_increasing_tids_from_the_controller() -> None:
    client = EchonetClient(first_tid=0xFFFE)
    first = client.get(METER, [0xE7, 0xE8])
    assert encode_frame(first) == bytes.fromhex("1081 FFFE 05FF01 028801 62 02 E7 00 E8 00")
    second = client.inf_req(NODE_PROFILE, [0xD5])
    assert (second.tid, second.esv) == (0xFFFF, ESV.INF_REQ)
    third = client.set_c(METER, {0xE5: 1, 0x81: b"\x08"})
    assert third.tid == 0
    assert third.properties == (Property(0xE5, b"\x01"), Property(0x81, b"\x08"))
    fourth = client.set_i(METER, {0xED: History2Setting(datetime(2026, 5, 20, 14, tzinfo=JST), 6)})
    assert (fourth.tid, fourth.esv) == (1, ESV.SETI)
    assert fourth.properties == (Property(0xED, bytes.fromhex("07EA05140E0006")),)


def test_requests_the_tables_cannot_encode_are_local_errors() -> None:
    client = EchonetClient()
    with pytest.raises(LocalProtocolError):
        client.get(METER, [])
    with pytest.raises(LocalProtocolError):
        client.set_c(METER, {0x42: 1})
    with pytest.raises(LocalProtocolError):
        client.set_c(EOJ(0x01, 0x30, 0x01), {0x80: True})
    with pytest.raises(LocalProtocolError):
        client.set_c(METER, {0xE5: "yesterday"})
    with pytest.raises(LocalProtocolError):
        EchonetClient(first_tid=0x10000)


@pytest.mark.parametrize(
    ("captured", "values"),
    [
        ("1081000102880105FF017201D30400000001", {0xD3: 1}),
        ("1081000102880105FF017201D70106", {0xD7: 6}),
        ("1081000102880105FF017201E0040000FE73", {0xE0: 65139}),
        ("1081000102880105FF017201E70400000278", {0xE7: 632}),
        ("1081000102880105FF017201E804001E0032", {0xE8: (30, 50)}),
        (
            "1081000102880105FF017201EA0B07EA05140E00000000FE68",
            {0xEA: FixedTimeReading(datetime(2026, 5, 20, 14, tzinfo=JST), 65128)},
        ),
        ("1081000102880105FF0152018300", {}),  # Get_SNA: the refused 0x83 is left out
        ("108100000EF0010EF0017301D50401028801", {0xD5: (METER,)}),
    ],
)
def test_replies_captured_from_a_meter_parse(captured: str, values: dict[int, object]) -> None:
    assert EchonetClient().parse(bytes.fromhex(captured)) == values


def test_unknown_classes_and_epcs_come_back_raw() -> None:
    client = EchonetClient()
    aircon = Frame(
        1, EOJ(0x01, 0x30, 0x01), EOJ(5, 0xFF, 1), ESV.GET_RES, (Property(0xB3, b"\x1a"),)
    )
    assert client.parse(aircon) == {0xB3: b"\x1a"}
    odd = Frame(1, METER, EOJ(5, 0xFF, 1), ESV.GET_RES, (Property(0xF0, b"\x01"),))
    assert client.parse(odd) == {0xF0: b"\x01"}
    with pytest.raises(DecodeError):
        client.parse(Frame(1, METER, EOJ(5, 0xFF, 1), ESV.GET_RES, (Property(0xE7, b"\x01"),)))


def test_a_set_response_has_no_values_even_when_it_echoes_refused_edts() -> None:
    # SetC_SNA echoes what the requester asked for, which need not decode at all.
    refused = Property(0xED, bytes.fromhex("27E80401001E01"))
    sna = Frame(1, METER, EOJ(5, 0xFF, 1), ESV.SETC_SNA, (Property(0xE5), refused))
    assert EchonetClient().parse(sna) == {}
    assert EchonetClient().parse(EchonetClient().get(METER, [0xE7])) == {}


def test_a_hems_reads_a_meter_node_end_to_end() -> None:
    node = EchonetNode([LowVoltageSmartMeter(FakeMeterSource())], manufacturer_code=0x16)
    client = EchonetClient()

    def exchange(frame: Frame) -> dict[int, object]:
        (reply,) = node.handle(encode_frame(frame))
        assert reply.tid == frame.tid
        return client.parse(encode_frame(reply))

    assert exchange(client.get(NODE_PROFILE, [0xD6]))[0xD6] == (METER,)
    assert exchange(client.set_c(METER, {0xE5: 2})) == {}
    history = exchange(client.get(METER, [0xE2]))[0xE2]
    assert history == HalfHourlyHistory(2, tuple(import_at(2, slot) for slot in range(48)))
    start = datetime(2026, 5, 20, 14, tzinfo=JST)
    assert exchange(client.set_c(METER, {0xED: History2Setting(start, 2)})) == {}
    assert exchange(client.get(METER, [0xEC]))[0xEC] == History2(
        start,
        ((import_at(0, 28), export_at(0, 28)), (import_at(0, 27), export_at(0, 27))),
    )


def test_the_public_names() -> None:
    assert sorted(echonet.__all__) == sorted(
        [
            "CLASSES",
            "CONTROLLER",
            "DEVICE_SUPERCLASS",
            "ECHONET_PORT",
            "EOJ",
            "ESV",
            "JST",
            "LOW_VOLTAGE_SMART_METER_CLASS",
            "MULTICAST_IPV4",
            "MULTICAST_IPV6",
            "NODE_PROFILE",
            "NODE_PROFILE_CLASS",
            "UNITS",
            "Access",
            "EchonetClient",
            "EchonetNode",
            "EchonetObject",
            "FixedTimeReading",
            "Frame",
            "HalfHourlyHistory",
            "History2",
            "History2Setting",
            "IdentificationNumber",
            "LowVoltageMeterSource",
            "LowVoltageSmartMeter",
            "NodeProfile",
            "ObjectClass",
            "Property",
            "PropertySpec",
            "Version",
            "decode_frame",
            "decode_property_map",
            "encode_frame",
            "encode_property_map",
        ]
    )
    for name in echonet.__all__:
        assert getattr(echonet, name) is not None, name
    assert (echonet.ECHONET_PORT, echonet.MULTICAST_IPV4) == (3610, "224.0.23.0")
