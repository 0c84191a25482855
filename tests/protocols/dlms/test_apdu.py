from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError
from openami.protocols.dlms.apdu import (
    Apdu,
    DataAccessResult,
    DataNotification,
    GeneralGloCiphering,
    GetRequestNormal,
    GetResponseNormal,
    decode_apdu,
    encode_apdu,
)
from openami.protocols.dlms.axdr import Data, DataType
from tests.protocols.dlms.strategies import data

apdus = st.one_of(
    st.builds(
        DataNotification,
        st.integers(0, 2**32 - 1),
        st.one_of(st.none(), st.binary(min_size=12, max_size=12)),
        data,
    ),
    st.builds(
        GetRequestNormal,
        st.integers(0, 255),
        st.integers(0, 65535),
        st.binary(min_size=6, max_size=6),
        st.integers(-128, 127),
    ),
    st.builds(
        lambda i, c, o, a, s, p: GetRequestNormal(i, c, o, a, s, p),
        st.integers(0, 255),
        st.integers(0, 65535),
        st.binary(min_size=6, max_size=6),
        st.integers(-128, 127),
        st.integers(0, 255),
        data,
    ),
    st.builds(
        GetResponseNormal, st.integers(0, 255), st.one_of(data, st.sampled_from(DataAccessResult))
    ),
    st.builds(GeneralGloCiphering, st.binary(min_size=8, max_size=8), st.binary(max_size=300)),
)


@given(apdus)
def test_every_apdu_round_trips(apdu: Apdu) -> None:
    assert decode_apdu(encode_apdu(apdu)) == apdu


@given(st.binary(max_size=300))
def test_decoding_any_bytes_raises_only_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_apdu(raw)


@given(st.sampled_from([0x0F, 0xC0, 0xC4, 0xDB]), st.binary(max_size=64))
def test_known_tags_with_random_bodies_raise_only_decode_error(tag: int, body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_apdu(bytes([tag]) + body)


def test_get_request_for_the_clock_matches_the_green_book_layout() -> None:
    # get-request-normal, invoke-id 0xC1, class 8, 0.0.1.0.0.255, attribute 2, no selection
    request = GetRequestNormal(0xC1, 8, bytes([0, 0, 1, 0, 0, 255]), 2)
    assert encode_apdu(request).hex() == "c001c100080000010000ff0200"


def test_data_notification_layout() -> None:
    apdu = DataNotification(1, None, Data(DataType.DOUBLE_LONG_UNSIGNED, 7))
    assert encode_apdu(apdu).hex() == "0f00000001000600000007"


def test_a_system_title_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(DecodeError, match="system-title"):
        decode_apdu(bytes.fromhex("db03414243") + b"\x00")
