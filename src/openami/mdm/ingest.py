"""Idempotent ingest of read batches from the bus into the interval lake.

A batch is acknowledged on the bus only after the lake has it on disk; a batch delivered
twice (after a crash between store and ack) is absorbed by the lake's identity check.
"""

from __future__ import annotations

from collections import Counter

from openami.bus.base import BusSubscription
from openami.bus.contract import ReadBatch, ReadSource, decode_message
from openami.errors import DecodeError
from openami.log import get_logger
from openami.store.lake import IntervalLake

__all__ = ["ReadIngest"]

log = get_logger("mdm.ingest")
_SOURCES = {int(s) for s in ReadSource}


class ReadIngest:
    def __init__(self, lake: IntervalLake, subscription: BusSubscription) -> None:
        self.lake = lake
        self.subscription = subscription
        self.stored = Counter[ReadSource]()
        self.duplicates = 0
        self.conflicts = 0  # stored as a new version: another value for a stored read
        self.duplicates_by_channel = Counter[int]()
        self.stored_by_channel = Counter[int]()
        self.batches = 0
        self.dead_letters: list[bytes] = []
        self.first_end: int | None = None  # interval ends of what this consumer stored
        self.last_end: int | None = None

    def poll(self, limit: int = 100, timeout: float = 0.0) -> int:
        """Ingest what waits on the bus; return the number of reads newly stored.

        Everything fetched goes to the lake in one append (one file per day touched, not one
        per message) and is acknowledged after it. A message that does not decode, or holds
        reads no store can take, is set aside in ``dead_letters`` (kept, counted, logged)
        and acknowledged, so that it cannot block the messages behind it. A storage failure
        leaves the messages unacknowledged: they come again.
        """
        messages = self.subscription.fetch(limit, timeout)
        if not messages:
            return 0
        batches: list[ReadBatch] = []
        for message in messages:
            try:
                batch = decode_message(message.data)
                if isinstance(batch, ReadBatch):
                    self._check(batch)
                    batches.append(batch)
            except (DecodeError, ValueError) as exc:
                self.dead_letters.append(message.data)
                log.warning("dead-lettered a bus message", extra={"fields": {"reason": str(exc)}})
        total = self._store(_joined(batches), len(batches)) if batches else 0
        for message in messages:
            message.ack()
        return total

    @staticmethod
    def _check(batch: ReadBatch) -> None:
        sources = set(batch.source)
        if not sources <= _SOURCES:
            raise ValueError(f"unknown read sources {sorted(sources - _SOURCES)}")
        lengths = {len(getattr(batch, f)) for f in batch.__struct_fields__}
        if len(lengths) != 1:
            raise ValueError("read batch columns differ in length")

    def ingest(self, batch: ReadBatch) -> int:
        self._check(batch)
        return self._store(batch, 1)

    def _store(self, batch: ReadBatch, messages: int) -> int:
        columns = {f: getattr(batch, f) for f in batch.__struct_fields__}
        result = self.lake.append(columns)
        self.batches += messages
        if result.written:
            lo, hi = min(batch.interval_end), max(batch.interval_end)
            self.first_end = lo if self.first_end is None else min(self.first_end, lo)
            self.last_end = hi if self.last_end is None else max(self.last_end, hi)
        self.duplicates += result.duplicates
        self.conflicts += result.conflicts
        self.duplicates_by_channel.update(result.duplicates_by_channel)
        self.stored_by_channel.update(result.written_by_channel)
        for source, count in result.written_by_source.items():
            self.stored[ReadSource(source)] += count
        return result.written


def _joined(batches: list[ReadBatch]) -> ReadBatch:
    if len(batches) == 1:
        return batches[0]
    fields = ReadBatch.__struct_fields__
    return ReadBatch(**{f: [v for b in batches for v in getattr(b, f)] for f in fields})
