"""The head-end as one object: its network endpoint, key store, ingest, collector and bus.

The in-memory shape that ``openami demo`` runs: the same batch ingest (``PushBatchIngest``)
and collection as the head-end on UDP, over the in-memory network.
"""

from __future__ import annotations

import numpy as np

from openami.bus.contract import (
    SUBJECT_COLLECT,
    SUBJECT_EVENTS,
    SUBJECT_READS,
    Channel,
    CollectRequest,
    decode_message,
    encode_message,
)
from openami.bus.memory import MemoryBus
from openami.headend.collection import Collector
from openami.headend.deadlines import DeadlineStats
from openami.headend.ingest import Ingest
from openami.headend.keystore import KeyStore
from openami.headend.push_batch import PushBatchIngest
from openami.transport.memory import Address, MemoryEndpoint
from openami.transport.udp_batch import ip_to_int

__all__ = ["HeadEnd"]

MAX_ATTEMPTS = 3  # sends of one collection request before the head-end gives up on it
BATCH = 1024  # datagrams per batch, as one recvmmsg call gives them on UDP


class HeadEnd:
    def __init__(
        self,
        keys: KeyStore,
        endpoint: MemoryEndpoint,
        address: Address,
        bus: MemoryBus,
        step_s: int = 1800,
    ) -> None:
        self.keys = keys
        self.endpoint = endpoint
        self.bus = bus
        self.ingest = Ingest(keys)
        self.pushes = PushBatchIngest(keys, self.ingest)
        self.deadlines = DeadlineStats(step_s, slots=4 * 96)
        self.address = address
        self.collector = Collector(keys, endpoint, address)
        self.ingest.on_response = self.collector.on_response
        self._collect = bus.subscribe(SUBJECT_COLLECT)
        self.published_reads = 0
        self.published_events = 0

    def poll_network(self) -> int:
        datagrams = self.endpoint.receive_all()
        for lo in range(0, len(datagrams), BATCH):
            part = datagrams[lo : lo + BATCH]
            self.pushes.receive(
                [d.payload for d in part],
                np.array([ip_to_int(d.source[0]) for d in part], dtype=np.uint32),
                np.array([d.source[1] for d in part], dtype=np.uint16),
                self.address,
            )
        return len(datagrams)

    def flush(self, now_s: float | None = None) -> None:
        """Publish what was read since the last flush as one batch; ``now_s`` (the meters'
        clock) counts the reads against their interval's deadlines."""
        batch = self.pushes.take()
        if batch is not None and now_s is not None:
            channel = np.asarray(batch.channel, dtype=np.int64)
            ends = np.asarray(batch.interval_end, dtype=np.int64)
            self.deadlines.record(ends[channel == Channel.IMPORT_INTERVAL], now_s)
        if batch is not None:
            self.bus.publish(SUBJECT_READS, encode_message(batch))
            self.published_reads += len(batch.meter_id)
        if len(self.ingest.events):
            events = self.ingest.events.take()
            self.bus.publish(SUBJECT_EVENTS, encode_message(events))
            self.published_events += len(events.meter_id)

    def poll_bus(self) -> int:
        """Take collection requests from the MDMS and queue them for sending."""
        taken = 0
        for message in self._collect.fetch(10_000):
            request = decode_message(message.data)
            if isinstance(request, CollectRequest):
                self.collector.submit(request)
                taken += 1
            message.ack()
        return taken

    def collection_tick(self) -> None:
        """Send what is queued, and again what went unanswered since the last tick."""
        self.collector.retry_pending(MAX_ATTEMPTS)
        self.collector.dispatch()
