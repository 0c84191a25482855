from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.echonet import EOJ, ESV, Frame, Property, decode_frame, encode_frame
from tests.protocols.echonet.fakes import frames

CONTROLLER = EOJ(0x05, 0xFF, 0x01)
NODE_PROFILE = EOJ(0x0E, 0xF0, 0x01)
METER = EOJ(0x02, 0x88, 0x01)


def test_esv_codes_are_the_specifications() -> None:
    assert {esv.name: esv.value for esv in ESV} == {
        "SETI": 0x60,
        "SETC": 0x61,
        "GET": 0x62,
        "INF_REQ": 0x63,
        "SETGET": 0x6E,
        "SET_RES": 0x71,
        "GET_RES": 0x72,
        "INF": 0x73,
        "INFC": 0x74,
        "INFC_RES": 0x7A,
        "SETGET_RES": 0x7E,
        "SETI_SNA": 0x50,
        "SETC_SNA": 0x51,
        "GET_SNA": 0x52,
        "INF_SNA": 0x53,
        "SETGET_SNA": 0x5E,
    }


def test_get_of_operating_status_from_a_controller_to_the_node_profile() -> None:
    frame = Frame(1, CONTROLLER, NODE_PROFILE, ESV.GET, (Property(0x80),))
    golden = bytes.fromhex("1081 0001 05FF01 0EF001 62 01 80 00")
    assert encode_frame(frame) == golden
    assert decode_frame(golden) == frame


def test_instance_list_notification_as_a_smart_meter_sends_it() -> None:
    # Captured from a low-voltage smart meter in the field after a B-route join: the node
    # profile multicasts INF of 0xD5 listing its one instance, the meter 0x028801.
    golden = bytes.fromhex("108100000EF0010EF0017301D50401028801")
    frame = decode_frame(golden)
    assert frame == Frame(
        0, NODE_PROFILE, NODE_PROFILE, ESV.INF, (Property(0xD5, bytes.fromhex("01028801")),)
    )
    assert encode_frame(frame) == golden


def test_a_get_res_captured_from_a_meter_decodes() -> None:
    frame = decode_frame(bytes.fromhex("1081000102880105FF017201E70400000278"))
    assert (frame.tid, frame.seoj, frame.deoj, frame.esv) == (1, METER, CONTROLLER, ESV.GET_RES)
    assert frame.properties == (Property(0xE7, bytes.fromhex("00000278")),)
    assert frame.properties[0].pdc == 4


def test_setget_carries_the_set_list_before_the_get_list() -> None:
    frame = Frame(
        0x1234,
        CONTROLLER,
        METER,
        ESV.SETGET,
        properties=(Property(0xE2), Property(0xE7)),
        set_properties=(Property(0xE5, b"\x01"),),
    )
    raw = encode_frame(frame)
    assert raw == bytes.fromhex("1081 1234 05FF01 028801 6E 01 E5 01 01 02 E2 00 E7 00")
    assert decode_frame(raw) == frame
    empty_set = Frame(7, METER, CONTROLLER, ESV.SETGET_SNA, (Property(0xE7),))
    assert encode_frame(empty_set)[11:] == bytes.fromhex("00 01 E7 00")
    assert decode_frame(encode_frame(empty_set)) == empty_set


def test_eoj_helpers() -> None:
    meter = EOJ.from_int(0x028801)
    assert meter == METER == EOJ.from_bytes(b"\x02\x88\x01")
    assert meter.code == 0x0288
    assert meter.to_bytes() == b"\x02\x88\x01"
    assert str(meter) == "028801"
    assert meter.with_instance(0) == EOJ(2, 0x88, 0)
    with pytest.raises(DecodeError):
        EOJ.from_bytes(b"\x02\x88")
    with pytest.raises(LocalProtocolError):
        EOJ(0x100, 0, 0)
    with pytest.raises(LocalProtocolError):
        EOJ.from_int(0x1000000)


def test_frames_refuse_what_the_wire_cannot_carry() -> None:
    with pytest.raises(LocalProtocolError, match="PDC"):
        Property(0x80, bytes(256))
    with pytest.raises(LocalProtocolError, match="TID"):
        Frame(0x10000, CONTROLLER, METER, ESV.GET)
    with pytest.raises(LocalProtocolError, match="SetGet"):
        Frame(1, CONTROLLER, METER, ESV.GET, (), (Property(0x80),))
    with pytest.raises(LocalProtocolError, match="OPC"):
        Frame(1, CONTROLLER, METER, ESV.GET, tuple(Property(0x80) for _ in range(256)))


GET_80 = bytes.fromhex("1081 0001 05FF01 0EF001 62 01 80 00")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x10\x82" + GET_80[2:], "format 2 is not supported"),
        (b"\x10\x80" + GET_80[2:], "unknown EHD2"),
        (b"\x80\x81" + GET_80[2:], "EHD1"),
        (GET_80[:11], "truncated"),
        (b"", "truncated"),
        (GET_80[:10] + b"\x99" + GET_80[11:], "unknown ESV 0x99"),
        (GET_80 + b"\x00", "1 trailing octets"),
        (GET_80[:11] + b"\x02\x80\x00", "ends inside property 2"),
        (GET_80[:11] + b"\x01\x80", "ends inside property 1"),
        (GET_80[:11] + b"\x01\x80\x02\x30", "PDC 2 of EPC 0x80 overruns"),
        (GET_80[:10] + b"\x6e\x01\xe5\x01\x01", "OPCGet missing"),
        (GET_80[:10] + b"\x6e\x00\x00\x01", "trailing"),
    ],
)
def test_bad_frames_say_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_frame(raw)


@given(frames)
def test_frames_round_trip(frame: Frame) -> None:
    assert decode_frame(encode_frame(frame)) == frame


@given(st.binary(max_size=80))
def test_decoding_arbitrary_octets_raises_only_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_frame(raw)


# A format-1 header in front makes most draws reach the property lists.
@given(st.binary(max_size=60).map(lambda tail: b"\x10\x81" + tail))
def test_whatever_decodes_encodes_back_to_the_same_octets(raw: bytes) -> None:
    try:
        frame = decode_frame(raw)
    except DecodeError:
        return
    assert encode_frame(frame) == raw


@given(frames, st.integers(0, 200), st.integers(0, 0xFF))
def test_a_frame_with_one_octet_changed_decodes_exactly_or_not_at_all(
    frame: Frame, where: int, octet: int
) -> None:
    raw = bytearray(encode_frame(frame))
    raw[where % len(raw)] = octet
    try:
        decoded = decode_frame(bytes(raw))
    except DecodeError:
        return
    assert encode_frame(decoded) == bytes(raw)
