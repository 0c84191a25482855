"""Meter events from the bus into the event store, and from there into the alarm book.

As with reads, a batch is acknowledged only once the store has it on disk; a batch
delivered again is absorbed by the store's identity check, and only the events written
for the first time reach the alarms, so a redelivery cannot count a tamper twice.
"""

from __future__ import annotations

from collections import Counter

import polars as pl

from openami.bus.base import BusSubscription
from openami.bus.contract import EventBatch, decode_message
from openami.errors import DecodeError
from openami.log import get_logger
from openami.mdm.alarms import Alarm, AlarmBook
from openami.store.events import EventStore

__all__ = ["EventIngest"]

log = get_logger("mdm.events")


class EventIngest:
    def __init__(self, store: EventStore, subscription: BusSubscription, alarms: AlarmBook) -> None:
        self.store = store
        self.subscription = subscription
        self.alarms = alarms
        self.stored = 0
        self.duplicates = 0
        self.by_code = Counter[int]()  # events stored, per event code
        self.dead_letters: list[bytes] = []

    def poll(self, limit: int = 100, timeout: float = 0.0) -> list[Alarm]:
        """Store what waits on the bus; return the alarms it opened, changed or closed."""
        messages = self.subscription.fetch(limit, timeout)
        batches: list[EventBatch] = []
        for message in messages:
            try:
                batch = decode_message(message.data)
                if isinstance(batch, EventBatch):
                    lengths = {len(getattr(batch, f)) for f in batch.__struct_fields__}
                    if len(lengths) != 1:
                        raise ValueError("event batch columns differ in length")
                    batches.append(batch)
            except (DecodeError, ValueError) as exc:
                self.dead_letters.append(message.data)
                log.warning("dead-lettered a bus message", extra={"fields": {"reason": str(exc)}})
        changed = self.ingest(batches) if batches else []
        for message in messages:
            message.ack()
        return changed

    def ingest(self, batches: list[EventBatch]) -> list[Alarm]:
        columns = {
            name: [v for b in batches for v in getattr(b, name)]
            for name in ("meter_id", "time", "code", "value")
        }
        result = self.store.append(columns)
        self.stored += result.written
        self.duplicates += result.duplicates
        if not result.written:
            return []
        kept = list(result.kept)
        self.by_code.update(columns["code"][i] for i in kept)
        events = pl.DataFrame(
            {name: [values[i] for i in kept] for name, values in columns.items()},
            schema={"meter_id": pl.Int64, "time": pl.Int64, "code": pl.Int64, "value": pl.Int64},
        )
        return self.alarms.observe(events)
