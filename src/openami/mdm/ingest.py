"""Idempotent ingest of read batches from the bus into the interval lake.

A batch is acknowledged on the bus only after the lake has it on disk; a batch delivered
twice (after a crash between store and ack) is absorbed by the lake's identity check.
"""

from __future__ import annotations

from collections import Counter

from openami.bus.contract import ReadBatch, ReadSource, decode_message
from openami.bus.memory import Subscription
from openami.store.lake import IntervalLake

__all__ = ["ReadIngest"]


class ReadIngest:
    def __init__(self, lake: IntervalLake, subscription: Subscription) -> None:
        self.lake = lake
        self.subscription = subscription
        self.stored = Counter[ReadSource]()
        self.duplicates = 0
        self.batches = 0

    def poll(self, limit: int = 100) -> int:
        """Ingest what waits on the bus; return the number of reads newly stored."""
        total = 0
        for message in self.subscription.fetch(limit):
            batch = decode_message(message.data)
            if isinstance(batch, ReadBatch):
                total += self.ingest(batch)
            message.ack()
        return total

    def ingest(self, batch: ReadBatch) -> int:
        columns = {f: getattr(batch, f) for f in batch.__struct_fields__}
        result = self.lake.append(columns)
        self.batches += 1
        self.duplicates += result.duplicates
        for source, count in result.written_by_source.items():
            self.stored[ReadSource(source)] += count
        return result.written
