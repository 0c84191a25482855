"""The head-end on a real UDP socket (IEC 62056-4-7 wrapper, port 4059).

One socket takes the pushes of every meter, many datagrams per system call (``recvmmsg``);
each is verified and decoded by the same ``Ingest`` as in memory, and reads go to the bus in
batches. Collection requests leave from the same socket to each meter's own address, so a
meter's answer comes back to it. ``poll`` is one turn of the loop; the command line
(``openami headend run``) calls it until told to stop.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from openami.bus.contract import (
    SUBJECT_COLLECT,
    SUBJECT_EVENTS,
    SUBJECT_READS,
    CollectRequest,
    decode_message,
    encode_message,
)
from openami.bus.memory import MemoryBus
from openami.headend.collection import Collector
from openami.headend.ingest import Ingest
from openami.headend.keystore import KeyStore
from openami.headend.push_batch import PushBatchIngest
from openami.transport.memory import Address
from openami.transport.udp_batch import BatchUdpSocket, ip_to_int

__all__ = ["HeadEndStats", "UdpHeadEnd", "UdpSender"]

FLUSH_READS = 40_000  # reads per bus message at most (and at least every FLUSH_SECONDS)
FLUSH_SECONDS = 0.5
MAX_ATTEMPTS = 8  # sends of one collection request before it is given up (cell edges)
RETRY_SECONDS = 0.25  # how often unanswered requests are looked at
BACKOFF_S = 1.0  # wait for an answer before sending again, doubling each time...
MAX_BACKOFF_S = 4.0  # ...up to this (a meter at a cell edge may need all 8 tries)


class UdpSender:
    """``Collector``'s way out over a real socket."""

    def __init__(self, sock: BatchUdpSocket) -> None:
        self.sock = sock

    def sendto(self, payload: bytes, source: Address, destination: Address) -> None:
        del source  # the socket's own address
        self.sock.send_batch([payload], ip_to_int(destination[0]), destination[1])


@dataclass
class HeadEndStats:
    """What an operator watches: counts since start, and the rate over the last turn."""

    datagrams: int = 0
    reads_published: int = 0
    events_published: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    pending_collections: int = 0
    collections_completed: int = 0
    collections_failed: int = 0
    first_interval_end: int | None = None  # of the interval reads seen
    last_interval_end: int | None = None


class UdpHeadEnd:
    def __init__(self, keys: KeyStore, sock: BatchUdpSocket, bus: MemoryBus) -> None:
        self.keys = keys
        self.sock = sock
        self.bus = bus
        self.address = sock.address
        self.ingest = Ingest(keys)
        self.pushes = PushBatchIngest(keys, self.ingest)
        self.collector = Collector(
            keys, UdpSender(sock), self.address, backoff_s=BACKOFF_S, max_backoff_s=MAX_BACKOFF_S
        )
        self.ingest.on_response = self.collector.on_response
        self._collect = bus.subscribe(SUBJECT_COLLECT)
        self.stats = HeadEndStats()
        self._last_flush = time.monotonic()
        self._last_retry = time.monotonic()

    def poll(self, timeout: float = 0.1, max_batches: int = 64) -> int:
        """Take what has arrived (waiting up to ``timeout`` for the first datagram), ingest
        it, publish, and move collection on. Returns the datagrams taken."""
        taken = 0
        wait: float = timeout
        for _ in range(max_batches):
            batch = self.sock.recv_batch(wait)
            wait = 0.0
            if not len(batch):
                break
            taken += len(batch)
            self.pushes.receive(batch.payloads, batch.source_ip, batch.source_port, self.address)
            if len(self.pushes) >= FLUSH_READS:
                self.flush()
        self.stats.datagrams += taken
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self.flush()
        self._take_requests()
        if now - self._last_retry >= RETRY_SECONDS:
            self._last_retry = now
            self.collector.retry_pending(MAX_ATTEMPTS)
        self.collector.dispatch()
        s = self.stats
        s.accepted, s.rejected = self.ingest.accepted, self.ingest.rejected
        s.pending_collections = self.collector.pending()
        s.collections_completed = self.collector.completed
        s.collections_failed = self.collector.failed
        return taken

    def flush(self) -> None:
        """Publish what was read since the last flush."""
        self._last_flush = time.monotonic()
        batch = self.pushes.take()
        if batch is not None:
            ends = batch.interval_end
            lo, hi = min(ends), max(ends)
            s = self.stats
            if s.first_interval_end is None or lo < s.first_interval_end:
                s.first_interval_end = lo
            if s.last_interval_end is None or hi > s.last_interval_end:
                s.last_interval_end = hi
            self.bus.publish(SUBJECT_READS, encode_message(batch))
            s.reads_published += len(batch.meter_id)
        if len(self.ingest.events):
            events = self.ingest.events.take()
            self.bus.publish(SUBJECT_EVENTS, encode_message(events))
            self.stats.events_published += len(events.meter_id)

    def _take_requests(self) -> None:
        for message in self._collect.fetch(10_000):
            request = decode_message(message.data)
            if isinstance(request, CollectRequest):
                self.collector.submit(request)
            message.ack()
