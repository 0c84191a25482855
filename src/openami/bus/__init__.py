"""The message contract between head-end and MDMS, and its backends."""

from openami.bus.contract import (
    SUBJECT_COLLECT,
    SUBJECT_READS,
    Channel,
    CollectRequest,
    ReadBatch,
    ReadSource,
    decode_message,
    encode_message,
)
from openami.bus.memory import MemoryBus, Message

__all__ = [
    "SUBJECT_COLLECT",
    "SUBJECT_READS",
    "Channel",
    "CollectRequest",
    "MemoryBus",
    "Message",
    "ReadBatch",
    "ReadSource",
    "decode_message",
    "encode_message",
]
