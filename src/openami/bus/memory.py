"""In-memory bus: the single-process default backend.

Semantics match what the durable backend gives: at-least-once delivery per subscription,
explicit acknowledgement, and redelivery of what was fetched but never acknowledged.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from openami.errors import BusError

__all__ = ["MemoryBus", "Message", "Subscription"]


@dataclass(slots=True)
class Message:
    subject: str
    data: bytes
    sequence: int
    _subscription: Subscription = field(repr=False)
    acked: bool = False

    def ack(self) -> None:
        if self.acked:
            raise BusError(f"message {self.sequence} on {self.subject} acknowledged twice")
        self.acked = True
        self._subscription._in_flight.pop(self.sequence, None)

    def nak(self) -> None:
        """Give the message back for redelivery."""
        if self._subscription._in_flight.pop(self.sequence, None) is not None:
            self._subscription._queue.appendleft(self)


class Subscription:
    def __init__(self, subject: str) -> None:
        self.subject = subject
        self._queue: deque[Message] = deque()
        self._in_flight: dict[int, Message] = {}

    def fetch(self, limit: int = 1_000) -> list[Message]:
        """Take up to ``limit`` messages; each must be acked or nakked."""
        out: list[Message] = []
        while self._queue and len(out) < limit:
            message = self._queue.popleft()
            if message.acked:  # acknowledged late, after it was put back: done with
                continue
            self._in_flight[message.sequence] = message
            out.append(message)
        return out

    def redeliver_unacked(self) -> int:
        """Put every fetched-but-unacknowledged message back (as after a consumer crash)."""
        stale = sorted(self._in_flight.values(), key=lambda m: m.sequence, reverse=True)
        self._in_flight.clear()
        for message in stale:
            self._queue.appendleft(message)
        return len(stale)

    def pending(self) -> int:
        return len(self._queue) + len(self._in_flight)


class MemoryBus:
    def __init__(self) -> None:
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._sequence = 0

    def subscribe(self, subject: str) -> Subscription:
        subscription = Subscription(subject)
        self._subscriptions.setdefault(subject, []).append(subscription)
        return subscription

    def publish(self, subject: str, data: bytes) -> int:
        """Hand ``data`` to every subscription of ``subject``; return its sequence number."""
        self._sequence += 1
        for subscription in self._subscriptions.get(subject, []):
            subscription._queue.append(Message(subject, data, self._sequence, subscription))
        return self._sequence
