"""The consuming half of the JetStream backend: pull consumers and their messages.

A subscription is a pull consumer on the bus's stream (durable if it has a name) with our own
pull requests rather than nats-py's ``fetch``, so that ``fetch(limit, timeout)`` returns what
is there at once and waits only while there is nothing. Acknowledgements go out without
waiting but ask the server to confirm; the next ``fetch`` or ``pending`` first collects those
confirmations, so a subscription never sees its own stale state (a nakked message comes back
on the very next fetch, an acked one is gone from ``pending``). One the server never confirms
is logged: the message comes back after the ack wait, which at-least-once delivery and the
idempotent ingest absorb.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import api

from openami.errors import BusError
from openami.log import get_logger

if TYPE_CHECKING:
    from openami.bus.nats import JetStreamBus

__all__ = ["JetStreamMessage", "JetStreamSubscription"]

log = get_logger("bus.nats")
_ACK = b"+ACK"
_NAK = b"-NAK"


class JetStreamMessage:
    """A delivered message; ``ack`` or ``nak`` it (from any thread)."""

    __slots__ = ("_reply", "_state", "_subscription", "data", "sequence", "subject")

    def __init__(
        self, subject: str, data: bytes, sequence: int, reply: str, sub: JetStreamSubscription
    ) -> None:
        self.subject = subject
        self.data = data
        self.sequence = sequence  # the stream's sequence number
        self._reply = reply
        self._subscription = sub
        self._state = 0  # 0 open, 1 acked, 2 given back

    def __repr__(self) -> str:
        return f"JetStreamMessage({self.subject!r}, sequence={self.sequence}, {len(self.data)} B)"

    def ack(self) -> None:
        if self._state == 1:
            raise BusError(f"message {self.sequence} on {self.subject} acknowledged twice")
        self._subscription._confirm(self._reply, _ACK)
        self._state = 1

    def nak(self) -> None:
        """Give the message back: the server redelivers it before anything newer."""
        if self._state == 0:
            self._subscription._confirm(self._reply, _NAK)
            self._state = 2


@dataclass(slots=True)
class _Pull:
    """One pull request in flight: what it asked for and what has come back."""

    token: str
    batch: int
    done: asyncio.Event = field(default_factory=asyncio.Event)
    messages: list[Msg] = field(default_factory=list)
    error: str | None = None


class JetStreamSubscription:
    """A pull consumer on the bus's stream: durable if it has a name, ephemeral if not."""

    def __init__(
        self, bus: JetStreamBus, subject: str, durable: str | None, consumer: str, inbox: str
    ) -> None:
        self.subject = subject
        self.durable = durable
        self.consumer = consumer
        self._bus = bus
        self._inbox = inbox
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{bus.stream}.{consumer}"
        self._tokens = itertools.count()
        # One pull at a time per subscription: JetStream delivers a pull's messages under
        # their own subjects, so only the order on the connection ties them to the request
        # (its closing status comes on the request's own reply subject).
        self._pulling = asyncio.Lock()
        self._active: _Pull | None = None
        # delivered for a pull we had stopped waiting for: handed out by the next fetch
        self._late: deque[Msg] = deque()
        self._confirms: list[concurrent.futures.Future[Msg]] = []
        self._inbox_sub: NatsSubscription | None = None

    def fetch(self, limit: int = 1_000, timeout: float = 0.0) -> list[JetStreamMessage]:
        """Up to ``limit`` messages in stream order (redeliveries first).

        Returns at once with whatever is waiting; only when nothing is does it wait up to
        ``timeout`` seconds for the first message (and then takes what else is there).
        """
        self._bus._check_open(f"fetch on {self.subject}")
        if limit < 1:
            return []
        self._settle()
        timeout = max(timeout, 0.0)
        budget = timeout + 3 * self._bus.request_timeout + 1.0  # three pulls
        msgs = self._bus._loop.call(self._fetch(limit, timeout), budget, f"fetch {self.subject}")
        cut = len(self._bus.prefix)
        return [
            JetStreamMessage(m.subject[cut:], m.data, m.metadata.sequence.stream, m.reply, self)
            for m in msgs
        ]

    def pending(self) -> int:
        """Messages of this consumer not yet acknowledged, waiting or in flight."""
        self._bus._check_open(f"pending on {self.subject}")
        self._settle()
        bus = self._bus
        info = bus._loop.call(
            bus._js.consumer_info(bus.stream, self.consumer),
            2 * bus.request_timeout,
            f"pending on {self.subject}",
        )
        return (info.num_pending or 0) + (info.num_ack_pending or 0)

    # -- acknowledgements ------------------------------------------------------------------

    def _confirm(self, reply: str, payload: bytes) -> None:
        self._bus._check_open(f"acknowledge on {self.subject}")
        nc, timeout = self._bus._nc, self._bus.request_timeout
        self._confirms.append(self._bus._loop.submit(nc.request(reply, payload, timeout)))

    def _settle(self) -> None:
        """Wait for the server to confirm the acks and naks sent so far."""
        confirms, self._confirms = self._confirms, []
        if not confirms:
            return
        done, late = concurrent.futures.wait(confirms, timeout=2 * self._bus.request_timeout)
        failed = len(late) + sum(1 for f in done if f.cancelled() or f.exception() is not None)
        if failed:
            log.warning(
                "JetStream did not confirm acknowledgements; those messages will come back",
                extra={"fields": {"subject": self.subject, "unconfirmed": failed}},
            )

    # -- pulling (on the loop thread) ------------------------------------------------------

    async def _fetch(self, limit: int, timeout: float) -> list[Msg]:
        async with self._pulling:
            return await self._fetch_locked(limit, timeout)

    async def _fetch_locked(self, limit: int, timeout: float) -> list[Msg]:
        out: list[Msg] = []
        while self._late and len(out) < limit:
            out.append(self._late.popleft())
        if len(out) < limit:
            out += await self._pull(limit - len(out), None)
        if not out and timeout > 0:
            out += await self._pull(1, timeout)  # returns with the first message
            if out and limit > 1:
                out += await self._pull(limit - 1, None)
        return out

    async def _pull(self, batch: int, wait: float | None) -> list[Msg]:
        """One pull request: ``wait`` None asks for what is there now; else the server holds
        the request up to ``wait`` seconds for the batch and ends it with a status."""
        pull = _Pull(str(next(self._tokens)), batch)
        request: dict[str, object] = {"batch": batch}
        if wait is None:
            request["no_wait"] = True
        else:
            request["expires"] = max(int(wait * 1e9), 1_000_000)
        self._active = pull
        try:
            bus = self._bus
            await bus._nc.publish(
                self._next, json.dumps(request).encode(), f"{self._inbox}.{pull.token}"
            )
            try:
                await asyncio.wait_for(pull.done.wait(), (wait or 0.0) + bus.request_timeout)
            except TimeoutError:
                if not pull.messages:
                    raise BusError(
                        f"fetch {self.subject}: JetStream did not answer a pull request"
                    ) from None
        finally:
            self._active = None
        if pull.error is not None and not pull.messages:
            raise BusError(f"fetch {self.subject}: JetStream answered {pull.error}")
        return pull.messages

    async def _on_message(self, msg: Msg) -> None:
        pull = self._active
        status = msg.headers.get(api.Header.STATUS) if msg.headers else None
        if status is not None:
            if pull is None or status == "100" or msg.subject.rpartition(".")[2] != pull.token:
                return  # a heartbeat, or the end of a request we stopped waiting for
            text = (msg.headers or {}).get(api.Header.DESCRIPTION, "")
            # 404 nothing there, 408 the request expired, 409 too many unacknowledged (the
            # caller must ack first): each just ends the request
            if not (status in ("404", "408") or (status == "409" and "AckPending" in text)):
                pull.error = f"{status} {text}".strip()
            pull.done.set()
        elif pull is not None and not pull.done.is_set():
            pull.messages.append(msg)
            if len(pull.messages) >= pull.batch:
                pull.done.set()
        else:
            self._late.append(msg)

    async def _close(self) -> None:
        if self._inbox_sub is not None:
            await self._inbox_sub.unsubscribe()
        if self.durable is None:  # an unnamed consumer has no one to come back to it
            with contextlib.suppress(nats.js.errors.NotFoundError):  # gone with its stream
                await self._bus._js.delete_consumer(self._bus.stream, self.consumer)
