"""Route B of a simulated meter: its ECHONET Lite node (node profile + 0x0288 object) fed from
the fleet's columns, so a HEMS reads the same numbers the head-end reads over Route A.

How each value is made, and why it agrees with Route A (``fleet.meter_model``):

* **Clock**: a callable passed in (the fleet's simulated time, or wall time mapped into the
  scenario by ``scenario_clock``); the meter shows it in Japan time.
* **Cumulative import/export (0xE0/0xE3)**: the registers of the last interval closed at the
  clock, ``Fleet.history(..., now=that interval)``: the same call Route A's register objects
  (1.0.1.8.0 / 1.0.2.8.0) make with the same clock. The 0x0288 object reports in 0.001 kWh
  with coefficient 1, so the EDT is the Route A register in Wh exactly.
* **History 1 (0xE2/0xE4)**: the load profile's cumulative registers at 00:00, 00:30 ... 23:30
  of the Japan-time day asked for, each the register at the END of the interval ending at that
  moment. ``None`` ("no data") where the profile has none: before the 45-day buffer, after the
  last closed interval, or at a half-hour that is no interval end (60-minute intervals).
* **0xEA/0xEB** (the registers at the last half-hour boundary) and **0xEC** come from the
  same half-hourly readings, by the meter object.
* **Instantaneous power (0xE7)**: the fleet has no instantaneous model, so it is the average
  power of the last closed interval, ``(import Wh - export Wh) x 3600 / interval seconds``,
  truncated toward zero: Route A's 1.0.1.7.0 (import only) whenever the meter exported nothing
  in that interval; negative while exporting, as 0xE7 is signed.
* **Currents (0xE8)**: from that power on a single-phase three-wire supply at 100 V per leg,
  split evenly over R and T: each leg carries ``P / 2 / 100 V``. (Route A's 1.0.31.7.0 models
  one 101 V phase instead; the two are not meant to agree.)

Reads are computed on demand from the meter's 45-day profile as of the last closed interval,
cached until the clock crosses the next interval end (nothing needs ``Fleet.advance``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from openami.errors import LocalProtocolError
from openami.fleet.fleet import Fleet, MeterHistory
from openami.protocols.echonet import (
    CONTROLLER,
    JST,
    EchonetNode,
    Frame,
    LowVoltageSmartMeter,
)

__all__ = [
    "HALF_HOUR_S",
    "MANUFACTURER_CODE",
    "FleetMeterSource",
    "RouteBMeter",
    "route_b_meter",
    "scenario_clock",
]

# The manufacturer code ECHONET keeps for experimental use: openami has no code of its own.
MANUFACTURER_CODE = 0xFFFFFF
HALF_HOUR_S = 1800
SLOTS_PER_DAY = 48
VOLTS_PER_LEG = 100  # single-phase three-wire, 100 V from each leg to neutral
# 0xE8 encodes -3276.7 .. 3276.5 A (the codes above are "overflow" and "no data")
_CURRENT_LIMIT = 32765

Clock = Callable[[], datetime]


def scenario_clock(
    start: datetime,
    *,
    at: datetime | None = None,
    wall: Clock = lambda: datetime.now(UTC),
) -> Clock:
    """Wall time mapped into a scenario that starts at ``start``.

    Without ``at``: the wall clock moved by whole days, so that today (Japan time) is the
    scenario's first day; the time of day stays real, and at midnight the meter moves on to
    the scenario's second day. With ``at``: the scenario time ``at`` now, running on at the
    wall clock's pace (a meter started "on day 1 at 12:10" for a demonstration or a test).
    """
    if start.tzinfo is None or (at is not None and at.tzinfo is None):
        raise LocalProtocolError("scenario times must be aware datetimes")
    if at is None:
        today = wall().astimezone(JST).date()
        offset = timedelta(days=(start.astimezone(JST).date() - today).days)
    else:
        offset = at - wall()

    def now() -> datetime:
        return wall() + offset

    return now


@dataclass(frozen=True)
class _Profile:
    """The meter's load profile as of one closed interval."""

    closed: int  # number of the last interval closed
    history: MeterHistory


class FleetMeterSource:
    """A ``LowVoltageMeterSource`` for meter ``index`` of ``fleet`` on ``clock``."""

    def __init__(self, fleet: Fleet, index: int, clock: Clock) -> None:
        if not 0 <= index < fleet.n:
            raise LocalProtocolError(f"meter index {index} is outside the fleet (0..{fleet.n - 1})")
        self.fleet = fleet
        self.index = index
        self.clock = clock
        self._cached: _Profile | None = None

    # -- the clock and the profile -------------------------------------------------------

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise LocalProtocolError("the meter clock gave a naive datetime")
        return now

    def _profile(self, now: datetime) -> _Profile:
        closed = self.fleet.number_of(now)
        cached = self._cached
        if cached is None or cached.closed != closed:
            depth = self.fleet.profile_depth
            history = self.fleet.history(self.index, closed - depth + 1, closed, now=closed)
            cached = self._cached = _Profile(closed, history)
        return cached

    def now_jst(self) -> datetime:
        return self._now().astimezone(JST)

    # -- registers -----------------------------------------------------------------------

    def cumulative_import_wh(self) -> int:
        history = self._profile(self._now()).history
        if not history.numbers.size:  # cannot happen: the last closed interval is in it
            return int(self.fleet.import_base[self.index])
        return int(history.import_register[-1])

    def cumulative_export_wh(self) -> int:
        history = self._profile(self._now()).history
        if not history.numbers.size:
            return int(self.fleet.export_base[self.index])
        return int(history.export_register[-1])

    def instantaneous_power_w(self) -> int:
        history = self._profile(self._now()).history
        if not history.numbers.size:
            return 0
        net_wh = int(history.import_wh[-1]) - int(history.export_wh[-1])
        watts = abs(net_wh) * 3600 // self.fleet.step_s  # as Route A: floor of a positive
        return watts if net_wh >= 0 else -watts

    def currents_deciamp(self) -> tuple[int, int | None]:
        watts = self.instantaneous_power_w()
        # P / 2 legs / 100 V in A, times 10 for 0.1 A: P / 20, truncated toward zero
        per_leg = abs(watts) * 10 // (2 * VOLTS_PER_LEG)
        per_leg = min(per_leg, _CURRENT_LIMIT)
        signed = per_leg if watts >= 0 else -per_leg
        return signed, signed

    # -- half-hourly history -------------------------------------------------------------

    def _half_hourly(self, day_back: int, export: bool) -> list[int | None]:
        now = self._now()
        profile = self._profile(now)
        history = profile.history
        registers = history.export_register if export else history.import_register
        day = now.astimezone(JST).date() - timedelta(days=day_back)
        midnight = int(datetime.combine(day, time(0), tzinfo=JST).timestamp())
        step = self.fleet.step_s
        first = int(history.numbers[0]) if history.numbers.size else 0
        values: list[int | None] = []
        for slot in range(SLOTS_PER_DAY):
            moment = midnight + slot * HALF_HOUR_S
            position = moment // step - first
            # numbers are consecutive, so the interval ending at ``moment`` sits at
            # ``position`` when the profile holds it
            if moment % step or not 0 <= position < history.numbers.size:
                values.append(None)
            else:
                values.append(int(registers[position]))
        return values

    def half_hourly_import_wh(self, day_back: int) -> Sequence[int | None]:
        return self._half_hourly(day_back, export=False)

    def half_hourly_export_wh(self, day_back: int) -> Sequence[int | None]:
        return self._half_hourly(day_back, export=True)

    # -- identity ------------------------------------------------------------------------

    def production_number(self) -> str:
        # the serial less its "OAM" manufacturer flag (0x8A says who made it): 10 digits fit
        # the 12 characters of 0x8D, the 13 of the whole serial would not
        return self.fleet.serial(self.index)[3:]

    def manufacturer_code(self) -> int:
        return MANUFACTURER_CODE


@dataclass
class RouteBMeter:
    """One meter's Route B side: its node, its 0x0288 object and the data source behind it.
    ``announcements`` is polled by the transport: at each half-hour boundary the meter
    announces its fixed-time registers (INF of 0xEA and 0xEB), as meters on the B route do.
    The INF goes to the controller object (05FF01), to the multicast group."""

    meter_id: int
    serial: str
    node: EchonetNode
    meter: LowVoltageSmartMeter
    source: FleetMeterSource
    _slot: int | None = field(default=None, repr=False)  # the half-hour last looked at

    def announcements(self) -> list[Frame]:
        slot = int(self.source.now_jst().timestamp()) // HALF_HOUR_S
        previous, self._slot = self._slot, slot
        if previous is None or slot == previous:
            return []
        return [self.node.announcement(self.meter, (0xEA, 0xEB), deoj=CONTROLLER)]


def route_b_meter(fleet: Fleet, index: int, clock: Clock) -> RouteBMeter:
    """The ECHONET Lite node of meter ``index`` (meter id ``index + 1``)."""
    source = FleetMeterSource(fleet, index, clock)
    meter = LowVoltageSmartMeter(source)
    meter_id = int(fleet.meter_ids[index])
    # 13 octets unique under the manufacturer code: "OAM" and the meter id
    unique_id = b"OAM" + meter_id.to_bytes(10, "big")
    node = EchonetNode([meter], manufacturer_code=MANUFACTURER_CODE, unique_id=unique_id)
    # from the half-hour it is built in: the next boundary crossed is announced
    slot = int(source.now_jst().timestamp()) // HALF_HOUR_S
    return RouteBMeter(meter_id, fleet.serial(index), node, meter, source, slot)
