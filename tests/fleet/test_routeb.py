"""Route B of a fleet meter: what ECHONET Lite reports equals what Route A (DLMS) reads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from openami.errors import LocalProtocolError
from openami.fleet.fleet import Fleet
from openami.fleet.meter import MeterServer
from openami.fleet.routeb import (
    MANUFACTURER_CODE,
    FleetMeterSource,
    RouteBMeter,
    route_b_meter,
    scenario_clock,
)
from openami.protocols.echonet import (
    EOJ,
    ESV,
    JST,
    NODE_PROFILE,
    EchonetClient,
    FixedTimeReading,
    HalfHourlyHistory,
    IdentificationNumber,
    decode_frame,
    encode_frame,
)
from tests.fleet.route_a import RouteA

METER = EOJ(0x02, 0x88, 0x01)
START = datetime(2026, 8, 3, tzinfo=JST)


class Hems:
    """A HEMS talking to one node in memory, through the frames' bytes."""

    def __init__(self, meter: RouteBMeter) -> None:
        self.meter = meter
        self.client = EchonetClient()

    def get(self, *epcs: int, eoj: EOJ = METER) -> dict[int, Any]:
        request = encode_frame(self.client.get(eoj, epcs))
        (reply,) = self.meter.node.handle(request)
        assert reply.esv is ESV.GET_RES
        return self.client.parse(decode_frame(encode_frame(reply)))

    def set_day(self, day: int) -> None:
        (reply,) = self.meter.node.handle(encode_frame(self.client.set_c(METER, {0xE5: day})))
        assert reply.esv is ESV.SET_RES


def _advanced(fleet: Fleet, intervals: int) -> Callable[[], datetime]:
    """Advance the fleet; a clock ten minutes into the interval after its last closed one
    (so Route A's fast profile path, which follows the fleet, and the clock agree)."""
    for _ in range(intervals):
        fleet.advance()
    moment = datetime.fromtimestamp(fleet.interval_end(fleet.now), tz=UTC)
    return lambda: moment + timedelta(minutes=10)


def _route_a_day(route_a: RouteA, i: int, day: datetime, register: str) -> list[int | None]:
    """The meter's register at each half-hour of ``day`` (Japan time) by its load profile."""
    entries = route_a.profile(i, day, day + timedelta(hours=23, minutes=30))
    by_end = {e.interval_end: getattr(e, register) for e in entries}
    return [by_end.get(int((day + timedelta(minutes=30 * k)).timestamp())) for k in range(48)]


@pytest.mark.parametrize("i", [0, 3, 4])
def test_echonet_registers_and_history_equal_route_a(i: int) -> None:
    fleet = Fleet.simple(5, START, seed=7)
    clock = _advanced(fleet, 48 + 13)  # the second day, 06:30 closed, 06:40 now
    route_a = RouteA(fleet, MeterServer(fleet, clock=clock))
    hems = Hems(route_b_meter(fleet, i, clock))

    values = hems.get(0xE0, 0xE3, 0xD3, 0xE1, 0xD7, 0xE2, 0xE4)
    assert values[0xD3] == 1 and values[0xE1] == Decimal("0.001") and values[0xD7] == 8
    # E0 x coefficient x unit is the register in kWh; in Wh it is Route A's register exactly
    assert values[0xE0] * values[0xD3] * values[0xE1] * 1000 == route_a.import_register(i)
    assert values[0xE3] * values[0xD3] == route_a.export_register(i)

    today = START + timedelta(days=1)
    history = values[0xE2]
    assert isinstance(history, HalfHourlyHistory) and history.day == 0
    expected = _route_a_day(route_a, i, today, "import_register")
    assert list(history.values) == expected
    assert expected[13] is not None and expected[14] is None  # 06:30 read, 07:00 not yet
    assert list(values[0xE4].values) == _route_a_day(route_a, i, today, "export_register")

    hems.set_day(1)  # yesterday: a whole day, and its 00:00 is the day before's last read
    yesterday = hems.get(0xE2)[0xE2]
    assert yesterday.day == 1
    assert list(yesterday.values) == _route_a_day(route_a, i, START, "import_register")
    assert None not in yesterday.values

    hems.set_day(46)  # past the 45-day buffer: no data, as the buffer holds none
    assert hems.get(0xE2)[0xE2].values == (None,) * 48


def test_instantaneous_power_is_route_as_average_of_the_last_interval() -> None:
    fleet = Fleet.simple(40, START, seed=5)
    clock = _advanced(fleet, 26)  # 13:00: panels produce
    route_a = RouteA(fleet, MeterServer(fleet, clock=clock))
    h = [fleet.history(i, fleet.now, fleet.now) for i in range(fleet.n)]
    importing = next(i for i in range(fleet.n) if h[i].export_wh[0] == 0 and h[i].import_wh[0])
    exporting = next(i for i in range(fleet.n) if h[i].export_wh[0] > h[i].import_wh[0])

    power = Hems(route_b_meter(fleet, importing, clock)).get(0xE7, 0xE8)
    assert power[0xE7] == route_a.power(importing) > 0
    assert power[0xE8] == (power[0xE7] // 20,) * 2  # P / 2 legs / 100 V, in 0.1 A

    power = Hems(route_b_meter(fleet, exporting, clock)).get(0xE7, 0xE8)
    net = int(h[exporting].import_wh[0]) - int(h[exporting].export_wh[0])
    assert power[0xE7] == -(-net * 3600 // fleet.step_s) < 0
    assert power[0xE8] == (-(-power[0xE7] // 20),) * 2


def test_registers_follow_the_clock_without_advancing_the_fleet() -> None:
    fleet = Fleet.simple(2, START, seed=9)
    moment = [START + timedelta(hours=5, minutes=10)]
    source = FleetMeterSource(fleet, 1, lambda: moment[0])
    route_a = RouteA(fleet, MeterServer(fleet, clock=lambda: moment[0]))
    before = source.cumulative_import_wh()
    assert before == route_a.import_register(1)
    moment[0] += timedelta(minutes=30)  # one more interval closed; fleet.now never moved
    after = source.cumulative_import_wh()
    assert after == route_a.import_register(1)
    closed = fleet.number_of(moment[0])
    assert after - before == int(fleet.history(1, closed, closed, now=closed).import_wh[0])
    assert fleet.now == fleet.origin


def test_fixed_time_registers_and_their_half_hourly_announcement() -> None:
    fleet = Fleet.simple(1, START, seed=2)
    moment = [START + timedelta(hours=9, minutes=59)]
    meter = route_b_meter(fleet, 0, lambda: moment[0])
    values = Hems(meter).get(0xEA, 0xEB)
    at = START + timedelta(hours=9, minutes=30)
    number = fleet.number_of(at)
    h = fleet.history(0, number, number, now=number)
    assert values[0xEA] == FixedTimeReading(at, int(h.import_register[0]))
    assert values[0xEB] == FixedTimeReading(at, int(h.export_register[0]))

    assert meter.announcements() == []  # still the half-hour it was built in
    moment[0] += timedelta(minutes=1)  # 10:00
    (inf,) = meter.announcements()
    assert inf.esv is ESV.INF and inf.seoj == METER
    announced = EchonetClient().parse(inf)
    assert announced[0xEA].at == START + timedelta(hours=10)
    assert announced[0xEA].value == meter.source.cumulative_import_wh()
    assert meter.announcements() == []


@pytest.mark.parametrize(("minutes", "filled"), [(15, 48), (60, 24)])
def test_half_hourly_history_from_other_intervals(minutes: int, filled: int) -> None:
    fleet = Fleet.simple(1, START, seed=4, interval_minutes=minutes)
    now = START + timedelta(days=2, minutes=5)
    source = FleetMeterSource(fleet, 0, lambda: now)
    yesterday = source.half_hourly_import_wh(1)
    assert sum(v is not None for v in yesterday) == filled
    h = fleet.history(0, 0, fleet.number_of(now), now=fleet.number_of(now))
    registers = dict(zip(h.numbers.tolist(), h.import_register.tolist(), strict=True))
    noon = int((START + timedelta(days=1, hours=12)).timestamp())
    assert yesterday[24] == registers[noon // fleet.step_s]
    if minutes == 60:
        assert yesterday[25] is None  # 12:30 is no interval end


def test_identity_of_the_node() -> None:
    fleet = Fleet.simple(12, START, seed=1)
    meter = route_b_meter(fleet, 11, lambda: START + timedelta(hours=1))
    hems = Hems(meter)
    assert hems.get(0x8D, 0x8A) == {0x8D: "0000000012", 0x8A: MANUFACTURER_CODE}
    profile = hems.get(0x83, 0xD6, eoj=NODE_PROFILE)
    assert profile[0xD6] == (METER,)
    assert profile[0x83] == IdentificationNumber(MANUFACTURER_CODE, b"OAM" + (12).to_bytes(10))
    clock_values = hems.get(0x97, 0x98)
    assert (clock_values[0x98].isoformat(), clock_values[0x97].isoformat()) == (
        "2026-08-03",
        "01:00:00",
    )
    assert (meter.meter_id, meter.serial) == (12, "OAM0000000012")


def test_scenario_clock_maps_the_wall_clock_into_the_scenario() -> None:
    wall = [datetime(2026, 12, 6, 10, 41, 51, tzinfo=UTC)]  # 19:41:51 in Japan
    by_day = scenario_clock(START, wall=lambda: wall[0])
    assert by_day() == datetime(2026, 8, 3, 19, 41, 51, tzinfo=JST)
    wall[0] += timedelta(hours=5)  # past midnight in Japan: the scenario's second day
    assert by_day() == datetime(2026, 8, 4, 0, 41, 51, tzinfo=JST)

    wall[0] = datetime(2026, 12, 6, tzinfo=UTC)
    at = scenario_clock(START, at=START + timedelta(hours=12, minutes=10), wall=lambda: wall[0])
    wall[0] += timedelta(seconds=90)
    assert at() == START + timedelta(hours=12, minutes=11, seconds=30)
    with pytest.raises(LocalProtocolError):
        scenario_clock(datetime(2026, 8, 3))  # noqa: DTZ001 - a naive start is refused


def test_sources_refuse_what_they_cannot_serve() -> None:
    fleet = Fleet.simple(2, START, seed=1)
    with pytest.raises(LocalProtocolError, match="outside the fleet"):
        FleetMeterSource(fleet, 2, lambda: START)
    naive = FleetMeterSource(fleet, 0, lambda: datetime(2026, 8, 3))  # noqa: DTZ001
    with pytest.raises(LocalProtocolError, match="naive"):
        naive.cumulative_import_wh()


def test_route_b_costs_one_profile_per_interval() -> None:
    fleet = Fleet.simple(1, START, seed=1)
    calls = []
    history = fleet.history

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return history(*args, **kwargs)

    fleet.history = counted  # type: ignore[method-assign]
    moment = [START + timedelta(hours=3, minutes=1)]
    hems = Hems(route_b_meter(fleet, 0, lambda: moment[0]))
    for _ in range(5):
        hems.get(0xE0, 0xE2, 0xE7, 0xEA)
    assert len(calls) == 1
    moment[0] += timedelta(minutes=30)
    hems.get(0xE0)
    assert len(calls) == 2
    assert np.all(np.diff(np.array([c[2] for c in calls])) == 1)
