"""The interval load profile of openami meters: capture objects and the entry codec.

One entry (and one push body) is a structure of six values, in capture-object order:

====  =========================  =================  ============================
 #    object                      OBIS               A-XDR type
====  =========================  =================  ============================
 0    clock, attribute 2          0.0.1.0.0.255      octet-string (12, date-time)
 1    AMR profile status          0.0.96.10.1.255    unsigned
 2    +A cumulative register      1.0.1.8.0.255      double-long-unsigned (Wh)
 3    -A cumulative register      1.0.2.8.0.255      double-long-unsigned (Wh)
 4    +A over the interval        1.0.1.29.0.255     double-long-unsigned (Wh)
 5    -A over the interval        1.0.2.29.0.255     double-long-unsigned (Wh)
====  =========================  =================  ============================

The clock value is the END of the interval. The meter encodes with a precompiled layout
(this is the per-message path of the whole fleet); the head-end decodes with the general
A-XDR codec and checks the shape, so a meter that sends anything else is refused.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import NamedTuple

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.dlms import obis
from openami.protocols.dlms.axdr import Data, DataType
from openami.protocols.dlms.cosem_datetime import decode_datetime, encode_datetime

__all__ = [
    "CAPTURE_OBJECTS",
    "ProfileEntry",
    "decode_entries",
    "decode_entry",
    "decode_push_fast",
    "encode_entry",
    "entry_prefix",
    "interval_end_of",
    "parse_range_descriptor",
    "range_descriptor",
]

CLASS_DATA = 1
CLASS_REGISTER = 3
CLASS_PROFILE_GENERIC = 7
CLASS_CLOCK = 8
PROFILE_BUFFER_ATTRIBUTE = 2
SELECTOR_BY_RANGE = 1

CAPTURE_OBJECTS: tuple[tuple[int, obis.ObisCode, int], ...] = (
    (CLASS_CLOCK, obis.CLOCK, 2),
    (CLASS_DATA, obis.AMR_PROFILE_STATUS, 2),
    (CLASS_REGISTER, obis.ACTIVE_ENERGY_IMPORT, 2),
    (CLASS_REGISTER, obis.ACTIVE_ENERGY_EXPORT, 2),
    (CLASS_REGISTER, obis.INTERVAL_ENERGY_IMPORT, 2),
    (CLASS_REGISTER, obis.INTERVAL_ENERGY_EXPORT, 2),
)

_ENTRY_TYPES = (
    DataType.OCTET_STRING,
    DataType.UNSIGNED,
    DataType.DOUBLE_LONG_UNSIGNED,
    DataType.DOUBLE_LONG_UNSIGNED,
    DataType.DOUBLE_LONG_UNSIGNED,
    DataType.DOUBLE_LONG_UNSIGNED,
)
_TAIL = struct.Struct(">BBBIBIBIBI")
# A whole push as openami meters send it: data-notification, no date-time, one entry.
_PUSH = struct.Struct(">BIBBBBB12sBBBIBIBIBI")
_PUSH_TAGS = (0x0F, 0x00, DataType.STRUCTURE, 6, DataType.OCTET_STRING, 12)
_PUSH_VALUE_TAGS = (DataType.UNSIGNED,) + (DataType.DOUBLE_LONG_UNSIGNED,) * 4


class ProfileEntry(NamedTuple):
    interval_end: int  # Unix seconds, UTC
    status: int
    import_register: int
    export_register: int
    import_wh: int
    export_wh: int


def entry_prefix(interval_end: datetime) -> bytes:
    """The first octets of an entry (structure header and clock); the same for every meter
    at one interval end, so callers compute it once per interval."""
    return b"\x02\x06\x09\x0c" + encode_datetime(interval_end)


def encode_entry(
    prefix: bytes, status: int, imp_reg: int, exp_reg: int, imp: int, exp: int
) -> bytes:
    """Encode one entry as A-XDR ``Data`` (tag included) after ``entry_prefix``."""
    try:
        return prefix + _TAIL.pack(
            DataType.UNSIGNED,
            status,
            DataType.DOUBLE_LONG_UNSIGNED,
            imp_reg,
            DataType.DOUBLE_LONG_UNSIGNED,
            exp_reg,
            DataType.DOUBLE_LONG_UNSIGNED,
            imp,
            DataType.DOUBLE_LONG_UNSIGNED,
            exp,
        )
    except struct.error as exc:
        raise LocalProtocolError(f"profile value out of range: {exc}") from None


_datetime_cache: dict[bytes, int] = {}


def interval_end_of(raw: bytes) -> int:
    """Unix seconds of a profile entry's clock value (12-octet COSEM date-time)."""
    # Every meter reports the same few interval ends, so decoded values are memoised.
    cached = _datetime_cache.get(raw)
    if cached is None:
        cached = int(decode_datetime(raw).timestamp())
        if len(_datetime_cache) > 100_000:
            _datetime_cache.clear()
        _datetime_cache[raw] = cached
    return cached


def decode_entry(item: Data) -> ProfileEntry:
    """Check that ``item`` has the entry shape and return its values."""
    if item.type is not DataType.STRUCTURE or len(item.value) != len(_ENTRY_TYPES):
        raise DecodeError("profile entry is not a structure of six values")
    values = item.value
    for element, expected in zip(values, _ENTRY_TYPES, strict=True):
        if element.type is not expected:
            raise DecodeError(f"profile entry holds {element.type.name}, expected {expected.name}")
    return ProfileEntry(
        interval_end_of(values[0].value),
        values[1].value,
        values[2].value,
        values[3].value,
        values[4].value,
        values[5].value,
    )


def decode_push_fast(plain: bytes) -> ProfileEntry | None:
    """The entry of a data-notification laid out exactly as openami meters send it, with
    every tag checked; ``None`` for anything else, which the caller then decodes with the
    general codec (so the same inputs are accepted and refused either way)."""
    if len(plain) != _PUSH.size:
        return None
    (
        tag,
        _invoke,
        no_time,
        structure,
        count,
        octets,
        size,
        clock,
        t1,
        status,
        t2,
        imp_reg,
        t3,
        exp_reg,
        t4,
        imp,
        t5,
        exp,
    ) = _PUSH.unpack(plain)
    if (tag, no_time, structure, count, octets, size) != _PUSH_TAGS or (
        t1,
        t2,
        t3,
        t4,
        t5,
    ) != _PUSH_VALUE_TAGS:
        return None
    return ProfileEntry(interval_end_of(clock), status, imp_reg, exp_reg, imp, exp)


def decode_entries(item: Data) -> list[ProfileEntry]:
    """Decode a profile buffer (array of entries)."""
    if item.type is not DataType.ARRAY:
        raise DecodeError("profile buffer is not an array")
    return [decode_entry(entry) for entry in item.value]


def range_descriptor(start: datetime, end: datetime) -> Data:
    """Selective access by range on the clock column, all columns selected."""
    clock_class, clock_ln, clock_attr = CAPTURE_OBJECTS[0]
    return Data(
        DataType.STRUCTURE,
        (
            Data(
                DataType.STRUCTURE,
                (
                    Data(DataType.LONG_UNSIGNED, clock_class),
                    Data(DataType.OCTET_STRING, clock_ln.to_bytes()),
                    Data(DataType.INTEGER, clock_attr),
                    Data(DataType.LONG_UNSIGNED, 0),
                ),
            ),
            Data(DataType.OCTET_STRING, encode_datetime(start)),
            Data(DataType.OCTET_STRING, encode_datetime(end)),
            Data(DataType.ARRAY, ()),
        ),
    )


def parse_range_descriptor(item: Data) -> tuple[int, int]:
    """Return (from, to) as Unix seconds from a range descriptor on the clock column."""
    if item.type is not DataType.STRUCTURE or len(item.value) != 4:
        raise DecodeError("range descriptor is not a structure of four values")
    restricting, start, end, _selected = item.value
    if (
        restricting.type is not DataType.STRUCTURE
        or len(restricting.value) != 4
        or restricting.value[1].value != obis.CLOCK.to_bytes()
    ):
        raise DecodeError("range descriptor does not restrict on the clock")
    for bound in (start, end):
        if bound.type is not DataType.OCTET_STRING or len(bound.value) != 12:
            raise DecodeError("range bound is not a 12-octet date-time")
    return interval_end_of(start.value), interval_end_of(end.value)
