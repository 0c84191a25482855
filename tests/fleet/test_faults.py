from __future__ import annotations

import numpy as np
import pytest

from openami.bus.contract import Channel, EventBatch
from openami.fleet.faults import Action, FaultPlan
from openami.fleet.fleet import STATUS_CLOCK_INVALID, STATUS_POWER_DOWN, Fleet
from openami.fleet.scenario import Fault, FaultKind
from openami.protocols.dlms.notification import EventCode
from tests.fleet.sim_support import Arrival, World, minutes, scenario

TOWN, HILLS = 0, 1


def _plan(*faults: Fault, seed: int = 3) -> tuple[FaultPlan, Fleet]:
    sc = scenario(*faults, seed=seed)
    fleet = Fleet(sc)
    return FaultPlan(sc, fleet.area), fleet


def _events(world: World) -> EventBatch:
    return world.ingest.events.take()


def _pushers(got: list[Arrival]) -> set[int]:
    return {a.meter for a in got if a.kind == "interval"}


def _action(world: World, kind: FaultKind, starting: bool = True) -> Action:
    return next(
        a for a in world.sim.plan.actions if a.fault.kind is kind and a.starting == starting
    )


# -- the plan ----------------------------------------------------------------------------


def test_each_fault_picks_its_share_of_its_area_repeatably() -> None:
    outage = Fault(
        kind=FaultKind.OUTAGE, at=minutes(40), area="hills", duration_minutes=60, share=0.25
    )
    anywhere = Fault(kind=FaultKind.TAMPER_COVER, at=minutes(10), share=0.0001)
    plan, fleet = _plan(outage, anywhere)
    assert [a.fault.kind for a in plan.actions] == [
        FaultKind.TAMPER_COVER,
        FaultKind.OUTAGE,
        FaultKind.OUTAGE,
    ]
    down = plan.actions[1].meters
    assert down.size == 15 and np.all(fleet.area[down] == HILLS)
    assert np.array_equal(plan.actions[2].meters, down)  # the same meters come back
    assert (plan.actions[1].starting, plan.actions[2].starting) == (True, False)
    assert plan.actions[0].meters.size == 1  # at least one meter, from the whole fleet
    again, _ = _plan(outage, anywhere)
    assert np.array_equal(again.actions[1].meters, down)
    other, _ = _plan(outage, anywhere, seed=4)
    assert not np.array_equal(other.actions[1].meters, down)


def test_actions_are_handed_out_in_time_order_once() -> None:
    plan, _ = _plan(
        Fault(kind=FaultKind.OUTAGE, at=minutes(40), duration_minutes=60),
        Fault(kind=FaultKind.TAMPER_COVER, at=minutes(30)),
        Fault(kind=FaultKind.NODE_FAILURE, at=minutes(10), duration_minutes=30),
    )
    times = [a.at_s for a in plan.actions]
    assert times == sorted(times)
    assert plan.due(minutes(10).timestamp()) == []  # strictly before: 00:10 is not yet due
    first = plan.due(minutes(30).timestamp())
    assert [(a.fault.kind, a.starting) for a in first] == [(FaultKind.NODE_FAILURE, True)]
    rest = plan.due(minutes(41).timestamp())
    # a fault that ends when another starts: the start goes first
    assert [(a.fault.kind, a.starting) for a in rest] == [
        (FaultKind.TAMPER_COVER, True),
        (FaultKind.OUTAGE, True),
        (FaultKind.NODE_FAILURE, False),
    ]
    assert plan.due(minutes(41).timestamp()) == []
    assert [(a.fault.kind, a.starting) for a in plan.due(minutes(1000).timestamp())] == [
        (FaultKind.OUTAGE, False)
    ]
    assert plan.due(minutes(2000).timestamp()) == []


@pytest.mark.parametrize(
    ("kind", "ends"),
    [
        (FaultKind.OUTAGE, True),
        (FaultKind.REVERSE_FLOW, True),
        (FaultKind.NODE_FAILURE, True),
        (FaultKind.TAMPER_COVER, False),
        (FaultKind.TAMPER_MAGNETIC, False),
        (FaultKind.CLOCK_ERROR, False),
        (FaultKind.COMM_UNIT_SWAP, False),
        (FaultKind.JAMMING, False),  # the networks apply its window themselves
    ],
)
def test_only_faults_that_last_have_an_end(kind: FaultKind, ends: bool) -> None:
    plan, _ = _plan(Fault(kind=kind, at=minutes(10), duration_minutes=90))
    assert [a.starting for a in plan.actions] == ([True, False] if ends else [True])
    assert len(plan.jamming()) == (kind is FaultKind.JAMMING)


# -- what the faults do to the meters ----------------------------------------------------


def test_an_outage_sends_last_gasps_then_silence_then_power_up() -> None:
    outage = Fault(
        kind=FaultKind.OUTAGE, at=minutes(40), area="hills", duration_minutes=60, share=0.25
    )
    world = World.of(outage)
    fleet = world.sim.fleet
    down = set(_action(world, FaultKind.OUTAGE).meters.tolist())
    _, got = world.step()  # 00:30: before the outage
    assert down <= _pushers(got)
    assert len(world.ingest.events) == 0

    report, got = world.step()  # 01:00: power lost at 00:40
    assert report.events == {"outage:start": len(down)}
    gasps = [a for a in got if a.kind == "event"]
    pushes = [a for a in got if a.kind == "interval"]
    assert {a.meter for a in gasps} == down
    assert max(a.arrive_s for a in gasps) < min(a.arrive_s for a in pushes)  # sent at 00:40
    assert not down & _pushers(got)
    assert _pushers(got) == set(range(fleet.n)) - down
    events = _events(world)
    assert set(events.code) == {EventCode.POWER_DOWN}
    assert sorted(events.meter_id) == sorted(i + 1 for i in down)
    assert set(events.time) == {int(minutes(40).timestamp())}
    assert events.value == [int(fleet.import_register[i - 1]) for i in events.meter_id]
    # no power, no answer
    some = min(down)
    assert world.collect(some, fleet.now - 2, fleet.now, world.sim.now_s + 60.0) is None

    _, got = world.step()  # 01:30: still down, and silent
    assert not down & _pushers(got)
    assert len(world.ingest.events) == 0

    report, got = world.step()  # 02:00: power back at 01:40
    assert report.events == {"outage:end": len(down)}
    assert {a.meter for a in got if a.kind == "event"} == down
    assert down <= _pushers(got)
    events = _events(world)
    assert set(events.code) == {EventCode.POWER_UP}
    assert set(events.time) == {int(minutes(100).timestamp())}

    # the meters' own profile: nothing consumed while down, flagged as such
    first = fleet.now - 3
    for i in down:
        h = fleet.history(i, first, fleet.now)
        assert h.import_wh[1:3].tolist() == [0, 0] and h.export_wh[1:3].tolist() == [0, 0]
        assert h.status.tolist() == [0, STATUS_POWER_DOWN, STATUS_POWER_DOWN, 0]
    # and the head-end can collect the gap now
    world.ingest.reads.take()
    assert world.collect(some, fleet.now - 2, fleet.now - 1, world.sim.now_s + 60.0) is not None
    reads = world.ingest.reads.take()
    assert set(reads.status) == {STATUS_POWER_DOWN}


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (FaultKind.TAMPER_COVER, EventCode.TERMINAL_COVER_OPENED),
        (FaultKind.TAMPER_MAGNETIC, EventCode.STRONG_MAGNETIC_FIELD),
    ],
)
def test_tamper_is_reported_once(kind: FaultKind, code: EventCode) -> None:
    # a duration means nothing to a tamper event: it is sent once, at the start
    world = World.of(Fault(kind=kind, at=minutes(10), area="town", share=0.05, duration_minutes=30))
    fleet = world.sim.fleet
    chosen = _action(world, kind).meters
    assert chosen.size == 6 and np.all(fleet.area[chosen] == TOWN)
    world.run(4)
    events = _events(world)
    assert sorted(events.meter_id) == sorted(int(i) + 1 for i in chosen)
    assert set(events.code) == {code}
    assert set(events.time) == {int(minutes(10).timestamp())}
    assert world.ingest.rejected.total() == 0


def test_a_clock_error_is_reported_and_flags_the_entries() -> None:
    fault = Fault(
        kind=FaultKind.CLOCK_ERROR,
        at=minutes(50),
        area="hills",
        share=0.1,
        offset_s=3600.0,
        duration_minutes=60,
    )
    world = World.of(fault)
    fleet = world.sim.fleet
    wrong = _action(world, FaultKind.CLOCK_ERROR).meters
    world.step()
    world.ingest.reads.take()
    world.run(3)  # 01:00, 01:30, 02:00
    events = _events(world)
    assert sorted(events.meter_id) == sorted(int(i) + 1 for i in wrong)
    assert set(events.code) == {EventCode.CLOCK_ERROR}
    assert np.all(fleet.clock_shift[wrong] == 2)  # an hour: once, not again at the end
    assert np.all(fleet.clock_fault[wrong]) and fleet.clock_fault.sum() == wrong.size
    reads = world.ingest.reads.take()
    profile = [
        (m - 1, t, s)
        for m, c, t, s in zip(
            reads.meter_id, reads.channel, reads.interval_end, reads.status, strict=True
        )
        if c <= Channel.EXPORT_REGISTER
    ]
    for i in wrong.tolist():
        mine = [(t, s) for m, t, s in profile if m == i]
        # stamped by a clock an hour ahead, and flagged as such
        assert sorted({t for t, _ in mine}) == [
            fleet.interval_end(fleet.now - k) + 3600 for k in (2, 1, 0)
        ]
        assert {s for _, s in mine} == {STATUS_CLOCK_INVALID}
        h = fleet.history(i, fleet.now - 3, fleet.now)
        assert h.status.tolist() == [0] + [STATUS_CLOCK_INVALID] * 3
    others = set(range(fleet.n)) - set(wrong.tolist())
    assert all(s == 0 for m, _, s in profile if m in others)


def test_reverse_flow_only_at_meters_without_pv() -> None:
    fault = Fault(
        kind=FaultKind.REVERSE_FLOW, at=minutes(40), area="hills", share=1.0, duration_minutes=60
    )
    world = World.of(fault)
    fleet = world.sim.fleet
    hills = np.flatnonzero(fleet.area == HILLS)
    no_pv = {int(i) for i in hills if fleet.traits.pv_kw[i] == 0}
    pv = {int(i) for i in hills} - no_pv
    assert no_pv and pv
    world.step()
    report, _ = world.step()  # 01:00
    assert report.events == {"reverse_flow:start": hills.size}
    events = _events(world)
    assert {m - 1 for m in events.meter_id} == no_pv  # PV meters export anyway: no event
    assert set(events.code) == {EventCode.REVERSE_FLOW}
    world.run(2)  # 01:30, 02:00 (flow right again from 01:40)
    assert len(world.ingest.events) == 0  # the end is not an event
    first = fleet.now - 3
    for i in no_pv:
        h = fleet.history(i, first, fleet.now)
        assert h.import_wh[1:3].tolist() == [0, 0]
        assert np.all(h.export_wh[1:3] > 0)
        assert h.export_wh[0] == 0 and h.export_wh[3] == 0
    assert not fleet.reverse_windows.keys() & pv


def test_a_comm_unit_swap_changes_the_address_the_head_end_uses() -> None:
    fault = Fault(kind=FaultKind.COMM_UNIT_SWAP, at=minutes(70), area="town", share=1.0)
    world = World.of(fault)
    fleet = world.sim.fleet
    town = np.flatnonzero(fleet.area == TOWN)
    separated = {int(i) for i in town if fleet.separated[i]}
    before = {i: fleet.address(i) for i in range(fleet.n)}
    world.run(3)  # 00:30, 01:00, 01:30 (the swap at 01:10)
    events = _events(world)
    assert {m - 1 for m in events.meter_id} == separated  # integrated units cannot be swapped
    assert set(events.code) == {EventCode.COMM_UNIT_REPLACED}
    for m, unit in zip(events.meter_id, events.value, strict=True):
        assert int(fleet.comm_unit[m - 1]) == unit > fleet.n
    for i in range(fleet.n):
        assert (fleet.address(i) != before[i]) == (i in separated)
        # the head-end learned the new address from the authentic pushes
        assert world.keys.by_id(i + 1).address == fleet.address(i)
    assert world.ingest.accepted["address_changed"] == len(separated)
    _, got = world.step()
    assert {a.source for a in got if a.meter in separated} == {fleet.address(i) for i in separated}
    # a collection goes to the new address, and is answered there
    i = min(separated)
    assert world.collect(i, fleet.now - 3, fleet.now, world.sim.now_s + 60.0) is not None


def test_dead_nodes_lose_pushes_but_not_data() -> None:
    fault = Fault(
        kind=FaultKind.NODE_FAILURE, at=minutes(40), area="town", share=0.1, duration_minutes=60
    )
    world = World.of(fault)
    fleet = world.sim.fleet
    dead = set(_action(world, FaultKind.NODE_FAILURE).meters.tolist())
    assert dead <= _pushers(world.step()[1])
    for _ in range(2):  # 01:00, 01:30: the units are dead
        assert not dead & _pushers(world.step()[1])
    assert dead <= _pushers(world.step()[1])  # 02:00: back
    # the meters went on measuring: the gap can be collected
    i = min(dead)
    world.ingest.reads.take()
    assert world.collect(i, fleet.now - 2, fleet.now - 1, world.sim.now_s + 60.0) is not None
    reads = world.ingest.reads.take()
    assert sorted(set(reads.interval_end)) == [fleet.interval_end(fleet.now - k) for k in (2, 1)]
    assert len(world.ingest.events) == 0
