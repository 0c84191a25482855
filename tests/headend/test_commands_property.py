"""Random schedules of losses, copies, delays, power cuts and head-end restarts: every
command is carried out at most once and ends in exactly one final state."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from openami.bus.commands import CommandKind, CommandStatus
from openami.headend.command_store import FINAL_STATES, CommandState
from openami.headend.commands import Commander
from tests.headend.command_support import Stores, Wire, World, stores

METERS = 3
KINDS = [
    CommandKind.DISCONNECT,
    CommandKind.RECONNECT,
    CommandKind.SET_CONTRACT_CURRENT,
    CommandKind.SET_INTERVAL,
]


class TracingWire(Wire):
    """A wire that also notes which request bytes made a meter execute something."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.executions: Counter[bytes] = Counter()

    def deliver(self, commander: Commander, now: float) -> None:
        server = self.server
        assert hasattr(server, "executed")
        handle = server.handle_for

        def traced(i: int, payload: bytes, challenge: bytes = b"") -> bytes | None:
            before = len(server.executed)
            answer = handle(i, payload, challenge)
            if len(server.executed) > before:
                self.executions[payload] += 1
            return answer

        server.handle_for = traced  # type: ignore[method-assign]
        try:
            super().deliver(commander, now)
        finally:
            del server.handle_for


submits = st.tuples(
    st.just("submit"),
    st.integers(0, METERS - 1),
    st.sampled_from(KINDS),
    st.integers(20, 400),  # time to live, seconds
)
ops = st.one_of(
    st.tuples(st.just("run"), st.sampled_from([0.0, 1.0, 2.0, 5.0, 30.0])),
    st.tuples(st.just("drop_requests"), st.integers(1, 3)),
    st.tuples(st.just("drop_answers"), st.integers(1, 3)),
    st.tuples(st.just("copy_requests"), st.booleans()),
    st.tuples(st.just("copy_answers"), st.booleans()),
    st.tuples(st.just("hold"), st.booleans()),
    st.tuples(st.just("power"), st.integers(0, METERS - 1), st.booleans()),
    st.tuples(st.just("late_copy"), st.integers(0, 1_000)),
    st.tuples(st.just("restart"), st.booleans()),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.tuples(submits, st.lists(ops, max_size=8)), min_size=1, max_size=8))
def test_every_command_runs_at_most_once_and_ends_once(
    plan: list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]],
) -> None:
    schedule = [op for submit, after in plan for op in (submit, *after)]
    with tempfile.TemporaryDirectory() as tmp, stores("sqlite", Path(tmp)) as factory:
        _play(factory, schedule)


def _play(factory: Stores, schedule: list[tuple[Any, ...]]) -> None:
    world = World(factory, meters=METERS, max_attempts=4, backoff_s=1.0)
    wire = TracingWire(world.fleet, world.server)
    world.wire = wire
    world.commander.endpoint = wire
    submitted: list[str] = []
    amps = iter(range(1, 600))
    for op in schedule:
        name = op[0]
        if name == "submit":
            _, meter, kind, ttl = op
            fields: dict[str, Any] = {}
            if kind is CommandKind.SET_CONTRACT_CURRENT:
                fields["amps"] = next(amps)
            elif kind is CommandKind.SET_INTERVAL:
                fields["minutes"] = 5
            request = world.request(kind, meter, ttl=float(ttl), **fields)
            world.commander.submit(request, world.now)
            submitted.append(request.command_id)
        elif name == "run":
            world.run(op[1])
        elif name in ("drop_requests", "drop_answers", "copy_requests", "copy_answers"):
            setattr(wire, name, op[1])
        elif name == "hold":
            wire.hold_requests = op[1]
            if not op[1]:
                wire.release()
        elif name == "power":
            world.fleet.set_power(np.array([op[1]]), op[2])
        elif name == "late_copy" and wire.sent:
            payload = wire.sent[op[1] % len(wire.sent)]
            for meter in range(METERS):  # the network may bring it to its meter any time
                wire.inject(world.fleet.address(meter), payload)
        elif name == "restart":
            world.restart(keep_keys=op[1])
            world.commander.endpoint = wire
    # the weather clears: everything is delivered from here on, until every command ended
    world.fleet.set_power(np.arange(METERS), True)
    wire.copy_requests = wire.copy_answers = wire.hold_requests = False
    wire.drop_requests = wire.drop_answers = 0
    wire.release()
    for _ in range(200):
        world.run(30.0)
        if world.commander.pending() == 0:
            break
    world.results += world.commander.results()

    # exactly one result per command, matching its final state in the store
    ended = Counter(r.command_id for r in world.results)
    assert sorted(ended) == sorted(submitted)
    assert set(ended.values()) <= {1}
    frames: dict[bytes, str] = {}
    for result in world.results:
        record = world.store.get(result.command_id)
        assert record is not None and record.state in FINAL_STATES
        expected = {
            CommandState.DONE: CommandStatus.SUCCESS,
            CommandState.FAILED: CommandStatus.FAILED,
            CommandState.EXPIRED: CommandStatus.EXPIRED,
        }[record.state]
        assert result.status is expected
        for frame in (record.frame, record.readback_frame):
            if frame is not None:
                frames[frame] = record.command_id
        executions = wire.executions[record.frame] if record.frame is not None else 0
        # at most once on the meter; and a confirmed command ran exactly once
        assert executions <= 1, (record.command_id, executions)
        if result.status is CommandStatus.SUCCESS:
            assert executions == 1
        if record.frame is None:
            assert result.status is not CommandStatus.SUCCESS
    # nothing but the stored frames ever went out, and nothing executed that is not one
    assert set(wire.sent) <= set(frames)
    assert set(wire.executions) <= set(frames)
    # each meter ran at most as many commands as it was sent
    assert sum(wire.executions.values()) <= len(submitted)
    for result in world.results:
        event(f"a command ended {result.status}")
    if world.server.repeated:
        event("a meter answered a copy from memory")
