"""Idempotent ingest of read batches from the bus into the interval lake.

A batch is acknowledged on the bus only after the lake has it on disk; a batch delivered
twice (after a crash between store and ack) is absorbed by the lake's identity check.
"""

from __future__ import annotations

from collections import Counter

from openami.bus.contract import ReadBatch, ReadSource, decode_message
from openami.bus.memory import Subscription
from openami.errors import DecodeError
from openami.log import get_logger
from openami.store.lake import IntervalLake

__all__ = ["ReadIngest"]

log = get_logger("mdm.ingest")
_SOURCES = {int(s) for s in ReadSource}


class ReadIngest:
    def __init__(self, lake: IntervalLake, subscription: Subscription) -> None:
        self.lake = lake
        self.subscription = subscription
        self.stored = Counter[ReadSource]()
        self.duplicates = 0
        self.duplicates_by_channel = Counter[int]()
        self.stored_by_channel = Counter[int]()
        self.batches = 0
        self.dead_letters: list[bytes] = []

    def poll(self, limit: int = 100) -> int:
        """Ingest what waits on the bus; return the number of reads newly stored.

        A message that does not decode, or holds reads no store can take, is set aside in
        ``dead_letters`` (kept, counted, logged) and acknowledged, so that it cannot block
        the messages behind it. A storage failure leaves the message unacknowledged.
        """
        total = 0
        for message in self.subscription.fetch(limit):
            try:
                batch = decode_message(message.data)
                if isinstance(batch, ReadBatch):
                    total += self.ingest(batch)
            except (DecodeError, ValueError) as exc:
                self.dead_letters.append(message.data)
                log.warning("dead-lettered a bus message", extra={"fields": {"reason": str(exc)}})
            message.ack()
        return total

    def ingest(self, batch: ReadBatch) -> int:
        sources = set(batch.source)
        if not sources <= _SOURCES:
            raise ValueError(f"unknown read sources {sorted(sources - _SOURCES)}")
        columns = {f: getattr(batch, f) for f in batch.__struct_fields__}
        result = self.lake.append(columns)
        self.batches += 1
        self.duplicates += result.duplicates
        self.duplicates_by_channel.update(result.duplicates_by_channel)
        self.stored_by_channel.update(result.written_by_channel)
        for source, count in result.written_by_source.items():
            self.stored[ReadSource(source)] += count
        return result.written
