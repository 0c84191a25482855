"""compact-array (A-XDR tag 19). Round trips are covered by ``test_axdr``'s property test, whose
``data`` strategy also draws compact arrays; here: exact bytes, refusals and malformed input."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.dlms.axdr import (
    MAX_DEPTH,
    CompactArray,
    Data,
    DataType,
    TypeDescription,
    decode_data,
    encode_data,
)
from tests.protocols.dlms.strategies import compact_arrays

T = TypeDescription
D = DataType


def _compact(desc: TypeDescription, *elements: Data) -> Data:
    return Data(D.COMPACT_ARRAY, CompactArray(desc, elements))


def _pair(n: int, energy: int) -> Data:
    return Data(D.STRUCTURE, (Data(D.LONG_UNSIGNED, n), Data(D.DOUBLE_LONG_UNSIGNED, energy)))


# Derived by hand from the ASN.1 of IEC 62056-6-2:
#   13                 compact-array tag (19)
#   02 02 12 06        contents-description: structure [2] of 2 fields (A-XDR length 02):
#                      long-unsigned [18] = 0x12, double-long-unsigned [6] = 0x06
#   0c                 array-contents: octet string of 12 octets = 2 elements of 2 + 4 octets
#   0001 00000064      element 1: 1, 100 (no type tags: the description gives the types)
#   0002 000000c8      element 2: 2, 200
PAIRS = _compact(
    T.structure(T(D.LONG_UNSIGNED), T(D.DOUBLE_LONG_UNSIGNED)), _pair(1, 100), _pair(2, 200)
)
PAIRS_HEX = "13 02021206 0c 000100000064 0002000000c8"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (PAIRS, PAIRS_HEX),
        # array [1] of 3 unsigned: 01 | number-of-elements 0003 | 11; two elements of 3 octets.
        (
            _compact(
                T.array(3, T(D.UNSIGNED)),
                Data(D.ARRAY, tuple(Data(D.UNSIGNED, v) for v in (1, 2, 3))),
                Data(D.ARRAY, tuple(Data(D.UNSIGNED, v) for v in (4, 5, 6))),
            ),
            "13 01000311 06 010203 040506",
        ),
        # octet-string elements keep their own A-XDR length inside the contents.
        (
            _compact(
                T(D.OCTET_STRING), Data(D.OCTET_STRING, b"\xab\xcd"), Data(D.OCTET_STRING, b"")
            ),
            "13 09 04 02abcd 00",
        ),
        # no elements at all: the description and an empty octet string.
        (_compact(T(D.LONG)), "13 10 00"),
        # null-data inside a structure takes no octets but stays in the element.
        (
            _compact(
                T.structure(T(D.NULL), T(D.BOOLEAN)),
                Data(D.STRUCTURE, (Data(D.NULL, None), Data(D.BOOLEAN, True))),
            ),
            "13 02020003 01 ff",
        ),
    ],
)
def test_known_encodings(item: Data, expected: str) -> None:
    assert encode_data(item) == bytes.fromhex(expected)
    assert decode_data(bytes.fromhex(expected)) == item


def test_a_compact_array_nests_inside_ordinary_data() -> None:
    outer = Data(D.STRUCTURE, (Data(D.UNSIGNED, 7), PAIRS))
    encoded = encode_data(outer)
    assert encoded == bytes.fromhex("0202 1107 " + PAIRS_HEX)
    assert decode_data(encoded) == outer


def test_descriptions_are_frozen_hashable_values() -> None:
    desc = T.structure(T(D.UNSIGNED), T.array(2, T(D.LONG)))
    assert desc == T(D.STRUCTURE, 0, (T(D.UNSIGNED), T(D.ARRAY, 2, (T(D.LONG),))))
    assert len({desc, T.structure(T(D.UNSIGNED), T.array(2, T(D.LONG)))}) == 1
    with pytest.raises(AttributeError):
        desc.count = 3  # type: ignore[misc]


@given(compact_arrays())
def test_every_drawn_compact_array_round_trips(item: Data) -> None:
    assert decode_data(encode_data(item)) == item


@pytest.mark.parametrize(
    ("item", "match"),
    [
        # elements that do not match the description
        (_compact(T(D.UNSIGNED), Data(D.LONG, 1)), "described as"),
        (_compact(T.array(2, T(D.UNSIGNED)), Data(D.ARRAY, (Data(D.UNSIGNED, 1),))), "not 2"),
        (
            _compact(T.structure(T(D.UNSIGNED)), Data(D.STRUCTURE, ())),
            "STRUCTURE of 0, not 1",
        ),
        (
            _compact(T.structure(T(D.UNSIGNED)), Data(D.STRUCTURE, (Data(D.LONG, 1),))),
            "described as",
        ),
        (_compact(T(D.UNSIGNED), Data(D.UNSIGNED, 256)), "out of range"),
        # descriptions that are not valid
        (_compact(T(D.COMPACT_ARRAY)), "no type description"),
        (_compact(T(D.ARRAY, 1, ())), "one type"),
        (_compact(T.array(0x10000, T(D.UNSIGNED))), "0..65535"),
        (_compact(T(D.STRUCTURE, 1, (T(D.UNSIGNED),))), "not a count"),
        (_compact(T(D.UNSIGNED, 1)), "no count or children"),
        (_compact(T(D.NULL)), "zero octets"),
        (_compact(T.structure()), "zero octets"),
        (_compact(T.array(0, T(D.UNSIGNED))), "zero octets"),
        (_compact(T.structure(*[T(D.NULL)] * 40, T(D.UNSIGNED))), "values in 1 octets"),
    ],
)
def test_the_encoder_refuses_what_the_description_does_not_allow(item: Data, match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        encode_data(item)


def test_descriptions_nested_too_deep_are_refused_both_ways() -> None:
    desc = T(D.UNSIGNED)
    for _ in range(MAX_DEPTH):
        desc = T.structure(desc)
    with pytest.raises(LocalProtocolError, match="nested"):
        encode_data(_compact(desc))
    raw = "13" + "0201" * MAX_DEPTH + "11" + "00"
    with pytest.raises(DecodeError, match="nested"):
        decode_data(bytes.fromhex(raw))
    # one level less fits: the elements sit one level below the compact-array itself
    assert decode_data(bytes.fromhex("13" + "0201" * (MAX_DEPTH - 1) + "11" + "00"))


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("13", "truncated: type description"),
        ("1312", "truncated: length"),
        ("13120300", "truncated: compact-array contents"),
        ("1312030001ff", "not whole 2s"),  # 3 octets of long-unsigned
        ("13 01ffff11 01 00", "not whole 65535s"),  # one element would take 65535 octets
        ("1309020501", "truncated: OCTET_STRING"),  # the last element runs past the contents
        ("1309010509", "truncated"),  # ... even when more input follows the contents
        ("13130000", "tag 19 .* not allowed"),  # no compact-array inside a description
        ("13070000", "tag 7 .* not allowed"),
        ("130100", "truncated: array description"),
        ("13027f11", "exceeds the input"),
        ("130000", "zero octets"),
        ("13 0200 00", "zero octets"),
        ("13 01000011 00", "zero octets"),
        ("13 0229" + " 00" * 40 + " 11 01 01", "42 values in 1 octets"),
        ("13 0a 02 0180", "not valid text"),
    ],
)
def test_malformed_compact_arrays_raise_decode_error(raw: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_data(bytes.fromhex(raw))


def test_an_expansion_bomb_is_refused_fast() -> None:
    # structure { array[65535] of array[65535] of null-data, unsigned }: 4 billion values per
    # one-octet element, which would take hours to build
    raw = bytes.fromhex("13 0202 01ffff 01ffff 00 11 01 00")
    started = time.perf_counter()
    with pytest.raises(DecodeError, match="values in 1 octets"):
        decode_data(raw)
    assert time.perf_counter() - started < 0.5


@given(st.binary(max_size=200))
def test_any_bytes_after_the_tag_raise_only_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_data(b"\x13" + raw)
