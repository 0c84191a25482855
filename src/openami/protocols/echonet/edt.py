"""EDT codecs: how one property value becomes its EDT octets and back.

A ``Codec`` is a pair of functions. ``decode`` takes the octets a peer sent and raises only
``DecodeError`` (never ``ValueError``, ``IndexError`` or ``UnicodeDecodeError``); ``encode``
takes a value from our side and raises ``LocalProtocolError`` when the value cannot be
represented, which is a bug in the caller rather than in the peer. The property tables in
``objects``, ``node_profile`` and ``meter`` are built from these.

Clock values on the wire are Japan wall-clock time without a zone. Decoded dates with a time
of day come back aware, in ``JST``; values to encode must be aware and are converted to JST.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.echonet.property_map import decode_property_map, encode_property_map

__all__ = [
    "JST",
    "Codec",
    "calendar_date",
    "expect_size",
    "jst_datetime",
    "property_map",
    "raw",
    "require_int",
    "signed",
    "state",
    "text",
    "time_of_day",
    "unsigned",
]

# Japan keeps no daylight saving time, so a fixed +09:00 offset is exact for Asia/Tokyo.
JST = timezone(timedelta(hours=9), "JST")


@dataclass(frozen=True, slots=True)
class Codec:
    decode: Callable[[bytes], Any]
    encode: Callable[[Any], bytes]


def expect_size(edt: bytes, size: int, what: str) -> None:
    if len(edt) != size:
        raise DecodeError(f"{what} takes {size} octets, got {len(edt)}")


def require_int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise LocalProtocolError(f"{what} must be an int, got {value!r}")
    return value


def _integer(size: int, minimum: int, maximum: int, no_data: int | None, is_signed: bool) -> Codec:
    # no_data is the code the Appendix reserves for "no data" (e.g. 0xFFFFFFFE, 0x7FFE); it
    # decodes to None and None encodes to it.
    def decode(edt: bytes) -> int | None:
        expect_size(edt, size, "integer")
        value = int.from_bytes(edt, "big", signed=is_signed)
        if no_data is not None and int.from_bytes(edt, "big") == no_data:
            return None
        if not minimum <= value <= maximum:
            raise DecodeError(f"value {value} is outside {minimum}..{maximum}")
        return value

    def encode(value: object) -> bytes:
        if value is None:
            if no_data is None:
                raise LocalProtocolError("this property has no 'no data' code")
            return no_data.to_bytes(size, "big")
        number = require_int(value, "value")
        if not minimum <= number <= maximum:
            raise LocalProtocolError(f"value {number} is outside {minimum}..{maximum}")
        return number.to_bytes(size, "big", signed=is_signed)

    return Codec(decode, encode)


def unsigned(
    size: int, *, minimum: int = 0, maximum: int | None = None, no_data: int | None = None
) -> Codec:
    top = (1 << 8 * size) - 1 if maximum is None else maximum
    return _integer(size, minimum, top, no_data, is_signed=False)


def signed(size: int, *, minimum: int, maximum: int, no_data: int | None = None) -> Codec:
    return _integer(size, minimum, maximum, no_data, is_signed=True)


def state(codes: Mapping[int, object]) -> Codec:
    """One octet from a closed list of codes, e.g. {0x30: True, 0x31: False}."""
    by_value = {value: code for code, value in codes.items()}

    def decode(edt: bytes) -> object:
        expect_size(edt, 1, "state")
        if edt[0] not in codes:
            raise DecodeError(f"state code 0x{edt[0]:02X} is not one of {sorted(codes)}")
        return codes[edt[0]]

    def encode(value: object) -> bytes:
        if value not in by_value:
            raise LocalProtocolError(f"{value!r} is not a state of this property")
        return bytes((by_value[value],))

    return Codec(decode, encode)


def raw(check: Callable[[bytes], None] | None = None) -> Codec:
    """Octets passed through as ``bytes``; ``check`` raises ``DecodeError`` on bad content."""

    def decode(edt: bytes) -> bytes:
        if check is not None:
            check(edt)
        return bytes(edt)

    def encode(value: object) -> bytes:
        if not isinstance(value, bytes):
            raise LocalProtocolError(f"value must be bytes, got {value!r}")
        if check is not None:
            try:
                check(value)
            except DecodeError as exc:
                raise LocalProtocolError(str(exc)) from None
        return value

    return Codec(decode, encode)


def text(size: int) -> Codec:
    """ASCII in a fixed field, padded with NUL octets (as meters in the field pad it)."""

    def decode(edt: bytes) -> str:
        expect_size(edt, size, "text")
        if any(octet > 0x7F for octet in edt):
            raise DecodeError(f"text {edt.hex()} is not ASCII")
        return edt.decode("ascii").rstrip("\x00")

    def encode(value: object) -> bytes:
        if not isinstance(value, str) or not value.isascii() or len(value) > size:
            raise LocalProtocolError(f"{value!r} is not ASCII text of at most {size} characters")
        return value.encode("ascii").ljust(size, b"\x00")

    return Codec(decode, encode)


def time_of_day() -> Codec:
    """hh mm, one octet each."""

    def decode(edt: bytes) -> time:
        expect_size(edt, 2, "time")
        try:
            return time(edt[0], edt[1])
        except ValueError:
            raise DecodeError(f"{edt[0]}:{edt[1]} is not a time of day") from None

    def encode(value: object) -> bytes:
        if not isinstance(value, time):
            raise LocalProtocolError(f"value must be a time, got {value!r}")
        return bytes((value.hour, value.minute))

    return Codec(decode, encode)


def calendar_date() -> Codec:
    """YYYY (2 octets) MM DD."""

    def decode(edt: bytes) -> date:
        expect_size(edt, 4, "date")
        try:
            return date(int.from_bytes(edt[:2], "big"), edt[2], edt[3])
        except ValueError:
            raise DecodeError(f"{edt.hex()} is not a calendar date") from None

    def encode(value: object) -> bytes:
        if not isinstance(value, date) or isinstance(value, datetime):
            raise LocalProtocolError(f"value must be a date, got {value!r}")
        return value.year.to_bytes(2, "big") + bytes((value.month, value.day))

    return Codec(decode, encode)


def jst_datetime(size: int, *, unset: bool = False) -> Codec:
    """YYYY (2 octets) MM DD hh mm, and ss when ``size`` is 7. With ``unset``, all 0xFF
    octets (the Appendix's initial value) decode to None and None encodes to them."""
    if size not in (6, 7):
        raise LocalProtocolError(f"a date and time is 6 or 7 octets, not {size}")

    def decode(edt: bytes) -> datetime | None:
        expect_size(edt, size, "date and time")
        if unset and edt == b"\xff" * size:
            return None
        second = edt[6] if size == 7 else 0
        try:
            return datetime(
                int.from_bytes(edt[:2], "big"), edt[2], edt[3], edt[4], edt[5], second, tzinfo=JST
            )
        except ValueError:
            raise DecodeError(f"{edt.hex()} is not a date and time") from None

    def encode(value: object) -> bytes:
        if value is None and unset:
            return b"\xff" * size
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise LocalProtocolError(f"value must be an aware datetime, got {value!r}")
        local = value.astimezone(JST)
        if local.microsecond or (size == 6 and local.second):
            raise LocalProtocolError(f"{local} has more precision than {size} octets hold")
        out = local.year.to_bytes(2, "big") + bytes((local.month, local.day, local.hour))
        out += bytes((local.minute, local.second)) if size == 7 else bytes((local.minute,))
        return out

    return Codec(decode, encode)


def property_map() -> Codec:
    def encode(value: object) -> bytes:
        if not isinstance(value, frozenset | set):
            raise LocalProtocolError(f"a property map is a set of EPCs, got {value!r}")
        return encode_property_map(value)

    return Codec(decode_property_map, encode)
