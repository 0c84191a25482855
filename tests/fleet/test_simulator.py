from __future__ import annotations

from collections import Counter

import numpy as np

from openami.bus.contract import Channel, ReadSource
from openami.fleet.fleet import STATUS_CLOCK_INVALID
from openami.fleet.scenario import Fault, FaultKind
from openami.fleet.simulator import FleetSimulator
from tests.fleet.sim_support import START, Arrival, World, arrivals, minutes, scenario


def _kinds(got: list[Arrival]) -> Counter[str]:
    return Counter(a.kind for a in got)


def test_every_meter_pushes_each_interval_and_gas_water_on_the_hour() -> None:
    world = World.of()
    fleet = world.sim.fleet
    report, got = world.step()  # 00:30
    assert report.number == fleet.origin + 1 == fleet.now
    assert _kinds(got) == {"interval": fleet.n}
    assert sorted(a.meter for a in got) == list(range(fleet.n))
    report, got = world.step()  # 01:00: the gas and water indexes of the hour too
    assert _kinds(got) == {"interval": fleet.n, "utility": fleet.utility_meters.size}
    assert report.pushes == report.delivered == fleet.n + fleet.utility_meters.size
    assert world.ingest.accepted == {"push": 2 * fleet.n, "utility": fleet.utility_meters.size}
    assert world.ingest.rejected.total() == 0
    # the reads are the fleet's own numbers
    reads = world.ingest.reads.take()
    last = fleet.history(7, fleet.now, fleet.now)
    mine = [
        v
        for m, t, v in zip(reads.meter_id, reads.interval_end, reads.value_wh, strict=True)
        if m == 8 and t == world.sim.now_s
    ]
    assert mine == [
        int(last.import_wh[0]),
        int(last.export_wh[0]),
        int(last.import_register[0]),
        int(last.export_register[0]),
    ]


def test_pushes_are_spread_over_the_window_after_each_interval_end() -> None:
    world = World.of(push_spread_s=600.0)
    for _ in range(3):
        _, got = world.step()
        end = world.sim.now_s
        delay = np.array([a.arrive_s - end for a in got if a.kind == "interval"])
        # a meter's clock may be a second or two off, and the network takes its time
        assert delay.min() > -5.0
        assert delay.max() < 600.0 + 60.0
        # not all at once: spread over most of the window, about evenly
        assert delay.max() - delay.min() > 450.0
        assert 150.0 < float(np.median(delay)) < 450.0
        assert np.histogram(delay, bins=4, range=(0.0, 600.0))[0].min() > len(delay) // 10
    # without a spread they all leave at the interval end
    _, got = World.of(push_spread_s=0.0).step()
    first_end = START.timestamp() + 1800.0
    assert max(abs(a.arrive_s - first_end) for a in got) < 30.0


def test_utility_pushes_follow_their_meters_interval_push() -> None:
    world = World.of()
    world.step()
    _, got = world.step()
    sent = {a.meter: a.arrive_s for a in got if a.kind == "interval"}
    for a in got:
        if a.kind == "utility":
            assert a.arrive_s > sent[a.meter]


def test_pushes_and_delivered_count_the_same_datagrams_events_too() -> None:
    faults = (
        Fault(kind=FaultKind.OUTAGE, at=minutes(40), area="hills", duration_minutes=60),
        Fault(kind=FaultKind.TAMPER_COVER, at=minutes(70), share=0.05),
        # the town loses most of what it sends from 02:00 to 03:00, events and pushes alike
        Fault(kind=FaultKind.JAMMING, at=minutes(120), area="town", duration_minutes=60),
        Fault(kind=FaultKind.TAMPER_MAGNETIC, at=minutes(130), area="town", share=0.2),
    )
    world = World.of(*faults)
    sim, fleet = world.sim, world.sim.fleet
    seen: Counter[str] = Counter()
    lost_in_all = 0
    for _ in range(7):  # intervals ending 00:30 .. 03:30
        sent, arrived = sim.sent_by_group.total(), sim.delivered_by_group.total()
        report, got = world.step()
        # what the network models were handed and what they lost, by their own count
        lost = (sim.sent_by_group.total() - sent) - (sim.delivered_by_group.total() - arrived)
        assert report.delivered == len(got) <= report.pushes
        assert report.pushes == len(got) + lost == sim.sent_by_group.total() - sent
        events = sum(report.events[k] for k in report.events if k != "jamming:start")
        on_hour = sim.now_s % 3600 == 0
        powered = int(fleet.powered.sum())
        utility = int(fleet.powered[fleet.utility_meters].sum()) if on_hour else 0
        assert report.pushes == powered + utility + events, report.number
        seen.update(a.kind for a in got)
        lost_in_all += lost
    assert seen["event"] > 0 and seen["utility"] > 0 and lost_in_all > 0
    # every datagram the step returned was one the head-end could read
    assert world.ingest.rejected.total() == 0
    assert world.ingest.accepted.total() == sum(len(got) for _, got in world.steps)


def test_gas_and_water_carry_the_status_of_the_meters_interval_push() -> None:
    fault = Fault(
        kind=FaultKind.CLOCK_ERROR, at=minutes(70), area="hills", share=0.5, offset_s=3600.0
    )
    world = World.of(fault)
    fleet = world.sim.fleet
    wrong = {int(i) for i in world.sim.plan.actions[0].meters}
    utility = {int(i) for i in fleet.utility_meters}
    assert wrong & utility and utility - wrong
    world.run(2)  # 00:30, 01:00: before the fault, nothing is flagged
    assert set(world.ingest.reads.take().status) == {0}
    world.run(2)  # 01:30, 02:00: the clocks went an hour ahead at 01:10
    reads = world.ingest.reads.take()
    entries = list(
        zip(reads.meter_id, reads.channel, reads.interval_end, reads.status, strict=True)
    )
    gas_water = {Channel.GAS_INDEX, Channel.WATER_INDEX}
    two = fleet.interval_end(fleet.now)
    for i in utility:
        mine = [(c, t, s) for m, c, t, s in entries if m == i + 1]
        pushed = {(t, s) for c, t, s in mine if c not in gas_water and t in (two, two + 3600)}
        hourly = {(t, s) for c, t, s in mine if c in gas_water}
        # one hourly entry, stamped and flagged like the 02:00 interval push
        assert len(pushed) == len(hourly) == 1, i
        assert hourly == pushed, i
        expected = (two + 3600, STATUS_CLOCK_INVALID) if i in wrong else (two, 0)
        assert hourly == {expected}, i


def test_jamming_lowers_delivery_only_in_its_area_and_window() -> None:
    jam = Fault(
        kind=FaultKind.JAMMING,
        at=minutes(120),
        area="town",
        duration_minutes=60,
        delivery_factor=0.05,
    )
    world = World.of(jam)
    fleet = world.sim.fleet
    town = fleet.area == 0
    ratios: list[tuple[float, float]] = []
    for _ in range(7):  # intervals ending 00:30 .. 03:30
        _, got = world.step()
        pushed = np.array([a.meter for a in got if a.kind == "interval"], dtype=np.int64)
        ratios.append(
            (
                float(town[pushed].sum() / town.sum()),
                float((~town[pushed]).sum() / (~town).sum()),
            )
        )
    # pushes of the intervals ending 02:00 and 02:30 leave inside 02:00-03:00
    for k, (town_ratio, hills_ratio) in enumerate(ratios):
        assert hills_ratio == 1.0, k
        if k in (3, 4):
            assert town_ratio < 0.6, k
        else:
            assert town_ratio == 1.0, k
    town_net = next(g for g, (area, _m) in world.sim.group_names.items() if area == "town")
    assert world.sim.delivered_by_group[town_net] < world.sim.sent_by_group[town_net]


def test_request_answers_a_collection_request() -> None:
    world = World.of()
    fleet = world.sim.fleet
    world.run(6)
    world.ingest.reads.take()
    first, last, meter = fleet.now - 4, fleet.now - 1, 17
    at = float(world.sim.now_s) + 900.0
    arrived = world.collect(meter, first, last, at)
    assert arrived is not None and arrived > at
    assert world.collector.completed == 1
    reads = world.ingest.reads.take()
    assert set(reads.source) == {ReadSource.RECOLLECT}
    assert set(reads.meter_id) == {meter + 1}
    ends = [fleet.interval_end(k) for k in range(first, last + 1)]
    assert sorted(set(reads.interval_end)) == ends
    h = fleet.history(meter, first, last)
    registers = [v for c, v in zip(reads.channel, reads.value_wh, strict=True) if c == 3]
    assert registers == h.import_register.tolist()
    # the same request again is a replay: the meter does not answer it
    payload, _ = world.outbox.sent[-1]
    assert world.sim.request(meter, payload, at + 10.0) is None


def test_the_same_seed_gives_the_same_world() -> None:
    faults = (
        Fault(kind=FaultKind.OUTAGE, at=minutes(20), area="hills", duration_minutes=45),
        Fault(kind=FaultKind.TAMPER_COVER, at=minutes(50), share=0.05),
        Fault(kind=FaultKind.JAMMING, at=minutes(60), area="town", duration_minutes=30),
    )

    def trace(seed: int) -> list[object]:
        sim = FleetSimulator(scenario(*faults, seed=seed))
        out: list[object] = []
        for _ in range(4):
            step, report = sim.step()
            out.append((report.number, report.pushes, report.delivered, dict(report.events)))
            out += [(a.kind, a.meter, a.arrive_s, a.payload, a.source) for a in arrivals(sim, step)]
        return out

    assert trace(3) == trace(3)
    assert trace(3) != trace(4)
