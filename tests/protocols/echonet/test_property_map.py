from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.echonet import decode_property_map, encode_property_map

# The Get property map (0x9F) captured from a low-voltage smart meter: 25 properties, so the
# bitmap form. Its 25 EPCs are exactly the ones openami's 0x0288 object serves.
METER_GET_MAP = bytes.fromhex("1941414160404000624300414040430202")
METER_GET_EPCS = frozenset(
    {0x80, 0x81, 0x82, 0x88, 0x8A, 0x8D, 0x97, 0x98, 0x9D, 0x9E, 0x9F, 0xD3, 0xD7}
    | {0xE0, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE7, 0xE8, 0xEA, 0xEB, 0xEC, 0xED}
)


def test_a_captured_bitmap_decodes_to_the_meters_properties() -> None:
    assert decode_property_map(METER_GET_MAP) == METER_GET_EPCS
    assert encode_property_map(METER_GET_EPCS) == METER_GET_MAP


def test_bit_layout_low_nibble_picks_the_octet_high_nibble_the_bit() -> None:
    epcs = set(range(0x80, 0x90))  # 16 EPCs: the bitmap form, bit 0 of every octet
    assert encode_property_map(epcs) == b"\x10" + b"\x01" * 16
    assert encode_property_map(set(range(0xF0, 0x100))) == b"\x10" + b"\x80" * 16
    corners = {0x80, 0xF0, 0x8F, 0xFF} | set(range(0xA1, 0xAD))  # 16
    raw = encode_property_map(corners)
    assert raw[1] == 0x81  # 0x80 is bit 0, 0xF0 bit 7 of octet 1
    assert raw[16] == 0x81  # 0x8F and 0xFF in octet 16
    assert raw[2] == 1 << 2  # 0xA1: octet 1 + 1, bit 0xA - 8
    assert decode_property_map(raw) == corners


def test_the_list_form_holds_up_to_fifteen() -> None:
    assert encode_property_map({0x80, 0x81, 0x88}) == bytes.fromhex("03808188")
    assert decode_property_map(bytes.fromhex("03808188")) == {0x80, 0x81, 0x88}
    assert encode_property_map([]) == b"\x00"
    assert decode_property_map(b"\x00") == frozenset()
    fifteen = set(range(0x80, 0x8F))
    assert encode_property_map(fifteen) == bytes((15, *sorted(fifteen)))
    sixteen = set(range(0x80, 0x90))
    assert len(encode_property_map(sixteen)) == 17


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (bytes.fromhex("038081"), "list form takes 4"),
        (bytes.fromhex("018081"), "list form takes 2"),
        (bytes.fromhex("02807F"), "EPC 0x7F"),
        (bytes.fromhex("028080"), "only 1 differ"),
        (b"\x10" + b"\x01" * 15, "17-octet bitmap"),
        (b"\x11" + b"\x01" * 16, "count 17 but the bitmap sets 16"),
        (b"\xff" + b"\xff" * 16, "count 255 but the bitmap sets 128"),
    ],
)
def test_inconsistent_maps_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_property_map(raw)


def test_epcs_below_0x80_cannot_be_encoded() -> None:
    with pytest.raises(LocalProtocolError):
        encode_property_map({0x7F})
    with pytest.raises(LocalProtocolError):
        encode_property_map({0x100})


@given(st.frozensets(st.integers(0x80, 0xFF)))
def test_maps_round_trip_in_the_form_their_size_calls_for(epcs: frozenset[int]) -> None:
    raw = encode_property_map(epcs)
    assert len(raw) == (1 + len(epcs) if len(epcs) < 16 else 17)
    assert raw[0] == len(epcs)
    assert decode_property_map(raw) == epcs


@given(st.binary(max_size=20))
def test_decoding_arbitrary_octets_raises_only_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        epcs = decode_property_map(raw)
        assert all(0x80 <= epc <= 0xFF for epc in epcs) and len(epcs) == raw[0]
