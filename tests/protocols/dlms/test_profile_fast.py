from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError
from openami.protocols.dlms.apdu import DataNotification, decode_apdu
from openami.protocols.dlms.profile import (
    decode_entry,
    decode_push_fast,
    encode_entry,
    entry_prefix,
)

JST = timezone(timedelta(hours=9))
u32 = st.integers(0, 2**32 - 1)


def _push(invoke: int, end: datetime, status: int, values: tuple[int, int, int, int]) -> bytes:
    return (
        b"\x0f"
        + invoke.to_bytes(4, "big")
        + b"\x00"
        + encode_entry(entry_prefix(end), status, *values)
    )


ends = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)).map(  # noqa: DTZ001
    lambda d: d.replace(second=0, microsecond=0, tzinfo=JST)
)


@given(u32, ends, st.integers(0, 255), st.tuples(u32, u32, u32, u32))
def test_fast_path_equals_the_general_codec(
    invoke: int, end: datetime, status: int, values: tuple[int, int, int, int]
) -> None:
    plain = _push(invoke, end, status, values)
    general = decode_apdu(plain)
    assert isinstance(general, DataNotification)
    assert decode_push_fast(plain) == decode_entry(general.body)


@given(ends, st.tuples(u32, u32, u32, u32), st.data())
def test_any_bit_flip_is_refused_by_the_fast_path_or_decoded_the_same_as_generally(
    end: datetime, values: tuple[int, int, int, int], draw: st.DataObject
) -> None:
    plain = bytearray(_push(1, end, 0, values))
    bit = draw.draw(st.integers(0, len(plain) * 8 - 1))
    plain[bit // 8] ^= 1 << (bit % 8)
    try:
        fast = decode_push_fast(bytes(plain))
    except DecodeError:
        fast = None  # a clock that is no longer a calendar instant
    if fast is None:
        return
    general = decode_apdu(bytes(plain))
    assert isinstance(general, DataNotification)
    with contextlib.suppress(DecodeError):
        assert fast == decode_entry(general.body)


def test_other_layouts_fall_back_to_the_general_codec() -> None:
    assert decode_push_fast(b"") is None
    assert decode_push_fast(b"\x0f" + bytes(43)) is None
