"""The message contract between head-end and MDMS, and its backends.

``Bus`` is what both backends promise; ``bus_from_url`` picks one. The JetStream backend
lives in ``openami.bus.nats`` and is imported only when used.
"""

from openami.bus.base import Bus, BusMessage, BusSubscription
from openami.bus.contract import (
    SHARDS,
    SUBJECT_COLLECT,
    SUBJECT_EVENTS,
    SUBJECT_READS,
    SUBJECT_READS_ALL_SHARDS,
    Channel,
    CollectRequest,
    EventBatch,
    ReadBatch,
    ReadSource,
    decode_message,
    encode_message,
    reads_subject,
    shard_of,
)
from openami.bus.factory import bus_from_url
from openami.bus.memory import MemoryBus, Message

__all__ = [
    "SHARDS",
    "SUBJECT_COLLECT",
    "SUBJECT_EVENTS",
    "SUBJECT_READS",
    "SUBJECT_READS_ALL_SHARDS",
    "Bus",
    "BusMessage",
    "BusSubscription",
    "Channel",
    "CollectRequest",
    "EventBatch",
    "MemoryBus",
    "Message",
    "ReadBatch",
    "ReadSource",
    "bus_from_url",
    "decode_message",
    "encode_message",
    "reads_subject",
    "shard_of",
]
