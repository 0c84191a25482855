from __future__ import annotations

import contextlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.bus.commands import (
    SUBJECT_COMMAND_RESULTS,
    SUBJECT_COMMANDS,
    CommandKind,
    CommandRequest,
    CommandResult,
    CommandStatus,
    Target,
    decode_command_message,
    encode_command_message,
)
from openami.errors import DecodeError

targets = st.builds(
    Target,
    class_id=st.integers(0, 0xFFFF),
    obis=st.text(max_size=64),
    id=st.integers(-128, 255),
)
requests = st.builds(
    CommandRequest,
    command_id=st.text(min_size=1, max_size=128),
    meter_id=st.integers(0, 2**63 - 1),
    kind=st.sampled_from(CommandKind),
    deadline=st.integers(-(2**63), 2**63 - 1),
    amps=st.none() | st.integers(-(2**31), 2**31),
    minutes=st.none() | st.integers(-(2**31), 2**31),
    target=st.none() | targets,
    value=st.none() | st.binary(max_size=64),
)
results = st.builds(
    CommandResult,
    command_id=st.text(max_size=128),
    meter_id=st.integers(0, 2**63 - 1),
    status=st.sampled_from(CommandStatus),
    reason=st.text(),
    state=st.none() | st.binary(max_size=64),
    completed_at=st.floats(allow_nan=False),
)


def test_subjects() -> None:
    assert (SUBJECT_COMMANDS, SUBJECT_COMMAND_RESULTS) == ("ami.commands", "ami.command_results")


def test_a_disconnect_round_trips() -> None:
    request = CommandRequest(
        command_id="dc-1", meter_id=12, kind=CommandKind.DISCONNECT, deadline=1_785_000_000
    )
    decoded = decode_command_message(encode_command_message(request))
    assert decoded == request
    assert isinstance(decoded, CommandRequest) and decoded.kind is CommandKind.DISCONNECT


def test_a_set_with_target_and_value_round_trips() -> None:
    request = CommandRequest(
        command_id="set-1",
        meter_id=3,
        kind=CommandKind.SET,
        deadline=1,
        target=Target(class_id=71, obis="0.0.17.0.0.255", id=4),
        value=b"\x12\x0f\xa0",
    )
    assert decode_command_message(encode_command_message(request)) == request


@given(requests)
def test_any_request_round_trips(request: CommandRequest) -> None:
    assert decode_command_message(encode_command_message(request)) == request


@given(results)
def test_any_result_round_trips(result: CommandResult) -> None:
    assert decode_command_message(encode_command_message(result)) == result


@given(st.binary(max_size=256))
def test_arbitrary_bytes_only_ever_raise_decode_error(data: bytes) -> None:
    try:
        message = decode_command_message(data)
    except DecodeError:
        return
    assert isinstance(message, CommandRequest | CommandResult)


@given(requests, st.data())
def test_mangled_requests_only_ever_raise_decode_error(
    request: CommandRequest, data: st.DataObject
) -> None:
    raw = bytearray(encode_command_message(request))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(DecodeError):
        decode_command_message(bytes(raw[:cut]))


@pytest.mark.parametrize(
    "message",
    [
        {"type": "command", "command_id": "", "meter_id": 1, "kind": "get", "deadline": 0},
        {"type": "command", "command_id": "a", "meter_id": -1, "kind": "get", "deadline": 0},
        {"type": "command", "command_id": "a", "meter_id": 1, "kind": "reboot", "deadline": 0},
        {"type": "command", "command_id": "a", "meter_id": 1, "kind": "get"},
        {"type": "command", "command_id": "a", "meter_id": 1, "kind": "get", "deadline": 0, "x": 1},
        {"type": "command_result", "command_id": "a"},
        {"type": "reads", "meter_id": []},
        [1, 2, 3],
    ],
)
def test_invalid_messages_raise_decode_error(message: object) -> None:
    with pytest.raises(DecodeError, match="command message does not decode"):
        decode_command_message(msgspec.msgpack.encode(message))
