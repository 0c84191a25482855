"""Commands beside collection, and beside a head-end on another time line than the meters.

A meter answers a copy of a command (sent again because its answer was lost) only if it
carried out nothing newer; so while a command waits for its answer, no collection may reach
that meter, and a command waits while a collection to its meter is in flight. And a time
sync from a head-end whose clock is not the simulation's leaves the meter's clock right.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from openami.bus.commands import CommandKind, CommandStatus
from openami.bus.contract import CollectRequest
from openami.fleet.fleet import STATUS_CLOCK_INVALID
from openami.headend.collection import Collector
from openami.headend.command_store import CommandState
from openami.protocols.dlms import obis
from openami.protocols.dlms.services import MethodDescriptor
from tests.headend.command_support import HEADEND, World, stores

DISCONNECT = MethodDescriptor(70, obis.ObisCode.parse("0.0.96.3.10.255").to_bytes(), 1)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with stores("sqlite", tmp_path) as factory:
        yield World(factory)


def _collect(world: World, meter: int) -> CollectRequest:
    end = world.fleet.interval_end(world.fleet.now)
    meter_id = world.fleet.identity(meter).meter_id
    return CollectRequest(meter_id, end, end, f"collect-{meter_id}")


def test_a_command_waits_while_a_collection_to_its_meter_is_in_flight(world: World) -> None:
    meter_id = world.fleet.identity(1).meter_id
    collecting = {meter_id}
    world.commander.hold = collecting.__contains__
    request = world.submit(CommandKind.DISCONNECT, meter=1)
    world.run()
    assert world.wire.sent == [] and not world.commander.busy(meter_id)
    assert world.store.get(request.command_id).state is CommandState.ACCEPTED  # type: ignore[union-attr]
    collecting.clear()  # the collection ended
    world.settle()
    assert world.result(request.command_id).status is CommandStatus.SUCCESS


def test_a_collection_waits_while_a_command_to_its_meter_waits_for_its_answer(
    world: World,
) -> None:
    collector = Collector(world.keys, world.wire, HEADEND)
    collector.hold = world.commander.busy
    world.wire.drop_answers = 1  # the disconnect's answer is lost: it must be sent again
    request = world.submit(CommandKind.DISCONNECT, meter=1)
    world.run()
    assert not world.fleet.connected[1]  # carried out
    meter_id = world.fleet.identity(1).meter_id
    assert world.commander.busy(meter_id)
    collector.submit(_collect(world, 1))
    collector.submit(_collect(world, 2))
    collector.dispatch(now=0.0)
    assert collector.in_flight(world.fleet.identity(2).meter_id)  # another meter: no wait
    assert not collector.in_flight(meter_id) and collector.pending() == 2
    world.wire.requests.clear()  # (the other meter's collection is not the point here)
    # the copy reaches the meter with nothing newer in between: answered, not carried out
    world.settle()
    assert world.result(request.command_id).status is CommandStatus.SUCCESS
    assert world.server.repeated == 1 and world.executed("action", DISCONNECT) == 1
    assert not world.commander.busy(meter_id)
    collector.dispatch(now=1.0)
    assert collector.in_flight(meter_id)


def test_a_time_sync_from_a_head_end_on_the_wall_clock_leaves_a_simulated_clock_right(
    world: World,
) -> None:
    # the meters live in simulated August; the head-end keeps the wall clock, months later
    f = world.fleet
    f.set_clock_error(np.array([0]), 3600.0)
    f.advance()
    world.now = datetime(2026, 12, 6, 7, 46, tzinfo=UTC).timestamp()
    world.server.true_time = lambda: datetime.fromtimestamp(world.now + 0.2, tz=UTC)
    request = world.submit(CommandKind.TIME_SYNC, meter=0)
    world.settle(seconds=0.0)
    assert world.result(request.command_id).status is CommandStatus.SUCCESS
    # off by the request's age (0.2 s), not by the months between the two time lines
    assert f.clock_shift[0] == 0 and abs(f.clock_offset_s[0]) < 1.0
    assert not f.advance().status[0] & STATUS_CLOCK_INVALID
