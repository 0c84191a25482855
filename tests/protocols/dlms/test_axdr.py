from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.dlms.axdr import (
    MAX_DEPTH,
    Data,
    DataType,
    decode_data,
    decode_length,
    encode_data,
    encode_length,
)
from tests.protocols.dlms.strategies import data


@given(data)
def test_every_value_round_trips(item: Data) -> None:
    assert decode_data(encode_data(item)) == item


@given(st.binary(max_size=400))
def test_decoding_any_bytes_raises_only_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_data(raw)


@given(data, st.data())
def test_truncated_encodings_are_refused(item: Data, draw: st.DataObject) -> None:
    encoded = encode_data(item)
    cut = draw.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(DecodeError):
        decode_data(encoded[:cut])


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (Data(DataType.DOUBLE_LONG_UNSIGNED, 5), "0600000005"),
        (Data(DataType.LONG, -2), "10fffe"),
        (Data(DataType.BOOLEAN, True), "03ff"),
        (Data(DataType.OCTET_STRING, bytes(range(3))), "0903000102"),
        (Data(DataType.VISIBLE_STRING, "AB"), "0a024142"),
        (Data(DataType.ENUM, 27), "161b"),
        (Data(DataType.NULL, None), "00"),
        (
            Data(DataType.STRUCTURE, (Data(DataType.UNSIGNED, 1), Data(DataType.LONG_UNSIGNED, 2))),
            "02021101120002",
        ),
        (Data(DataType.ARRAY, ()), "0100"),
    ],
)
def test_known_encodings(item: Data, expected: str) -> None:
    assert encode_data(item).hex() == expected


@pytest.mark.parametrize(
    ("n", "expected"), [(0, "00"), (127, "7f"), (128, "8180"), (300, "82012c")]
)
def test_length_encoding(n: int, expected: str) -> None:
    assert encode_length(n).hex() == expected
    assert decode_length(bytes.fromhex(expected), 0) == (n, len(expected) // 2)


def test_nesting_beyond_the_limit_is_refused_both_ways() -> None:
    deep = b"\x02\x01" * (MAX_DEPTH + 2) + b"\x00"
    with pytest.raises(DecodeError, match="nested"):
        decode_data(deep)
    item = Data(DataType.NULL, None)
    for _ in range(MAX_DEPTH + 2):
        item = Data(DataType.STRUCTURE, (item,))
    with pytest.raises(LocalProtocolError):
        encode_data(item)


def test_an_array_claiming_more_elements_than_bytes_fails_fast() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        decode_data(b"\x01\x84\x7f\xff\xff\xff\x00")


@pytest.mark.parametrize(
    "item",
    [
        Data(DataType.UNSIGNED, 256),
        Data(DataType.DOUBLE_LONG_UNSIGNED, -1),
        Data(DataType.DATE_TIME, b"short"),
        Data(DataType.VISIBLE_STRING, "日本"),
    ],
)
def test_values_that_do_not_fit_their_type_are_refused_on_encode(item: Data) -> None:
    with pytest.raises((LocalProtocolError, UnicodeEncodeError)):
        encode_data(item)


def test_trailing_bytes_and_unknown_tags_are_refused() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        decode_data(b"\x00\x00")
    with pytest.raises(DecodeError, match="unknown data type"):
        decode_data(b"\x07")
    with pytest.raises(DecodeError, match="not valid text"):
        decode_data(b"\x0a\x01\xff")
