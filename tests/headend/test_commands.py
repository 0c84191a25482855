"""Commands end to end: a Commander, fleet meters and a wire in memory that drops, copies
and delays; the fleet's state is checked after each command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from openami.bus.commands import CommandKind, CommandStatus, encode_command_message
from openami.fleet.fleet import STATUS_CLOCK_INVALID
from openami.headend.command_store import CommandState, utc
from openami.headend.commands import Commander
from openami.protocols.dlms import obis
from openami.protocols.dlms.axdr import Data, DataType, decode_data, encode_data
from openami.protocols.dlms.cosem_datetime import decode_datetime
from openami.protocols.dlms.services import (
    ActionResponseNormal,
    ActionResult,
    AttributeDescriptor,
    GetResponseNormal,
    MethodDescriptor,
)
from tests.headend.command_support import BACKENDS, HEADEND, Stores, World, stores, target

SWITCH = obis.ObisCode.parse("0.0.96.3.10.255").to_bytes()
LIMITER = obis.ObisCode.parse("0.0.17.0.0.255").to_bytes()
DISCONNECT = MethodDescriptor(70, SWITCH, 1)
RECONNECT = MethodDescriptor(70, SWITCH, 2)
LIMIT = AttributeDescriptor(71, LIMITER, 4)
OPEN = encode_data(Data(DataType.ENUM, 0))
CLOSED = encode_data(Data(DataType.ENUM, 1))


@pytest.fixture
def sqlite_stores(tmp_path: Path) -> Iterator[Stores]:
    with stores("sqlite", tmp_path) as factory:
        yield factory


@pytest.fixture
def world(sqlite_stores: Stores) -> World:
    return World(sqlite_stores)


# -- each kind ------------------------------------------------------------------------------


def test_disconnect_opens_the_switch_and_reconnect_closes_it(world: World) -> None:
    f = world.fleet
    down = world.submit(CommandKind.DISCONNECT, meter=1)
    world.settle()
    result = world.result(down.command_id)
    assert result.status is CommandStatus.SUCCESS
    assert result.state == OPEN  # control state read back after the action
    assert not f.connected[1] and f.connected[0]
    values = f.advance()
    assert values.import_wh[1] == 0 and values.import_wh[0] > 0  # no energy through it

    up = world.submit(CommandKind.RECONNECT, meter=1)
    world.settle()
    assert world.result(up.command_id).state == CLOSED
    assert f.connected[1]
    assert f.advance().import_wh[1] > 0
    assert world.executed("action", DISCONNECT) == world.executed("action", RECONNECT) == 1


def test_contract_current_is_written_and_read_back(world: World) -> None:
    request = world.submit(CommandKind.SET_CONTRACT_CURRENT, meter=2, amps=40)
    world.settle()
    result = world.result(request.command_id)
    assert result.status is CommandStatus.SUCCESS
    assert result.state == encode_data(Data(DataType.LONG_UNSIGNED, 4000))
    # the meter keeps it: a new object model of the meter still has it
    assert world.server.model(2).get(LIMIT) == Data(DataType.LONG_UNSIGNED, 4000)
    assert world.server.model(1).get(LIMIT) == Data(DataType.LONG_UNSIGNED, 3000)


def test_an_interval_change_sets_capture_period_and_push_spread(world: World) -> None:
    request = world.submit(CommandKind.SET_INTERVAL, meter=3, minutes=5)
    world.settle()
    result = world.result(request.command_id)
    assert result.status is CommandStatus.SUCCESS
    assert result.state is not None
    period, spread = decode_data(result.state).value
    assert period == Data(DataType.DOUBLE_LONG_UNSIGNED, 300)
    assert spread == Data(DataType.LONG_UNSIGNED, 50)
    model = world.server.model(3)
    assert model.get(AttributeDescriptor(7, obis.LOAD_PROFILE.to_bytes(), 4)) == period
    assert model.get(AttributeDescriptor(40, obis.PUSH_SETUP_INTERVAL.to_bytes(), 5)) == spread


def test_time_sync_clears_a_clock_fault(world: World) -> None:
    f = world.fleet
    f.set_clock_error(np.array([0]), 3600.0)
    assert f.advance().status[0] & STATUS_CLOCK_INVALID
    world.now = float(f.interval_end(f.now))
    request = world.submit(CommandKind.TIME_SYNC, meter=0)
    world.settle(seconds=1.0)
    result = world.result(request.command_id)
    assert result.status is CommandStatus.SUCCESS
    assert result.state is not None
    clock = decode_data(result.state)
    assert decode_datetime(clock.value).timestamp() == f.interval_end(f.now)
    assert not f.clock_fault[0] and f.clock_shift[0] == 0
    assert not f.advance().status[0] & STATUS_CLOCK_INVALID
    h = f.history(0, f.now - 1, f.now)
    assert h.status[0] & STATUS_CLOCK_INVALID and not h.status[1] & STATUS_CLOCK_INVALID


def test_get_set_and_action_reach_any_object(world: World) -> None:
    f = world.fleet
    read = world.submit(CommandKind.GET, meter=2, target=target(3, "1.0.1.8.0.255", 2))
    emergency = Data(DataType.LONG_UNSIGNED, 2000)
    write = world.submit(
        CommandKind.SET,
        meter=2,
        target=target(71, "0.0.17.0.0.255", 5),
        value=encode_data(emergency),
    )
    act = world.submit(
        CommandKind.ACTION,
        meter=2,
        target=target(70, "0.0.96.3.10.255", 1),
        value=encode_data(Data(DataType.INTEGER, 0)),
    )
    world.settle()
    register = Data(DataType.DOUBLE_LONG_UNSIGNED, int(f.import_register[2]))
    assert world.result(read.command_id).state == encode_data(register)
    assert world.result(write.command_id).state == encode_data(emergency)
    assert world.result(act.command_id).status is CommandStatus.SUCCESS
    assert not f.connected[2]


def test_a_refused_write_fails_with_the_meters_reason(world: World) -> None:
    wrong = world.submit(
        CommandKind.SET,
        meter=1,
        target=target(3, "1.0.1.8.0.255", 2),  # energy registers are read-only
        value=encode_data(Data(DataType.DOUBLE_LONG_UNSIGNED, 0)),
    )
    world.settle()
    result = world.result(wrong.command_id)
    assert result.status is CommandStatus.FAILED
    assert "read_write_denied" in result.reason and result.state is None


@pytest.mark.parametrize(
    ("kind", "fields", "reason"),
    [
        (CommandKind.FIRMWARE, {}, "firmware update is not supported yet"),
        (CommandKind.KEY_CHANGE, {}, "key change is not supported yet"),
        (CommandKind.SET_INTERVAL, {"minutes": 10}, "not one of"),
        (CommandKind.SET_CONTRACT_CURRENT, {"amps": 0}, "outside"),
        (CommandKind.SET_CONTRACT_CURRENT, {}, "needs amps"),
        (CommandKind.GET, {}, "needs a target"),
        (CommandKind.GET, {"target": target(3, "1.0.1.8.0", 2)}, "not an OBIS code"),
        (CommandKind.SET, {"target": target(3, "1.0.1.8.0.255", 2)}, "needs a value"),
        (
            CommandKind.ACTION,
            {"target": target(70, "0.0.96.3.10.255", 1), "value": b"\x06\x00"},
            "not A-XDR",
        ),
    ],
)
def test_a_command_that_cannot_be_carried_out_fails_at_once_and_sends_nothing(
    world: World, kind: CommandKind, fields: dict[str, object], reason: str
) -> None:
    request = world.submit(kind, meter=1, **fields)
    world.settle()
    result = world.result(request.command_id)
    assert result.status is CommandStatus.FAILED
    assert reason in result.reason
    assert world.wire.sent == []
    record = world.store.get(request.command_id)
    assert record is not None and record.state is CommandState.FAILED


def test_a_meter_without_keys_fails_the_command(world: World) -> None:
    request = world.request(CommandKind.DISCONNECT)
    unknown = type(request)(
        command_id="nokeys", meter_id=999, kind=request.kind, deadline=request.deadline
    )
    world.commander.submit(unknown, world.now)
    world.settle()
    assert "no keys for meter 999" in world.result("nokeys").reason


def test_the_same_command_id_twice_is_one_command(world: World) -> None:
    request = world.request(CommandKind.DISCONNECT)
    assert world.commander.submit(request, world.now)
    world.run()
    assert not world.commander.submit(request, world.now)  # redelivered by the bus
    world.settle()
    world.commander.submit(request, world.now)  # even after it ended
    world.settle()
    assert len(world.results) == 1
    assert world.executed("action", DISCONNECT) == 1
    assert world.commander.duplicates == 2


def test_commands_for_one_meter_go_one_at_a_time_in_order(world: World) -> None:
    first = world.submit(CommandKind.DISCONNECT, meter=1)
    second = world.submit(CommandKind.RECONNECT, meter=1)
    other = world.submit(CommandKind.DISCONNECT, meter=2)
    world.commander.step(world.now)
    assert world.commander.in_flight() == 2  # meter 1's second waits
    assert len(world.wire.sent) == 2
    world.settle()
    assert [r.command_id for r in world.results] == [
        first.command_id,
        other.command_id,
        second.command_id,
    ]
    assert world.fleet.connected[1] and not world.fleet.connected[2]


# -- losses, copies, delays -----------------------------------------------------------------


def test_a_lost_answer_is_resent_and_the_meter_does_not_execute_twice(world: World) -> None:
    f = world.fleet
    down = world.submit(CommandKind.DISCONNECT, meter=1)
    world.wire.drop_answers = 1
    world.run()
    assert not f.connected[1] and world.results == []
    late_copy = world.wire.sent[0]
    world.settle()
    assert world.wire.sent[1] == late_copy  # the resend is the same bytes
    assert world.server.repeated == 1  # answered from memory
    assert world.result(down.command_id).state == OPEN
    up = world.submit(CommandKind.RECONNECT, meter=1)
    world.settle()
    assert world.result(up.command_id).status is CommandStatus.SUCCESS and f.connected[1]
    # a copy of the disconnect still on its way arrives after the reconnect: nothing happens
    world.wire.inject(f.address(1), late_copy)
    world.run()
    assert f.connected[1]
    assert world.executed("action", DISCONNECT) == 1


def test_copies_and_delays_execute_once_with_one_result(world: World) -> None:
    world.wire.copy_requests = world.wire.copy_answers = True
    world.wire.hold_requests = True
    request = world.submit(CommandKind.SET_CONTRACT_CURRENT, meter=0, amps=50)
    world.run()  # held
    world.run(2.0)  # resent, held too
    world.wire.hold_requests = False
    world.wire.release()
    world.settle()
    assert world.result(request.command_id).state == encode_data(Data(DataType.LONG_UNSIGNED, 5000))
    assert world.executed("set", LIMIT) == 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lost", ["request", "answer"])
def test_after_a_restart_the_persisted_frame_is_resent_and_executed_once(
    tmp_path: Path, backend: str, lost: str
) -> None:
    with stores(backend, tmp_path) as factory:
        world = World(factory)
        down = world.submit(CommandKind.DISCONNECT, meter=3)
        if lost == "request":
            world.wire.drop_requests = 1
        else:
            world.wire.drop_answers = 1
        world.run()
        first = list(world.wire.sent)
        assert len(first) == 1
        world.restart()  # counters lost with the process
        world.settle()
        assert world.wire.sent[1] == first[0]
        assert world.result(down.command_id).state == OPEN
        assert world.executed("action", DISCONNECT) == 1
        # new commands after the restart are not taken for replays
        up = world.submit(CommandKind.RECONNECT, meter=3)
        world.settle()
        assert world.result(up.command_id).status is CommandStatus.SUCCESS
        assert world.fleet.connected[3]


def test_a_result_ended_before_a_restart_is_handed_out_after_it(world: World) -> None:
    request = world.submit(CommandKind.DISCONNECT, meter=1)
    world.commander.step(world.now)
    world.wire.deliver(world.commander, world.now)  # done, but results() never called
    world.restart(keep_keys=True)
    world.settle()
    assert world.result(request.command_id).status is CommandStatus.SUCCESS


def test_a_command_not_sent_by_its_deadline_expires(world: World) -> None:
    f = world.fleet
    world.wire.hold_requests = True
    first = world.submit(CommandKind.DISCONNECT, meter=1)
    waiting = world.request(CommandKind.RECONNECT, meter=1, ttl=5.0)
    world.commander.submit(waiting, world.now)
    stale = world.request(CommandKind.RECONNECT, meter=2, ttl=-1.0)
    world.commander.submit(stale, world.now)
    world.run(10.0)
    expired = {r.command_id: r for r in world.results}
    assert expired[waiting.command_id].status is CommandStatus.EXPIRED
    assert "before the command could be sent" in expired[waiting.command_id].reason
    assert expired[stale.command_id].status is CommandStatus.EXPIRED
    world.wire.hold_requests = False
    world.wire.release()
    world.settle()
    assert world.result(first.command_id).status is CommandStatus.SUCCESS
    assert not f.connected[1]  # the expired reconnect never reached the meter
    assert world.executed("action", RECONNECT) == 0


def test_an_unpowered_meter_ends_the_command_expired_and_nothing_runs(world: World) -> None:
    f = world.fleet
    f.set_power(np.array([2]), False)
    request = world.submit(CommandKind.DISCONNECT, meter=2, ttl=20.0)
    world.settle(seconds=3.0)
    result = world.result(request.command_id)
    assert result.status is CommandStatus.EXPIRED
    assert "may or may not have carried" in result.reason
    assert world.executed("action", DISCONNECT) == 0 and f.connected[2]


def test_a_meter_that_goes_silent_mid_command_fails_it_and_is_not_sent_it_again(
    world: World,
) -> None:
    f = world.fleet
    request = world.submit(CommandKind.DISCONNECT, meter=2, ttl=10_000.0)
    world.wire.drop_answers = 1
    world.run()  # executed, answer lost
    f.set_power(np.array([2]), False)
    world.settle(limit=60, seconds=30.0)
    result = world.result(request.command_id)
    assert result.status is CommandStatus.FAILED
    assert "no answer after 6 attempts" in result.reason
    sent = len(world.wire.sent)
    f.set_power(np.array([2]), True)
    world.settle(limit=5, seconds=300.0)
    assert len(world.wire.sent) == sent
    assert world.executed("action", DISCONNECT) == 1 and not f.connected[2]


def test_a_silent_read_back_still_reports_the_command_carried_out(world: World) -> None:
    request = world.submit(CommandKind.DISCONNECT, meter=2)
    world.wire.answer_budget = 1  # the action is answered, then the meter is heard no more
    world.settle(limit=60, seconds=30.0)
    result = world.result(request.command_id)
    assert result.status is CommandStatus.SUCCESS and result.state is None
    assert "not read back" in result.reason
    assert world.executed("action", DISCONNECT) == 1


def test_a_time_sync_too_old_to_resend_fails(sqlite_stores: Stores) -> None:
    world = World(sqlite_stores, time_sync_max_age_s=5.0)
    world.wire.drop_requests = 10
    request = world.submit(CommandKind.TIME_SYNC, meter=1)
    world.settle(seconds=4.0)
    result = world.result(request.command_id)
    assert result.status is CommandStatus.FAILED
    assert "the time it carries is over 5 s old" in result.reason
    assert len(world.wire.sent) == 2  # sent at 0 and 4 s, not at 8 s


def test_answers_that_are_not_ours_are_not_claimed(world: World) -> None:
    commander: Commander = world.commander
    answer = ActionResponseNormal(0xC1, ActionResult.SUCCESS)
    assert not commander.on_response(2, answer)  # nothing in flight for meter 2
    world.submit(CommandKind.DISCONNECT, meter=1)
    world.wire.hold_requests = True
    world.run()
    meter_id = world.fleet.identity(1).meter_id
    counter = world.keys.by_id(meter_id).client_counter
    wrong_invoke = ActionResponseNormal(0xC0 | ((counter + 1) & 0x0F), ActionResult.SUCCESS)
    assert not commander.on_response(meter_id, wrong_invoke)
    wrong_type = GetResponseNormal(0xC0 | (counter & 0x0F), Data(DataType.NULL, None))
    assert not commander.on_response(meter_id, wrong_type)
    assert not commander.on_datagram(b"\x00\x01garbage")
    assert commander.rejected == 1
    assert not commander.on_datagram(world.wire.held[0][1])  # a request is no answer
    assert commander.address == HEADEND


def test_an_unsupported_command_stored_just_before_a_crash_still_fails(world: World) -> None:
    request = world.request(CommandKind.FIRMWARE, meter=1)
    # stored, then the process died before it could end it
    world.store.add(
        request.command_id,
        request.meter_id,
        request.kind.value,
        encode_command_message(request),
        request.deadline,
        utc(world.now),
    )
    world.restart()
    world.settle()
    assert "not supported yet" in world.result(request.command_id).reason
    assert world.wire.sent == []
