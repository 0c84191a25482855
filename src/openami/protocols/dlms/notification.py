"""What openami meters push besides interval entries: events and co-metered gas and water.

Every push is a data-notification whose body is one structure; its shape says what it is:

* six values - an interval entry of the load profile (see ``profile``);
* four values - a co-metering entry: clock (octet-string 12), status (unsigned), the gas
  meter's index on M-Bus channel 1 (OBIS 7.1.3.0.0.255, double-long-unsigned, litres) and the
  water meter's index on channel 2 (OBIS 8.2.1.0.0.255, double-long-unsigned, litres). Gas and
  water meters have no network of their own: their index travels through the electric
  meter's communication unit;
* three values - an event: clock (octet-string 12), event code (long-unsigned) and a value
  (double-long-unsigned; the import register at the event, or a new communication unit's
  number).

Event codes below 200 follow the standard event log of the DLMS object model; 200 and above
are openami's own.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import NamedTuple

from openami.errors import DecodeError
from openami.protocols.dlms.axdr import Data, DataType
from openami.protocols.dlms.cosem_datetime import decode_datetime, encode_datetime

__all__ = [
    "EventCode",
    "EventRecord",
    "UtilityEntry",
    "decode_event",
    "decode_utility_entry",
    "encode_event",
    "encode_utility_entry",
    "notification_kind",
]


class EventCode(IntEnum):
    POWER_DOWN = 1  # sent as the last gasp, on the energy left in the supply's capacitors
    POWER_UP = 2
    CLOCK_ADJUSTED = 5  # the clock was set (time synchronisation); value: new time - old time
    TERMINAL_COVER_OPENED = 40
    STRONG_MAGNETIC_FIELD = 42
    CLOCK_ERROR = 201  # the real-time clock lost its time; entries carry "clock invalid"
    REVERSE_FLOW = 202  # energy flowing out at a meter with no generation behind it
    COMM_UNIT_REPLACED = 203  # a separated meter got a new communication unit; value: its number


class EventRecord(NamedTuple):
    time: int  # Unix seconds, UTC
    code: int
    value: int


class UtilityEntry(NamedTuple):
    time: int  # Unix seconds, UTC: the END of the hour the indexes close
    status: int
    gas_l: int
    water_l: int


def _clock(moment: datetime) -> Data:
    return Data(DataType.OCTET_STRING, encode_datetime(moment))


def encode_event(moment: datetime, code: int, value: int) -> Data:
    return Data(
        DataType.STRUCTURE,
        (
            _clock(moment),
            Data(DataType.LONG_UNSIGNED, code),
            Data(DataType.DOUBLE_LONG_UNSIGNED, value & 0xFFFFFFFF),
        ),
    )


def encode_utility_entry(moment: datetime, status: int, gas_l: int, water_l: int) -> Data:
    return Data(
        DataType.STRUCTURE,
        (
            _clock(moment),
            Data(DataType.UNSIGNED, status),
            Data(DataType.DOUBLE_LONG_UNSIGNED, gas_l & 0xFFFFFFFF),
            Data(DataType.DOUBLE_LONG_UNSIGNED, water_l & 0xFFFFFFFF),
        ),
    )


_EVENT_TYPES = (DataType.OCTET_STRING, DataType.LONG_UNSIGNED, DataType.DOUBLE_LONG_UNSIGNED)
_UTILITY_TYPES = (
    DataType.OCTET_STRING,
    DataType.UNSIGNED,
    DataType.DOUBLE_LONG_UNSIGNED,
    DataType.DOUBLE_LONG_UNSIGNED,
)


def notification_kind(body: Data) -> str:
    """``"interval"``, ``"utility"`` or ``"event"`` by the body's shape; ``DecodeError`` else."""
    if body.type is DataType.STRUCTURE:
        kind = {6: "interval", 4: "utility", 3: "event"}.get(len(body.value))
        if kind is not None:
            return kind
    raise DecodeError("data-notification body is not an openami interval, utility or event")


def _values(body: Data, types: tuple[DataType, ...], what: str) -> tuple[Data, ...]:
    if body.type is not DataType.STRUCTURE or len(body.value) != len(types):
        raise DecodeError(f"{what} is not a structure of {len(types)} values")
    for element, expected in zip(body.value, types, strict=True):
        if element.type is not expected:
            raise DecodeError(f"{what} holds {element.type.name}, expected {expected.name}")
    return tuple(body.value)


def decode_event(body: Data) -> EventRecord:
    clock, code, value = _values(body, _EVENT_TYPES, "event")
    return EventRecord(int(decode_datetime(clock.value).timestamp()), code.value, value.value)


def decode_utility_entry(body: Data) -> UtilityEntry:
    clock, status, gas, water = _values(body, _UTILITY_TYPES, "co-metering entry")
    return UtilityEntry(
        int(decode_datetime(clock.value).timestamp()), status.value, gas.value, water.value
    )
