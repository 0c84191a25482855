"""NATS JetStream backend: the durable bus for production and for several processes.

nats-py is asyncio and the rest of openami is synchronous, so the client lives on a
``LoopThread`` (``openami.bus.loop``) and every call crosses over to it. This module holds
the connection, the stream and publishing; ``openami.bus.nats_consumer`` the consuming side.

Publishing is pipelined, never one round trip per message (a synchronous JetStream publish
per message tops out near 3,000/s here): ``publish`` appends to an outbox and returns, the
loop sends the outbox as asynchronous JetStream publishes, and ``flush`` waits for their
acknowledgements. A JetStream acknowledgement means the message is in the stream; the
server's own fsync policy decides when it is on the platters. Outbox plus unacknowledged
publishes are capped at ``max_pending`` messages: past that ``publish`` blocks (back-pressure)
and raises ``BusError`` if JetStream stays that far behind for ``request_timeout`` seconds.

Consuming: a pull consumer per subscription, durable if named, explicit acks, ``ack_wait``
before an unacknowledged message is delivered again.

``prefix`` puts every subject of this bus under a namespace on the wire (``<prefix>ami.>``),
so that independent systems or test runs can share one server without their streams'
subjects overlapping; callers never see it.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import deque
from types import TracebackType
from typing import Any, Self

import nats
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext, api

from openami.bus.base import check_durable, check_pattern, check_subject, subject_matches
from openami.bus.loop import WIRE_ERRORS, LoopThread, describe_error
from openami.bus.nats_consumer import JetStreamMessage, JetStreamSubscription
from openami.errors import BusError, ConfigError
from openami.log import get_logger

__all__ = ["DEFAULT_URL", "JetStreamBus", "JetStreamMessage", "JetStreamSubscription"]

log = get_logger("bus.nats")

DEFAULT_URL = "nats://127.0.0.1:4222"
STREAM_SUBJECTS = "ami.>"  # what the stream captures, under the bus's prefix
EPHEMERAL_IDLE_S = 3_600.0  # an unnamed consumer outlives a crashed owner by this long
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PREFIX = re.compile(r"([A-Za-z0-9_-]+\.)*")
_SUBJECT_CACHE = 4_096


class JetStreamBus:
    """The bus on a NATS JetStream stream (created if missing: ``<prefix>ami.>``, file
    storage, kept ``max_age`` seconds so that an MDMS can be down for days and catch up).

    Thread-safe for publish, fetch and ack; ``close`` once the other threads are done.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        stream: str = "AMI",
        *,
        prefix: str = "",
        ack_wait: float = 30.0,
        max_pending: int = 4_096,
        max_ack_pending: int = 20_000,
        max_age: float = 7 * 86_400.0,
        request_timeout: float = 5.0,
        connect_timeout: int = 2,
    ) -> None:
        if not _NAME.fullmatch(stream):
            raise ConfigError(f"stream name {stream!r}: use 1-64 of A-Z a-z 0-9 _ -")
        if not _PREFIX.fullmatch(prefix):
            raise ConfigError(f"subject prefix {prefix!r}: use '' or tokens each ending in '.'")
        for name, value in (
            ("ack_wait", ack_wait),
            ("max_pending", max_pending),
            ("max_ack_pending", max_ack_pending),
            ("max_age", max_age),
            ("request_timeout", request_timeout),
            ("connect_timeout", connect_timeout),
        ):
            if not value > 0:
                raise ConfigError(f"JetStreamBus {name} must be positive, not {value!r}")
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self.ack_wait = ack_wait
        self.max_pending = max_pending
        self.max_ack_pending = max_ack_pending
        self.max_age = max_age
        self.request_timeout = request_timeout
        self._lock = threading.Lock()
        self._closed = False
        self._room = threading.Semaphore(max_pending)  # outbox + unacknowledged publishes
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._draining = False  # a drain task runs or is about to
        self._wire: dict[str, str] = {}  # checked subject -> subject on the wire
        self._published = 0
        self._since_flush = 0
        # on the loop thread only:
        self._drain_task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Future[api.PubAck]] = set()
        self._failed = 0
        self._first_error: str | None = None
        self._subscriptions: list[JetStreamSubscription] = []
        self._loop = LoopThread(f"openami-bus-{stream}")
        try:
            self._nc, self._js = self._loop.call(
                self._connect(connect_timeout),
                connect_timeout + 3 * request_timeout,
                f"connect to NATS at {url}",
            )
        except BaseException:
            self._loop.stop()
            raise

    # -- the Bus protocol ------------------------------------------------------------------

    def publish(self, subject: str, data: bytes) -> int:
        """Queue ``data`` for JetStream; return this bus object's count of publishes."""
        self._check_open(f"publish on {subject}")
        wire = self._wire.get(subject) or self._to_wire(subject)
        if not self._room.acquire(timeout=self.request_timeout):
            raise BusError(
                f"publish on {subject}: {self.max_pending} messages still wait for JetStream "
                f"after {self.request_timeout:g} s; it is not keeping up"
            )
        with self._lock:
            if self._closed:
                self._room.release()
                raise BusError(f"publish on {subject}: the bus is closed")
            self._outbox.append((wire, bytes(data)))
            self._published += 1
            self._since_flush += 1
            number = self._published
            start, self._draining = not self._draining, True
        if start:
            self._loop.loop.call_soon_threadsafe(self._start_drain)
        return number

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until JetStream has acknowledged every message published so far.

        Raises BusError naming how many of the messages published since the last flush it
        did not store (refused, or not acknowledged within ``timeout``); those are given up
        on, so the caller publishes them again (the MDMS's ingest absorbs duplicates).
        """
        self._check_open("flush")
        failed, total, error = self._loop.call(
            self._flush(timeout), timeout + 2 * self.request_timeout, "flush"
        )
        if failed:
            raise BusError(
                f"{failed} of {total} messages published since the last flush were not "
                f"stored by JetStream stream {self.stream} (first: {error})"
            )

    def subscribe(self, subject: str, durable: str | None = None) -> JetStreamSubscription:
        """A pull consumer on ``subject`` (wildcards allowed, under ``ami.``).

        Unnamed: it sees messages published from now on and is deleted on close. Named
        (``durable``): created on first use reading the whole retained stream, then resumed
        where it left off by every later subscribe with the name, from any process; the
        name is refused if it already follows another subject.
        """
        self._check_open(f"subscribe to {subject}")
        check_pattern(subject)
        if durable is not None:
            check_durable(durable)
        head, _, rest = subject.partition(".")
        if head != "ami" or not rest:  # a pattern wider than the stream would never match
            raise BusError(f"subscribe to {subject}: the stream carries {STREAM_SUBJECTS} only")
        sub = self._loop.call(
            self._subscribe(subject, durable), 4 * self.request_timeout, f"subscribe {subject}"
        )
        self._subscriptions.append(sub)
        return sub

    def close(self) -> None:
        """Give queued publishes up to ``request_timeout`` to be stored (log what is not;
        call ``flush`` first to know), delete unnamed consumers, disconnect."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            for sub in self._subscriptions:
                sub._settle()
            self._loop.call(self._close(), 6 * self.request_timeout, "close")
        except BusError as exc:
            log.warning("closing the bus", extra={"fields": {"error": str(exc)}})
        finally:
            self._loop.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def delete_stream(self) -> None:
        """Delete the stream, its consumers and every message in it (tests, benchmarks)."""
        self._check_open("delete stream")
        self._loop.call(self._js.delete_stream(self.stream), 2 * self.request_timeout, "delete")

    # -- internals -------------------------------------------------------------------------

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise BusError(f"{action}: the bus is closed")

    def _to_wire(self, subject: str) -> str:
        check_subject(subject)
        if not subject_matches(STREAM_SUBJECTS, subject):
            raise BusError(f"publish on {subject}: the stream carries {STREAM_SUBJECTS} only")
        if len(self._wire) >= _SUBJECT_CACHE:
            self._wire.clear()
        wire = self._wire[subject] = self.prefix + subject
        return wire

    async def _connect(self, connect_timeout: int) -> tuple[NatsClient, JetStreamContext]:
        nc = await nats.connect(
            self.url,
            name="openami",
            connect_timeout=connect_timeout,
            # nats-py applies the reconnect policy to the first connection too, where
            # "forever" would hang the constructor: two quick tries first, ...
            max_reconnect_attempts=1,
            reconnect_time_wait=0.2,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        # ... then, once connected, ride out server restarts without end (publishes wait for
        # their acknowledgements in flush meanwhile); the client reads these on each attempt
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = 1.0
        try:
            js = nc.jetstream(
                timeout=self.request_timeout, publish_async_max_pending=self.max_pending
            )
            await self._ensure_stream(js)
        except BaseException:
            await nc.close()
            raise
        return nc, js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        wanted = self.prefix + STREAM_SUBJECTS
        try:
            info = await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            config = api.StreamConfig(
                name=self.stream,
                subjects=[wanted],
                storage=api.StorageType.FILE,
                retention=api.RetentionPolicy.LIMITS,  # every consumer gets everything
                discard=api.DiscardPolicy.OLD,
                max_age=self.max_age,
            )
            try:
                await js.add_stream(config)
                return
            except nats.js.errors.BadRequestError as exc:  # overlap, or created meanwhile
                try:
                    info = await js.stream_info(self.stream)
                except nats.js.errors.NotFoundError:
                    raise BusError(f"cannot create stream {self.stream}: {exc}") from None
        subjects = (info.config.subjects or []) if info.config else []
        if not any(subject_matches(s, wanted) for s in subjects):
            raise BusError(f"stream {self.stream} carries {subjects}, not {wanted}")

    async def _subscribe(self, subject: str, durable: str | None) -> JetStreamSubscription:
        wire = self.prefix + subject
        info: api.ConsumerInfo | None = None
        if durable is not None:
            try:
                info = await self._js.consumer_info(self.stream, durable)
            except nats.js.errors.NotFoundError:
                info = None
            if info is not None and info.config.filter_subject != wire:
                follows = (info.config.filter_subject or ">")[len(self.prefix) :]
                raise BusError(f"durable {durable!r} follows {follows!r}, not {subject!r}")
        if info is None:
            config = api.ConsumerConfig(
                durable_name=durable,
                deliver_policy=api.DeliverPolicy.ALL if durable else api.DeliverPolicy.NEW,
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=-1,
                filter_subject=wire,
                max_ack_pending=self.max_ack_pending,
                inactive_threshold=None if durable else EPHEMERAL_IDLE_S,
            )
            info = await self._js.add_consumer(self.stream, config)
        sub = JetStreamSubscription(self, subject, durable, info.name, self._nc.new_inbox())
        # no pending limits: a pull never asks for more than its batch, and nats-py would
        # drop (not delay) what is over a limit
        sub._inbox_sub = await self._nc.subscribe(
            f"{sub._inbox}.*", cb=sub._on_message, pending_msgs_limit=0, pending_bytes_limit=0
        )
        return sub

    def _start_drain(self) -> None:
        self._drain_task = self._loop.loop.create_task(self._drain())

    async def _drain(self) -> None:
        """Send the outbox as asynchronous JetStream publishes, acks gathered by flush."""
        while True:
            with self._lock:
                if not self._outbox:
                    self._draining = False
                    return
                subject, data = self._outbox.popleft()
            try:
                future = await self._js.publish_async(subject, data)
            except asyncio.CancelledError:
                self._give_up("given up on by flush")
                raise
            except WIRE_ERRORS as exc:
                self._give_up(describe_error(exc))
                continue
            self._inflight.add(future)
            future.add_done_callback(self._on_publish_done)

    def _on_publish_done(self, future: asyncio.Future[api.PubAck]) -> None:
        self._inflight.discard(future)
        if future.cancelled():
            self._give_up("cancelled")
        elif (exc := future.exception()) is not None:
            self._give_up(describe_error(exc))
        else:
            self._room.release()

    def _give_up(self, reason: str) -> None:
        self._failed += 1
        if self._first_error is None:
            self._first_error = reason
        self._room.release()

    async def _settled(self) -> None:
        """Return once the outbox is sent and every publish acknowledged (or failed)."""
        while True:
            waiting: set[asyncio.Future[Any]] = set(self._inflight)
            task = self._drain_task
            if task is not None and not task.done():
                waiting.add(task)
            if waiting:
                await asyncio.wait(waiting)
                continue
            with self._lock:
                if not self._draining:
                    return
            await asyncio.sleep(0)  # a drain is scheduled but has not started yet

    async def _abandon(self, reason: str) -> None:
        """Give up on everything still queued or unacknowledged, counting it as failed."""
        task = self._drain_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        with self._lock:
            dropped = len(self._outbox)
            self._outbox.clear()
            self._draining = False
        for _ in range(dropped):
            self._give_up(reason)
        for future in list(self._inflight):
            future.remove_done_callback(self._on_publish_done)
            future.cancel()
            self._give_up(reason)
        self._inflight.clear()

    async def _flush(self, timeout: float) -> tuple[int, int, str | None]:
        try:
            await asyncio.wait_for(self._settled(), timeout)
        except TimeoutError:
            await self._abandon(f"not acknowledged within {timeout:g} s")
        with self._lock:
            total, self._since_flush = self._since_flush, 0
        failed, error = self._failed, self._first_error
        self._failed, self._first_error = 0, None
        return failed, total, error

    async def _close(self) -> None:
        try:
            await asyncio.wait_for(self._settled(), self.request_timeout)
        except TimeoutError:
            await self._abandon("the bus closed first")
        if self._failed:
            log.warning(
                "closed the bus with publishes JetStream did not store",
                extra={"fields": {"failed": self._failed, "first": self._first_error}},
            )
        for sub in self._subscriptions:
            try:
                await sub._close()
            except WIRE_ERRORS as exc:
                log.warning("closing a subscription", extra={"fields": {"error": str(exc)}})
        await self._nc.close()

    async def _on_error(self, exc: Exception) -> None:
        log.warning("NATS client error", extra={"fields": {"error": describe_error(exc)}})

    async def _on_disconnected(self) -> None:
        if self._closed:
            return
        log.warning("disconnected from NATS", extra={"fields": {"url": self.url}})

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS", extra={"fields": {"url": self.url}})
