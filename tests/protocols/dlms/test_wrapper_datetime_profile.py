from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError
from openami.protocols.dlms.axdr import Data, DataType, decode_data
from openami.protocols.dlms.cosem_datetime import decode_datetime, encode_datetime
from openami.protocols.dlms.obis import ObisCode
from openami.protocols.dlms.profile import (
    decode_entry,
    encode_entry,
    entry_prefix,
    parse_range_descriptor,
    range_descriptor,
)
from openami.protocols.dlms.wrapper import WrapperFrame, decode_wrapper, encode_wrapper

JST = timezone(timedelta(hours=9))


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=500))
def test_wrapper_round_trips(src: int, dst: int, apdu: bytes) -> None:
    frame = WrapperFrame(src, dst, apdu)
    assert decode_wrapper(encode_wrapper(frame)) == frame


@given(st.binary(max_size=40))
def test_wrapper_decoding_raises_only_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_wrapper(raw)


def test_wrapper_length_must_match_the_datagram() -> None:
    raw = encode_wrapper(WrapperFrame(1, 1, b"\x0f\x00"))
    with pytest.raises(DecodeError, match="length"):
        decode_wrapper(raw + b"\x00")
    with pytest.raises(DecodeError, match="version"):
        decode_wrapper(b"\x00\x02" + raw[2:])


def test_japan_time_carries_deviation_minus_540() -> None:
    raw = encode_datetime(datetime(2026, 8, 3, 0, 30, tzinfo=JST))
    assert raw.hex() == "07ea080301001e0000fde400"  # 2026-08-03 Mon 00:30:00.00, -540, ok
    assert decode_datetime(raw) == datetime(2026, 8, 2, 15, 30, tzinfo=UTC)


# hypothesis takes naive bounds and draws naive values; the test attaches Japan time itself
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))  # noqa: DTZ001
def test_datetime_round_trips_to_the_same_instant(naive: datetime) -> None:
    moment = naive.replace(microsecond=naive.microsecond // 10_000 * 10_000, tzinfo=JST)
    assert decode_datetime(encode_datetime(moment)) == moment


@given(st.binary(min_size=12, max_size=12))
def test_datetime_decoding_raises_only_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_datetime(raw)


def test_profile_entry_fast_encoding_matches_the_general_codec() -> None:
    end = datetime(2026, 8, 3, 1, 0, tzinfo=JST)
    raw = encode_entry(entry_prefix(end), 0, 12_345_678, 42, 310, 0)
    entry = decode_entry(decode_data(raw))
    assert entry.interval_end == int(end.timestamp())
    assert (entry.import_register, entry.export_register, entry.import_wh, entry.export_wh) == (
        12_345_678,
        42,
        310,
        0,
    )


def test_a_profile_entry_of_another_shape_is_refused() -> None:
    with pytest.raises(DecodeError):
        decode_entry(Data(DataType.STRUCTURE, (Data(DataType.UNSIGNED, 1),)))
    wrong = Data(DataType.STRUCTURE, tuple(Data(DataType.UNSIGNED, 1) for _ in range(6)))
    with pytest.raises(DecodeError, match="expected"):
        decode_entry(wrong)


def test_range_descriptor_round_trips() -> None:
    a = datetime(2026, 8, 3, 0, 30, tzinfo=JST)
    b = datetime(2026, 8, 3, 5, 0, tzinfo=JST)
    assert parse_range_descriptor(range_descriptor(a, b)) == (
        int(a.timestamp()),
        int(b.timestamp()),
    )


def test_obis_parsing() -> None:
    assert ObisCode.parse("1-0:1.8.0*255") == ObisCode(1, 0, 1, 8, 0, 255)
    assert str(ObisCode.from_bytes(bytes([0, 0, 1, 0, 0, 255]))) == "0.0.1.0.0.255"
    with pytest.raises(DecodeError):
        ObisCode.parse("1.0.1.8.0")
    with pytest.raises(DecodeError):
        ObisCode.from_bytes(b"\x00")
