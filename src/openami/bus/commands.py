"""Commands from the MDMS to meters, and their results, as bus messages (msgpack via msgspec).

A command names itself (``command_id``): the head-end keeps every id it was given, so a
command published twice (a retried publish, a redelivery after a crash) is one command, not
two. Each command ends in exactly one ``CommandResult``: ``success``, ``failed`` (the meter
refused it, never answered, or the command is not supported) or ``expired`` (its deadline
passed first). The reason is text for people; ``state`` is what the meter reported
afterwards (A-XDR), so the MDMS records the outcome, not only the intention.

Times are Unix seconds (UTC). These messages live beside ``contract`` (reads, collection,
events) with their own codec, so that either side can evolve without the other.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, cast

import msgspec

from openami.errors import DecodeError

__all__ = [
    "SUBJECT_COMMANDS",
    "SUBJECT_COMMAND_RESULTS",
    "CommandKind",
    "CommandMessage",
    "CommandRequest",
    "CommandResult",
    "CommandStatus",
    "Target",
    "decode_command_message",
    "encode_command_message",
]

SUBJECT_COMMANDS = "ami.commands"
SUBJECT_COMMAND_RESULTS = "ami.command_results"


class CommandKind(StrEnum):
    DISCONNECT = "disconnect"  # open the switch (disconnect control, method 1)
    RECONNECT = "reconnect"  # close it again (method 2)
    SET_CONTRACT_CURRENT = "set_contract_current"  # limiter threshold, ``amps``
    SET_INTERVAL = "set_interval"  # load profile capture period and push setup, ``minutes``
    TIME_SYNC = "time_sync"  # set the meter's clock to the head-end's time
    GET = "get"  # read any attribute (``target``)
    SET = "set"  # write any attribute (``target``, ``value``)
    ACTION = "action"  # invoke any method (``target``, optional ``value``)
    FIRMWARE = "firmware"  # accepted and recorded; not supported yet
    KEY_CHANGE = "key_change"  # accepted and recorded; not supported yet


class CommandStatus(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    EXPIRED = "expired"


class Target(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A COSEM attribute (get, set) or method (action): class, logical name as OBIS text
    ("0.0.96.3.10.255"), and the attribute or method id."""

    class_id: Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]
    obis: Annotated[str, msgspec.Meta(max_length=64)]
    id: Annotated[int, msgspec.Meta(ge=-128, le=255)]


class CommandRequest(msgspec.Struct, frozen=True, tag="command", forbid_unknown_fields=True):
    """One command for one meter, to be carried out at most once before ``deadline``.

    ``amps`` is for set_contract_current, ``minutes`` (60, 30, 15 or 5) for set_interval,
    ``target`` for get/set/action and ``value`` (A-XDR encoded ``Data``) for set and action.
    Fields a kind does not use are ignored; a missing or invalid one fails the command with
    a reason rather than being guessed.
    """

    command_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    meter_id: Annotated[int, msgspec.Meta(ge=0)]
    kind: CommandKind
    deadline: int  # Unix seconds
    amps: int | None = None
    minutes: int | None = None
    target: Target | None = None
    value: bytes | None = None


class CommandResult(msgspec.Struct, frozen=True, tag="command_result", forbid_unknown_fields=True):
    """How a command ended; exactly one per command."""

    command_id: str
    meter_id: int
    status: CommandStatus
    reason: str
    state: bytes | None  # the meter's relevant state afterwards (A-XDR), when it was read
    completed_at: float  # Unix seconds


CommandMessage = CommandRequest | CommandResult
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(CommandMessage)


def encode_command_message(message: CommandMessage) -> bytes:
    return _ENCODER.encode(message)


def decode_command_message(data: bytes) -> CommandMessage:
    """Decode a command or a result; anything else raises ``DecodeError``."""
    try:
        return cast(CommandMessage, _DECODER.decode(data))
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec lets bad UTF-8 through
        raise DecodeError(f"command message does not decode: {exc}") from None
