"""Alarms from meter events: outages (how many meters and customers, where) and tamper.

An **outage** is a set of meters that lost power close together in time: a meter's last
gasp (``POWER_DOWN``) within ``correlation_s`` of the latest last gasp of an open outage
joins it, otherwise it opens a new one. This is how an outage management system groups
the calls of one fault without knowing the grid's topology: a feeder that trips sends its
meters' last gasps within seconds. The outage stays open while any of its meters is
without power; each ``POWER_UP`` restores one meter, and the last one closes the outage
with its duration and the meter-minutes of interruption (the basis of SAIDI). Where it is
comes from the registry: customers with a contract in force, per area, at the meters'
usage points (``customers``, a callback). An outage is **major** once it holds
``major_meters`` meters.

**Tamper**: a terminal cover opened, a strong magnetic field, or energy flowing out of a
meter with no generation behind it. One alarm per meter and kind of tamper, opened at the
first such event; later events of the same kind add to its count.

The book is a pure function of the events it is given, in time order: it reads no clock,
so replaying the event store gives the same alarms as watching the bus did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

import polars as pl

from openami.mdm.registry import Registry
from openami.protocols.dlms.notification import EventCode
from openami.store.lake import IntervalLake

__all__ = [
    "Alarm",
    "AlarmBook",
    "AlarmKind",
    "AlarmPolicy",
    "Severity",
    "registry_customers",
    "restore_from_reads",
]

CustomersOf = Callable[[list[int], int], Mapping[str, int]]  # (meter ids, Unix s) -> area: n


class AlarmKind(StrEnum):
    OUTAGE = "outage"
    TAMPER = "tamper"


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"


_TAMPER = {
    int(EventCode.TERMINAL_COVER_OPENED): "terminal cover opened",
    int(EventCode.STRONG_MAGNETIC_FIELD): "strong magnetic field",
    int(EventCode.REVERSE_FLOW): "reverse flow without generation",
}


@dataclass(frozen=True)
class AlarmPolicy:
    correlation_s: int = 300  # last gasps this close to an open outage's latest join it
    major_meters: int = 100  # an outage of this many meters is major


@dataclass(frozen=True)
class Alarm:
    alarm_id: str
    kind: AlarmKind
    severity: Severity
    opened: int  # Unix s: the first event
    closed: int | None  # Unix s: the last meter restored (outages); None while open
    meters: int  # meters involved (an outage's every meter, restored or not)
    down: int  # meters still without power (outages)
    customers: Mapping[str, int]  # customers per area at the meters
    detail: str
    meter_id: int | None = None  # the meter (tamper)
    count: int = 1  # events behind the alarm
    meter_minutes: float = 0.0  # interruption (outages): sum over meters of minutes down

    @property
    def is_open(self) -> bool:
        return self.closed is None

    @property
    def customers_total(self) -> int:
        return sum(self.customers.values())


@dataclass
class _Outage:
    alarm_id: str
    opened: int
    latest_gasp: int
    down: dict[int, int] = field(default_factory=dict)  # meter -> down since
    restored: set[int] = field(default_factory=set)
    meter_minutes: float = 0.0
    closed: int | None = None

    @property
    def meters(self) -> int:
        return len(self.down) + len(self.restored)


class AlarmBook:
    def __init__(self, customers: CustomersOf, policy: AlarmPolicy | None = None) -> None:
        self.customers = customers
        self.policy = policy or AlarmPolicy()
        self._outages: dict[str, _Outage] = {}
        self._open_outages: list[str] = []
        self._down: dict[int, str] = {}  # meter -> the outage it is in
        self._alarms: dict[str, Alarm] = {}

    def observe(self, events: pl.DataFrame) -> list[Alarm]:
        """Take events (``meter_id``, ``time`` in Unix s, ``code``; in any order, sorted
        here by time) and return the alarms they opened, changed or closed."""
        changed: dict[str, int] = {}  # alarm id -> time of its latest change
        # by time; at one time a last gasp before a power-up (code order)
        ordered = events.select("meter_id", "time", "code").sort("time", "meter_id", "code")
        for meter, at, code in ordered.iter_rows():
            if code == EventCode.POWER_DOWN:
                changed[self._gasp(int(meter), int(at))] = int(at)
            elif code == EventCode.POWER_UP:
                restored = self._restore(int(meter), int(at))
                if restored is not None:
                    changed[restored] = int(at)
            elif code in _TAMPER:
                changed[self._tamper(int(meter), int(at), int(code))] = int(at)
        out = []
        for alarm_id, at in changed.items():
            outage = self._outages.get(alarm_id)
            if outage is not None:
                self._alarms[alarm_id] = self._outage_alarm(outage, at)
            out.append(self._alarms[alarm_id])
        return out

    def _gasp(self, meter: int, at: int) -> str:
        if meter in self._down:  # a repeated last gasp: already counted
            return self._down[meter]
        target = None
        for alarm_id in self._open_outages:
            if at - self._outages[alarm_id].latest_gasp <= self.policy.correlation_s:
                target = self._outages[alarm_id]
        if target is None:
            target = _Outage(f"outage-{at}-{meter}", at, at)
            self._outages[target.alarm_id] = target
            self._open_outages.append(target.alarm_id)
        target.latest_gasp = max(target.latest_gasp, at)
        target.down[meter] = at
        target.restored.discard(meter)
        self._down[meter] = target.alarm_id
        return target.alarm_id

    def _restore(self, meter: int, at: int) -> str | None:
        alarm_id = self._down.pop(meter, None)
        if alarm_id is None:
            # A power-up without a last gasp seen: the gasp was lost (it is one datagram
            # sent on the capacitors' energy), so the meter was in the outage open then;
            # with no outage open it is a cold start, not an outage.
            for open_id in reversed(self._open_outages):
                outage = self._outages[open_id]
                if outage.opened <= at and meter not in outage.restored:
                    outage.restored.add(meter)
                    outage.meter_minutes += (at - outage.opened) / 60.0
                    return open_id
            return None
        outage = self._outages[alarm_id]
        since = outage.down.pop(meter)
        outage.restored.add(meter)
        outage.meter_minutes += max(0, at - since) / 60.0
        if not outage.down:
            outage.closed = at
            self._open_outages.remove(alarm_id)
        return alarm_id

    def down_meters(self) -> dict[int, int]:
        """Meters counted without power in open outages, with since when (Unix s)."""
        return {m: self._outages[a].down[m] for m, a in self._down.items()}

    def heard_from(self, meters: Iterable[int], at: int) -> list[Alarm]:
        """Meters known to have power at ``at`` (their reads of an interval ending then
        arrived): those still counted down since before are restored then, for when their
        power-up event was lost. Returns the alarms changed."""
        changed: dict[str, int] = {}
        for meter in meters:
            alarm_id = self._down.get(meter)
            if alarm_id is not None and self._outages[alarm_id].down[meter] < at:
                self._restore(meter, at)
                changed[alarm_id] = at
        for alarm_id, when in changed.items():
            self._alarms[alarm_id] = self._outage_alarm(self._outages[alarm_id], when)
        return [self._alarms[a] for a in changed]

    def _outage_alarm(self, outage: _Outage, at: int) -> Alarm:
        meters = sorted([*outage.down, *outage.restored])
        big = outage.meters >= self.policy.major_meters
        return Alarm(
            alarm_id=outage.alarm_id,
            kind=AlarmKind.OUTAGE,
            severity=Severity.MAJOR if big else Severity.MINOR,
            opened=outage.opened,
            closed=outage.closed,
            meters=outage.meters,
            down=len(outage.down),
            customers=dict(self.customers(meters, outage.opened)),
            detail=f"{outage.meters} meters lost power"
            + (f", {len(outage.down)} still without" if outage.down else ", all restored"),
            meter_minutes=round(outage.meter_minutes, 1),
        )

    def _tamper(self, meter: int, at: int, code: int) -> str:
        alarm_id = f"tamper-{meter}-{code}"
        known = self._alarms.get(alarm_id)
        if known is not None:
            self._alarms[alarm_id] = replace(known, count=known.count + 1)
            return alarm_id
        self._alarms[alarm_id] = Alarm(
            alarm_id=alarm_id,
            kind=AlarmKind.TAMPER,
            severity=Severity.MAJOR,
            opened=at,
            closed=None,
            meters=1,
            down=0,
            customers=dict(self.customers([meter], at)),
            detail=_TAMPER[code],
            meter_id=meter,
        )
        return alarm_id

    def alarms(self, *, open_only: bool = False) -> list[Alarm]:
        """Every alarm so far (or the open ones), oldest first."""
        chosen: Iterable[Alarm] = self._alarms.values()
        if open_only:
            chosen = (a for a in chosen if a.is_open)
        return sorted(chosen, key=lambda a: (a.opened, a.alarm_id))


def registry_customers(registry: Registry) -> CustomersOf:
    """The book's question, answered by the registry: customers per area at these meters
    at that moment."""

    def customers(meters: list[int], at: int) -> Mapping[str, int]:
        return registry.customers_by_area(datetime.fromtimestamp(at, tz=UTC), meters)

    return customers


def restore_from_reads(book: AlarmBook, lake: IntervalLake) -> list[Alarm]:
    """Meters the book counts without power that have sent reads since (their power-up
    event was lost): each is restored at the end of the first interval it closed after its
    last gasp without the power-down status bit (0x80; re-collected intervals of the outage
    carry it), when it had power again. Returns the alarms changed."""
    down = book.down_meters()
    if not down:
        return []
    meters = sorted(down)
    con = lake.connect()
    try:
        rows = con.execute(
            "WITH d AS (SELECT unnest(?) AS meter_id, unnest(?) AS since) "
            "SELECT r.meter_id, min(epoch(r.interval_end))::BIGINT FROM interval_reads r "
            "JOIN d USING (meter_id) WHERE r.channel = 1 AND epoch(r.interval_end) > d.since "
            "AND (r.status & 128) = 0 "
            "GROUP BY 1",
            [meters, [down[m] for m in meters]],
        ).fetchall()
    finally:
        con.close()
    changed: dict[str, Alarm] = {}
    for meter, first in rows:
        for alarm in book.heard_from([int(meter)], int(first)):
            changed[alarm.alarm_id] = alarm
    return list(changed.values())
