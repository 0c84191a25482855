"""Messages on the bus between head-end and MDMS (msgpack via msgspec).

Reads travel in columnar batches: one list per field, one position per read. A read's
identity is (meter_id, channel, interval_end); ``interval_end`` is Unix seconds (UTC) of the
END of the interval.
"""

from __future__ import annotations

from enum import IntEnum
from typing import cast

import msgspec

from openami.errors import BusError, DecodeError

__all__ = [
    "SHARDS",
    "SUBJECT_COLLECT",
    "SUBJECT_EVENTS",
    "SUBJECT_READS",
    "SUBJECT_READS_ALL_SHARDS",
    "Channel",
    "CollectRequest",
    "EventBatch",
    "ReadBatch",
    "ReadSource",
    "decode_message",
    "encode_message",
    "reads_subject",
    "shard_of",
]

SUBJECT_READS = "ami.reads"
SUBJECT_COLLECT = "ami.collect"
SUBJECT_EVENTS = "ami.events"

# Reads can also travel on one subject per meter shard, ``ami.reads.<shard>``, so that several
# head-ends and MDMS consumers split the fleet between them: a consumer takes one shard, some,
# or all of them with ``ami.reads.>``. The shard of a meter is part of the contract: changing
# SHARDS or shard_of moves meters between consumers. ``ami.reads.>`` does not match the
# unsharded ``ami.reads``.
SHARDS = 16
SUBJECT_READS_ALL_SHARDS = f"{SUBJECT_READS}.>"


def shard_of(meter_id: int) -> int:
    """The shard a meter's reads travel on: its id modulo SHARDS (vectorises as ``ids % 16``
    for a columnar batch, and spreads consecutive ids evenly)."""
    return meter_id % SHARDS


def reads_subject(shard: int) -> str:
    """The subject of one shard's reads: ``ami.reads.<shard>``."""
    if not 0 <= shard < SHARDS:
        raise BusError(f"shard {shard} is outside 0..{SHARDS - 1}")
    return f"{SUBJECT_READS}.{shard}"


class Channel(IntEnum):
    """What a read measures. Interval channels are energy over the interval, register channels
    the cumulative register at the interval end; all in Wh."""

    IMPORT_INTERVAL = 1  # +A over the interval (OBIS 1.0.1.29.0.255)
    EXPORT_INTERVAL = 2  # -A over the interval (OBIS 1.0.2.29.0.255)
    IMPORT_REGISTER = 3  # +A cumulative (OBIS 1.0.1.8.0.255)
    EXPORT_REGISTER = 4  # -A cumulative (OBIS 1.0.2.8.0.255)
    # co-metering: indexes of the gas and water meters wired to the electric meter (litres;
    # value_wh carries litres for these channels)
    GAS_INDEX = 5  # OBIS 7.1.3.0.0.255
    WATER_INDEX = 6  # OBIS 8.2.1.0.0.255


class ReadSource(IntEnum):
    PUSH = 1  # the meter pushed it at the interval end
    RECOLLECT = 2  # the head-end collected it again on the MDMS's request


class ReadBatch(msgspec.Struct, frozen=True, tag="reads"):
    meter_id: list[int]
    channel: list[int]
    interval_end: list[int]
    value_wh: list[int]
    source: list[int]
    status: list[int]  # the meter's AMR profile status bits for that interval


class CollectRequest(msgspec.Struct, frozen=True, tag="collect"):
    """Individual collection: read one meter's load profile between two interval ends."""

    meter_id: int
    from_end: int
    to_end: int
    request_id: str


class EventBatch(msgspec.Struct, frozen=True, tag="events"):
    """Meter events (power down/up, tamper, clock error, ...), columnar like reads. ``code``
    is the meter's event code (``openami.protocols.dlms.notification.EventCode``), ``time``
    Unix seconds (UTC) as the meter stamped it."""

    meter_id: list[int]
    time: list[int]
    code: list[int]
    value: list[int]


Message = ReadBatch | CollectRequest | EventBatch
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Message)


def encode_message(message: Message) -> bytes:
    return _ENCODER.encode(message)


def decode_message(data: bytes) -> Message:
    try:
        return cast(Message, _DECODER.decode(data))
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec lets bad UTF-8 through
        raise DecodeError(f"bus message does not decode: {exc}") from None
