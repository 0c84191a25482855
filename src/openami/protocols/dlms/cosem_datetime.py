"""COSEM date-time (12 octets): year, month, day, weekday, hour, minute, second,
hundredths, deviation, clock status.

Deviation is in minutes and follows the Blue Book sign: UTC = local time + deviation, so Japan
Standard Time (UTC+9) carries -540. 0x8000 means "not specified".
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone

from openami.errors import DecodeError, LocalProtocolError

__all__ = ["DEVIATION_UNSPECIFIED", "decode_datetime", "encode_datetime"]

DEVIATION_UNSPECIFIED = -0x8000
_LAYOUT = struct.Struct(">HBBBBBBBhB")


def encode_datetime(moment: datetime, clock_status: int = 0) -> bytes:
    """Encode an aware datetime in its own time zone's local time with its deviation."""
    offset = moment.utcoffset()
    if offset is None:
        raise LocalProtocolError("COSEM date-time needs an aware datetime")
    deviation = -int(offset.total_seconds() // 60)
    return _LAYOUT.pack(
        moment.year,
        moment.month,
        moment.day,
        moment.isoweekday(),
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond // 10_000,
        deviation,
        clock_status,
    )


def decode_datetime(raw: bytes) -> datetime:
    """Decode a fully specified COSEM date-time into an aware UTC datetime."""
    if len(raw) != _LAYOUT.size:
        raise DecodeError(f"date-time needs 12 octets, got {len(raw)}")
    year, month, day, _dow, hour, minute, second, hundredths, deviation, _st = _LAYOUT.unpack(raw)
    if deviation == DEVIATION_UNSPECIFIED or not -720 <= deviation <= 720:
        raise DecodeError(f"date-time deviation {deviation} is not a usable offset")
    if hundredths == 0xFF:
        hundredths = 0
    try:
        local = datetime(
            year,
            month,
            day,
            hour,
            minute,
            second,
            hundredths * 10_000,
            tzinfo=timezone(timedelta(minutes=-deviation)),
        )
        return local.astimezone(UTC)  # OverflowError: year 1 or 9999 shifted out of range
    except (ValueError, OverflowError) as exc:
        raise DecodeError(f"date-time is not a calendar instant: {exc}") from None
