"""The low-voltage smart electric energy meter (class 0x0288): what a HEMS reads on Route B.

Property formats follow the Appendix (Detailed Requirements for ECHONET Device Objects),
section "low-voltage smart electric energy meter class", release F and later, as its Machine
Readable Appendix (release M) states them:

* 0xD3 coefficient, 4 octets 0..999999; 0xD7 effective digits, 1 octet 1..8.
* 0xE0 / 0xE3 cumulative energy, normal / reverse direction: 4 octets 0..99,999,999,
  0xFFFFFFFE "no data". EDT x coefficient x unit (0xE1) is the energy in kWh.
* 0xE1 unit: 0x00 1 kWh, 0x01 0.1, 0x02 0.01, 0x03 0.001, 0x04 0.0001, 0x0A 10, 0x0B 100,
  0x0C 1000, 0x0D 10000 kWh.
* 0xE2 / 0xE4 historical data 1: the day (2 octets, 0..99, 0x00FF "not set") and 48 registers
  read at 00:00, 00:30 ... 23:30 of that day. 0xE5 (settable) picks the day: 0 today, 1
  yesterday ... 99; 0xFF is the initial "not set".
* 0xE7 instantaneous power: signed 4 octets in W, 0x7FFFFFFE "no data".
* 0xE8 instantaneous currents: R then T phase, signed 2 octets each in 0.1 A, 0x7FFE "no
  data" (the T phase of a single-phase two-wire system).
* 0xEA / 0xEB registers at the latest half-hour: YYYY(2) MM DD hh mm ss and 4 octets.
* 0xEC historical data 2: YYYY(2) MM DD hh mm, the number of segments (1..12) and per segment
  the normal then the reverse register; 0xED (settable) picks the date, time and segments.
  Minutes are 0 or 30; all 0xFF in the date and time is the initial "not set". The order of
  the segments (the one at the given time first, then each half-hour before it) is not in the
  MRA, and the Appendix text saying it was not found; it is the order meters are described
  to use.

The meter reports with unit 0x03 (0.001 kWh), so with the default coefficient 1 an EDT is the
register in Wh exactly. Registers wrap modulo 10**digits, as a meter's display does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.echonet import edt
from openami.protocols.echonet.frame import EOJ
from openami.protocols.echonet.objects import (
    DEVICE_SUPERCLASS,
    Access,
    EchonetObject,
    ObjectClass,
    prop,
)

__all__ = [
    "LOW_VOLTAGE_SMART_METER_CLASS",
    "UNITS",
    "FixedTimeReading",
    "HalfHourlyHistory",
    "History2",
    "History2Setting",
    "LowVoltageMeterSource",
    "LowVoltageSmartMeter",
]

GET, SET = Access.GET, Access.SET

NO_DATA = 0xFFFFFFFE
SLOTS_PER_DAY = 48
HISTORY_DAYS = 99  # how far back 0xE5 and 0xED may reach
MAX_SEGMENTS = 12
UNIT_CODE = 0x03  # 0.001 kWh: one EDT step is one Wh

UNITS: Mapping[int, Decimal] = {
    0x00: Decimal(1),
    0x01: Decimal("0.1"),
    0x02: Decimal("0.01"),
    0x03: Decimal("0.001"),
    0x04: Decimal("0.0001"),
    0x0A: Decimal(10),
    0x0B: Decimal(100),
    0x0C: Decimal(1000),
    0x0D: Decimal(10000),
}


class LowVoltageMeterSource(Protocol):
    """Where the meter object's values come from (a simulated meter, a test fake). Energy is
    in Wh; registers are cumulative and never negative."""

    def now_jst(self) -> datetime:
        """The meter clock: an aware datetime (it is shown in Japan time)."""

    def cumulative_import_wh(self) -> int: ...

    def cumulative_export_wh(self) -> int: ...

    def instantaneous_power_w(self) -> int:
        """Positive while importing (normal direction), negative while exporting."""

    def currents_deciamp(self) -> tuple[int, int | None]:
        """R and T phase currents in 0.1 A; T is None on a single-phase two-wire supply."""

    def half_hourly_import_wh(self, day_back: int) -> Sequence[int | None]:
        """The 48 import register readings at 00:00, 00:30 ... 23:30 of the day ``day_back``
        days before today (0 = today); None where there is no reading (yet)."""

    def half_hourly_export_wh(self, day_back: int) -> Sequence[int | None]: ...

    def production_number(self) -> str:
        """At most 12 ASCII characters."""

    def manufacturer_code(self) -> int: ...


@dataclass(frozen=True, slots=True)
class HalfHourlyHistory:
    """0xE2 / 0xE4: the day (None: 0xE5 not set) and 48 registers, None meaning no data."""

    day: int | None
    values: tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class FixedTimeReading:
    """0xEA / 0xEB: the register at the latest half-hour boundary."""

    at: datetime
    value: int | None


@dataclass(frozen=True, slots=True)
class History2:
    """0xEC: from ``start`` back in half-hours, (normal, reverse) registers per segment."""

    start: datetime | None
    values: tuple[tuple[int | None, int | None], ...]


@dataclass(frozen=True, slots=True)
class History2Setting:
    """0xED: which half-hour 0xEC starts at and how many segments (1..12) it returns."""

    start: datetime | None
    segments: int


_REGISTER = edt.unsigned(4, maximum=99_999_999, no_data=NO_DATA)
_DAY_BACK = edt.unsigned(1, maximum=HISTORY_DAYS, no_data=0xFF)
_HISTORY_DAY = edt.unsigned(2, maximum=HISTORY_DAYS, no_data=0x00FF)
_CURRENT = edt.signed(2, minimum=-32767, maximum=32765, no_data=0x7FFE)
_STAMP_7 = edt.jst_datetime(7)
_STAMP_6 = edt.jst_datetime(6, unset=True)
_SEGMENTS = edt.unsigned(1, minimum=1, maximum=MAX_SEGMENTS)


def _registers(data: bytes) -> list[int | None]:
    return [_REGISTER.decode(data[i : i + 4]) for i in range(0, len(data), 4)]


def _history1_codec() -> edt.Codec:
    def decode(data: bytes) -> HalfHourlyHistory:
        edt.expect_size(data, 2 + 4 * SLOTS_PER_DAY, "historical data 1")
        return HalfHourlyHistory(_HISTORY_DAY.decode(data[:2]), tuple(_registers(data[2:])))

    def encode(value: object) -> bytes:
        if not isinstance(value, HalfHourlyHistory) or len(value.values) != SLOTS_PER_DAY:
            raise LocalProtocolError(f"not a history of 48 registers: {value!r}")
        return _HISTORY_DAY.encode(value.day) + b"".join(map(_REGISTER.encode, value.values))

    return edt.Codec(decode, encode)


def _currents_codec() -> edt.Codec:
    def decode(data: bytes) -> tuple[int | None, int | None]:
        edt.expect_size(data, 4, "instantaneous currents")
        return _CURRENT.decode(data[:2]), _CURRENT.decode(data[2:])

    def encode(value: object) -> bytes:
        if not isinstance(value, tuple) or len(value) != 2:
            raise LocalProtocolError(f"currents are an (R, T) pair: {value!r}")
        return _CURRENT.encode(value[0]) + _CURRENT.encode(value[1])

    return edt.Codec(decode, encode)


def _fixed_time_codec() -> edt.Codec:
    def decode(data: bytes) -> FixedTimeReading:
        edt.expect_size(data, 11, "cumulative energy at fixed time")
        return FixedTimeReading(_STAMP_7.decode(data[:7]), _REGISTER.decode(data[7:]))

    def encode(value: object) -> bytes:
        if not isinstance(value, FixedTimeReading):
            raise LocalProtocolError(f"not a FixedTimeReading: {value!r}")
        return _STAMP_7.encode(value.at) + _REGISTER.encode(value.value)

    return edt.Codec(decode, encode)


def _history2_codec() -> edt.Codec:
    def decode(data: bytes) -> History2:
        if len(data) < 7:
            raise DecodeError(f"historical data 2 needs at least 7 octets, got {len(data)}")
        count = _SEGMENTS.decode(data[6:7])
        edt.expect_size(data, 7 + 8 * count, f"historical data 2 of {count} segments")
        values = _registers(data[7:])
        pairs = tuple(zip(values[0::2], values[1::2], strict=True))
        return History2(_STAMP_6.decode(data[:6]), pairs)

    def encode(value: object) -> bytes:
        if not isinstance(value, History2):
            raise LocalProtocolError(f"not a History2: {value!r}")
        out = _STAMP_6.encode(value.start) + _SEGMENTS.encode(len(value.values))
        for normal, reverse in value.values:
            out += _REGISTER.encode(normal) + _REGISTER.encode(reverse)
        return out

    return edt.Codec(decode, encode)


def _history2_setting_codec() -> edt.Codec:
    def decode(data: bytes) -> History2Setting:
        edt.expect_size(data, 7, "day for historical data 2")
        return History2Setting(_STAMP_6.decode(data[:6]), _SEGMENTS.decode(data[6:]))

    def encode(value: object) -> bytes:
        if not isinstance(value, History2Setting):
            raise LocalProtocolError(f"not a History2Setting: {value!r}")
        return _STAMP_6.encode(value.start) + _SEGMENTS.encode(value.segments)

    return edt.Codec(decode, encode)


_INSTANTANEOUS_POWER = edt.signed(
    4, minimum=-2_147_483_647, maximum=2_147_483_645, no_data=0x7FFFFFFE
)
_HISTORY1 = _history1_codec()
_FIXED_TIME = _fixed_time_codec()

LOW_VOLTAGE_SMART_METER_CLASS = ObjectClass(
    0x0288,
    "low-voltage smart electric energy meter",
    (
        *DEVICE_SUPERCLASS,
        prop(0xD3, "coefficient", GET, edt.unsigned(4, maximum=999_999), 4),
        prop(0xD7, "effective digits", GET, edt.unsigned(1, minimum=1, maximum=8), 1),
        prop(0xE0, "cumulative energy (normal)", GET, _REGISTER, 4),
        prop(0xE1, "unit for cumulative energy", GET, edt.state(UNITS), 1),
        prop(0xE2, "historical data 1 (normal)", GET, _HISTORY1, 194),
        prop(0xE3, "cumulative energy (reverse)", GET, _REGISTER, 4),
        prop(0xE4, "historical data 1 (reverse)", GET, _HISTORY1, 194),
        prop(0xE5, "day for historical data 1", GET | SET, _DAY_BACK, 1),
        prop(0xE7, "instantaneous power", GET, _INSTANTANEOUS_POWER, 4),
        prop(0xE8, "instantaneous currents", GET, _currents_codec(), 4),
        prop(0xEA, "cumulative energy at fixed time (normal)", GET, _FIXED_TIME, 11),
        prop(0xEB, "cumulative energy at fixed time (reverse)", GET, _FIXED_TIME, 11),
        prop(0xEC, "historical data 2", GET, _history2_codec(), (15, 7 + 8 * MAX_SEGMENTS)),
        prop(0xED, "day for historical data 2", GET | SET, _history2_setting_codec(), 7),
    ),
)


Readings = Callable[[int], Sequence[int | None]]


class LowVoltageSmartMeter(EchonetObject):
    """A 0x0288 object whose values come from ``source`` at the moment they are read."""

    klass = LOW_VOLTAGE_SMART_METER_CLASS

    def __init__(
        self,
        source: LowVoltageMeterSource,
        *,
        instance: int = 0x01,
        coefficient: int = 1,
        digits: int = 8,
        release: str = "F",
        installation_location: bytes = b"\x00",
    ) -> None:
        super().__init__(EOJ(0x02, 0x88, instance))
        if not 1 <= coefficient <= 999_999:
            raise LocalProtocolError(f"coefficient {coefficient} is outside 1..999999")
        if not 1 <= digits <= 8:
            raise LocalProtocolError(f"effective digits {digits} is outside 1..8")
        self.source = source
        self.coefficient = coefficient
        self.digits = digits
        self._modulus: int = 10**digits
        self.release = release
        self.location = installation_location
        self.fault = False
        self.history_day: int | None = 0  # 0xE5; today, so 0xE2 answers before any Set
        self.history2 = History2Setting(None, 1)  # 0xED, initially "not set"
        for epc in (0x81, 0x82):  # fail here on a bad location or release, not on a Get
            self.read(epc)

    def value(self, epc: int) -> Any:
        return _READERS[epc](self)

    def store(self, epc: int, value: Any) -> bool:
        store = _STORES.get(epc)
        return store is not None and store(self, value)

    def now(self) -> datetime:
        now = self.source.now_jst()
        if now.tzinfo is None:
            raise LocalProtocolError("the meter source gave a naive datetime")
        return now.astimezone(edt.JST)

    def register(self, wh: int | None) -> int | None:
        """A Wh register as the EDT shows it: in units of the coefficient, wrapped to the
        effective digits."""
        if wh is None:
            return None
        energy = edt.require_int(wh, "register")
        if energy < 0:
            raise LocalProtocolError(f"register {energy} Wh is negative")
        return energy // self.coefficient % self._modulus

    def history1(self, readings: Readings) -> HalfHourlyHistory:
        if self.history_day is None:
            return HalfHourlyHistory(None, (None,) * SLOTS_PER_DAY)
        values = _day(readings, self.history_day)
        return HalfHourlyHistory(self.history_day, tuple(map(self.register, values)))

    def fixed_time(self, readings: Readings) -> FixedTimeReading:
        now = self.now()
        boundary = now.replace(minute=now.minute // 30 * 30, second=0, microsecond=0)
        slot = boundary.hour * 2 + boundary.minute // 30
        return FixedTimeReading(boundary, self.register(_day(readings, 0)[slot]))

    def history2_values(self) -> History2:
        start, segments = self.history2.start, self.history2.segments
        if start is None:
            return History2(None, ((None, None),) * segments)
        today = self.now().date()
        days: dict[int, tuple[Sequence[int | None], Sequence[int | None]]] = {}
        pairs: list[tuple[int | None, int | None]] = []
        for back_slots in range(segments):
            at = start - timedelta(minutes=30 * back_slots)
            day_back = (today - at.date()).days
            if not 0 <= day_back <= HISTORY_DAYS:
                pairs.append((None, None))
                continue
            if day_back not in days:
                days[day_back] = (
                    _day(self.source.half_hourly_import_wh, day_back),
                    _day(self.source.half_hourly_export_wh, day_back),
                )
            imports, exports = days[day_back]
            slot = at.hour * 2 + at.minute // 30
            pairs.append((self.register(imports[slot]), self.register(exports[slot])))
        return History2(start, tuple(pairs))


def _day(readings: Readings, day_back: int) -> Sequence[int | None]:
    values = readings(day_back)
    if len(values) != SLOTS_PER_DAY:
        raise LocalProtocolError(f"the source gave {len(values)} half-hourly readings, not 48")
    return values


def _store_location(meter: LowVoltageSmartMeter, value: bytes) -> bool:
    meter.location = value
    return True


def _store_history_day(meter: LowVoltageSmartMeter, value: int | None) -> bool:
    if value is None:  # 0xFF is the initial value, not something to set
        return False
    meter.history_day = value
    return True


def _store_history2(meter: LowVoltageSmartMeter, value: History2Setting) -> bool:
    start = value.start
    if start is None or start.minute not in (0, 30) or start.second:
        return False
    now = meter.now()
    if start > now or (now.date() - start.date()).days > HISTORY_DAYS:
        return False
    meter.history2 = value
    return True


_STORES: Mapping[int, Callable[[LowVoltageSmartMeter, Any], bool]] = {
    0x81: _store_location,
    0xE5: _store_history_day,
    0xED: _store_history2,
}

_READERS: Mapping[int, Callable[[LowVoltageSmartMeter], Any]] = {
    0x80: lambda m: True,  # a meter in service is always "on"
    0x81: lambda m: m.location,
    0x82: lambda m: m.release,
    0x88: lambda m: m.fault,
    0x8A: lambda m: m.source.manufacturer_code(),
    0x8D: lambda m: m.source.production_number(),
    0x97: lambda m: m.now().time().replace(second=0, microsecond=0),
    0x98: lambda m: m.now().date(),
    0xD3: lambda m: m.coefficient,
    0xD7: lambda m: m.digits,
    0xE0: lambda m: m.register(m.source.cumulative_import_wh()),
    0xE1: lambda m: UNITS[UNIT_CODE],
    0xE2: lambda m: m.history1(m.source.half_hourly_import_wh),
    0xE3: lambda m: m.register(m.source.cumulative_export_wh()),
    0xE4: lambda m: m.history1(m.source.half_hourly_export_wh),
    0xE5: lambda m: m.history_day,
    0xE7: lambda m: m.source.instantaneous_power_w(),
    0xE8: lambda m: m.source.currents_deciamp(),
    0xEA: lambda m: m.fixed_time(m.source.half_hourly_import_wh),
    0xEB: lambda m: m.fixed_time(m.source.half_hourly_export_wh),
    0xEC: lambda m: m.history2_values(),
    0xED: lambda m: m.history2,
}
