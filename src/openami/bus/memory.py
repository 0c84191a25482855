"""In-memory bus: the single-process default backend.

Semantics match what the durable backend gives: at-least-once delivery per subscription,
explicit acknowledgement, and redelivery of what was fetched but never acknowledged.

What it cannot give is survival: nothing outlives the process, and ``close`` drops it all.
A durable name therefore only means something within one bus object: subscribing again with
the name returns the same subscription (so several consumers with one name share its
messages) and puts back at once what it had fetched without acknowledging, which is what a
restarted consumer sees on JetStream once the ack wait has passed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from openami.bus.base import check_durable, check_pattern, check_subject, subject_matches
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
    def __init__(self, subject: str, durable: str | None = None) -> None:
        self.subject = subject
        self.durable = durable
        self.closed = False
        self._queue: deque[Message] = deque()
        self._in_flight: dict[int, Message] = {}

    def fetch(self, limit: int = 1_000, timeout: float = 0.0) -> list[Message]:
        """Take up to ``limit`` messages; each must be acked or nakked.

        ``timeout`` is accepted for the ``BusSubscription`` protocol and ignored: in one
        thread nothing can be published while we wait, so waiting could only waste time.
        """
        if self.closed:
            raise BusError(f"fetch on {self.subject}: the bus is closed")
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
        self._subscriptions: list[Subscription] = []
        self._durables: dict[str, Subscription] = {}
        # publish subject -> the subscriptions it reaches; rebuilt lazily after a subscribe so
        # that publishing stays one dict look-up however many wildcard patterns there are
        self._routes: dict[str, list[Subscription]] = {}
        self._sequence = 0
        self._closed = False

    def subscribe(self, subject: str, durable: str | None = None) -> Subscription:
        """Messages published on ``subject`` (NATS wildcards allowed) from now on.

        With ``durable``, a name seen before returns that same subscription, its fetched but
        unacknowledged messages put back first; a name seen with another subject is refused.
        """
        self._check_open("subscribe")
        check_pattern(subject)
        if durable is not None:
            check_durable(durable)
            known = self._durables.get(durable)
            if known is not None:
                if known.subject != subject:
                    raise BusError(
                        f"durable {durable!r} follows {known.subject!r}, not {subject!r}"
                    )
                known.redeliver_unacked()
                return known
        subscription = Subscription(subject, durable)
        self._subscriptions.append(subscription)
        if durable is not None:
            self._durables[durable] = subscription
        self._routes.clear()
        return subscription

    def publish(self, subject: str, data: bytes) -> int:
        """Hand ``data`` to every subscription matching ``subject``; return its sequence."""
        self._check_open("publish")
        targets = self._routes.get(subject)
        if targets is None:
            check_subject(subject)
            targets = [s for s in self._subscriptions if subject_matches(s.subject, subject)]
            self._routes[subject] = targets
        self._sequence += 1
        for subscription in targets:
            subscription._queue.append(Message(subject, data, self._sequence, subscription))
        return self._sequence

    def flush(self, timeout: float = 10.0) -> None:
        """Everything published is already where it goes; only a closed bus refuses."""
        self._check_open("flush")

    def close(self) -> None:
        """Drop every subscription and its messages; the bus refuses work afterwards."""
        self._closed = True
        for subscription in self._subscriptions:
            subscription.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise BusError(f"{action} on a closed bus")
