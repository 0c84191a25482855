"""One contract, both backends: every test here runs on MemoryBus and on NATS JetStream.

The JetStream runs use the real server on 127.0.0.1:4222, each test on its own stream and
subject prefix (deleted afterwards), and skip only when nothing listens there. MemoryBus
cannot survive ``close`` (nothing outlives the process), so where a test restarts a consumer,
the memory run keeps the same bus object and resumes the durable name inside it.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import pytest

from openami.bus.base import Bus, BusMessage, BusSubscription
from openami.bus.contract import (
    SHARDS,
    SUBJECT_COLLECT,
    SUBJECT_EVENTS,
    SUBJECT_READS,
    SUBJECT_READS_ALL_SHARDS,
    reads_subject,
)
from openami.bus.memory import MemoryBus
from openami.bus.nats import JetStreamBus
from openami.errors import BusError
from tests.conftest import free_port

NATS_HOST, NATS_PORT = "127.0.0.1", 4222
NATS_URL = f"nats://{NATS_HOST}:{NATS_PORT}"
ACK_WAIT = 1.0  # seconds; JetStream redelivers unacknowledged messages after this


def nats_reachable() -> str | None:
    """None if something listens on the NATS port, else why not."""
    try:
        with socket.create_connection((NATS_HOST, NATS_PORT), timeout=1.0):
            return None
    except OSError as exc:
        return f"no NATS server at {NATS_HOST}:{NATS_PORT} ({exc}); start it as .ci/run does"


class Backend:
    """A bus backend under test, and how a restarted process reaches the same bus."""

    def __init__(self, name: str, opener: Callable[[], Bus]) -> None:
        self.name = name
        self._opener = opener
        self.buses: list[Bus] = []
        self.bus = self.open()

    def open(self) -> Bus:
        bus = self._opener()
        self.buses.append(bus)
        return bus

    def restart(self) -> Bus:
        """The bus as a consumer process restarted after a crash sees it."""
        if self.name == "memory":
            return self.bus
        self.bus.close()
        self.bus = self.open()
        return self.bus

    def wait_past_ack_wait(self) -> None:
        """Long enough for JetStream to redeliver what was not acknowledged; memory never
        redelivers on a clock."""
        if self.name == "nats":
            time.sleep(ACK_WAIT * 1.3)


def fetch_all(sub: BusSubscription, count: int, timeout: float = 3.0) -> list[BusMessage]:
    """Fetch until ``count`` messages came or nothing more comes within ``timeout``."""
    got: list[BusMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        batch = sub.fetch(count - len(got), timeout=max(deadline - time.monotonic(), 0.0))
        if not batch:
            break
        got += batch
    return got


def datas(messages: Sequence[BusMessage]) -> list[bytes]:
    return [m.data for m in messages]


def publish(bus: Bus, count: int, subject: str = SUBJECT_READS, tag: str = "m") -> None:
    for i in range(count):
        bus.publish(subject, f"{tag}{i}".encode())
    bus.flush(timeout=5.0)


def _memory() -> Bus:
    return MemoryBus()


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.nats)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend("memory", _memory)
        return
    reason = nats_reachable()
    if reason is not None:
        pytest.skip(reason)
    unique = uuid.uuid4().hex[:12]
    stream, prefix = f"TEST_{unique}", f"test{unique}."

    def _open() -> Bus:
        return JetStreamBus(NATS_URL, stream, prefix=prefix, ack_wait=ACK_WAIT)

    backend = Backend("nats", _open)
    try:
        yield backend
    finally:
        for bus in backend.buses:
            bus.close()
        with JetStreamBus(NATS_URL, stream, prefix=prefix) as admin:
            admin.delete_stream()


def test_publish_flush_fetch_gets_everything_in_order(backend: Backend) -> None:
    bus = backend.bus
    sub = bus.subscribe(SUBJECT_READS)
    publish(bus, 50)
    got = fetch_all(sub, 50)
    assert datas(got) == [f"m{i}".encode() for i in range(50)]
    assert all(m.subject == SUBJECT_READS for m in got)
    sequences = [m.sequence for m in got]
    assert sequences == sorted(sequences) and len(set(sequences)) == 50
    assert sub.fetch(10, timeout=0.2) == []


def test_fetch_takes_at_most_limit(backend: Backend) -> None:
    sub = backend.bus.subscribe(SUBJECT_READS)
    publish(backend.bus, 5)
    assert datas(sub.fetch(2)) == [b"m0", b"m1"]
    assert datas(sub.fetch(2)) == [b"m2", b"m3"]
    assert datas(sub.fetch(2)) == [b"m4"]


def test_large_messages_round_trip(backend: Backend) -> None:
    sub = backend.bus.subscribe(reads_subject(7))
    payloads = [bytes([i]) * 10_240 for i in range(200)]
    for payload in payloads:
        backend.bus.publish(reads_subject(7), payload)
    backend.bus.flush(timeout=5.0)
    assert datas(fetch_all(sub, 200)) == payloads


def test_ack_removes(backend: Backend) -> None:
    sub = backend.bus.subscribe(SUBJECT_READS)
    publish(backend.bus, 4)
    assert sub.pending() == 4
    got = fetch_all(sub, 4)
    assert sub.pending() == 4  # fetched is not done with
    for message in got[:2]:
        message.ack()
    assert sub.pending() == 2
    for message in got[2:]:
        message.ack()
    assert sub.pending() == 0
    backend.wait_past_ack_wait()
    assert sub.fetch(10, timeout=0.2) == []


def test_double_ack_is_refused(backend: Backend) -> None:
    sub = backend.bus.subscribe(SUBJECT_READS)
    publish(backend.bus, 1)
    (message,) = fetch_all(sub, 1)
    message.ack()
    with pytest.raises(BusError, match="twice"):
        message.ack()


def test_nak_redelivers_before_anything_newer(backend: Backend) -> None:
    sub = backend.bus.subscribe(SUBJECT_READS)
    publish(backend.bus, 3)
    first, second = sub.fetch(2)
    second.ack()
    first.nak()
    first.nak()  # a second nak changes nothing
    again = fetch_all(sub, 2)
    assert datas(again) == [b"m0", b"m2"]
    assert again[0].sequence == first.sequence
    for message in again:
        message.ack()
    assert sub.pending() == 0
    assert sub.fetch(10, timeout=0.2) == []


def test_nak_after_ack_does_nothing(backend: Backend) -> None:
    sub = backend.bus.subscribe(SUBJECT_READS)
    publish(backend.bus, 1)
    (message,) = fetch_all(sub, 1)
    message.ack()
    message.nak()
    assert sub.pending() == 0
    assert sub.fetch(10, timeout=0.2) == []


def test_a_durable_resumes_after_a_restart(backend: Backend) -> None:
    sub = backend.bus.subscribe(SUBJECT_READS, durable="mdms")
    publish(backend.bus, 4)
    got = fetch_all(sub, 4)
    got[1].ack()
    got[3].ack()
    # the consumer dies holding m0 and m2; meanwhile the head-end publishes m4
    bus = backend.restart()
    publish(bus, 1, tag="late")
    resumed = bus.subscribe(SUBJECT_READS, durable="mdms")
    back = fetch_all(resumed, 3, timeout=ACK_WAIT + 4.0)
    assert sorted(datas(back)) == [b"late0", b"m0", b"m2"]
    for message in back:
        message.ack()
    assert resumed.pending() == 0
    assert resumed.fetch(10, timeout=0.2) == []


def test_a_durable_name_follows_one_subject(backend: Backend) -> None:
    backend.bus.subscribe(SUBJECT_READS, durable="mdms")
    with pytest.raises(BusError, match="follows"):
        backend.bus.subscribe(SUBJECT_COLLECT, durable="mdms")


def test_two_durables_each_get_everything(backend: Backend) -> None:
    a = backend.bus.subscribe(SUBJECT_EVENTS, durable="billing")
    b = backend.bus.subscribe(SUBJECT_EVENTS, durable="outage")
    publish(backend.bus, 10, SUBJECT_EVENTS)
    got_a = fetch_all(a, 10)
    for message in got_a:
        message.ack()
    got_b = fetch_all(b, 10)
    assert datas(got_a) == datas(got_b) == [f"m{i}".encode() for i in range(10)]
    assert a.pending() == 0
    assert b.pending() == 10  # b's acknowledgements are b's own


def test_two_plain_subscriptions_each_get_everything(backend: Backend) -> None:
    a = backend.bus.subscribe(SUBJECT_READS)
    b = backend.bus.subscribe(SUBJECT_READS)
    publish(backend.bus, 3)
    assert datas(fetch_all(a, 3)) == datas(fetch_all(b, 3)) == [b"m0", b"m1", b"m2"]


def test_a_plain_subscription_sees_only_what_comes_after_it(backend: Backend) -> None:
    publish(backend.bus, 2, tag="early")
    sub = backend.bus.subscribe(SUBJECT_READS)
    publish(backend.bus, 1)
    assert datas(fetch_all(sub, 2, timeout=0.5)) == [b"m0"]


def test_wildcard_subscriptions(backend: Backend) -> None:
    bus = backend.bus
    everything = bus.subscribe("ami.>")
    all_shards = bus.subscribe(SUBJECT_READS_ALL_SHARDS)
    shard_3 = bus.subscribe(reads_subject(3))
    any_3 = bus.subscribe("ami.*.3")
    unsharded = bus.subscribe(SUBJECT_READS)
    subjects = [reads_subject(s) for s in range(SHARDS)] + [SUBJECT_READS, SUBJECT_COLLECT]
    for subject in subjects:
        bus.publish(subject, subject.encode())
    bus.flush(timeout=5.0)

    def received(sub: BusSubscription, expect: int) -> list[str]:
        got = fetch_all(sub, expect)
        assert sub.fetch(10, timeout=0.2) == []
        return [m.subject for m in got]

    assert received(everything, len(subjects)) == subjects
    assert received(all_shards, SHARDS) == subjects[:SHARDS]
    assert received(shard_3, 1) == ["ami.reads.3"]
    assert received(any_3, 1) == ["ami.reads.3"]
    assert received(unsharded, 1) == [SUBJECT_READS]


def test_flush_with_nothing_published_returns_at_once(backend: Backend) -> None:
    began = time.monotonic()
    backend.bus.flush(timeout=5.0)
    assert time.monotonic() - began < 1.0


def test_fetch_with_nothing_there_returns_nothing(backend: Backend) -> None:
    sub = backend.bus.subscribe(SUBJECT_READS)
    assert sub.fetch(10) == []
    assert sub.fetch(10, timeout=0.1) == []
    assert sub.pending() == 0


def test_after_close_the_bus_refuses_work(backend: Backend) -> None:
    sub = backend.bus.subscribe(SUBJECT_READS)
    backend.bus.close()
    backend.bus.close()  # closing twice is fine
    with pytest.raises(BusError, match="closed"):
        backend.bus.publish(SUBJECT_READS, b"x")
    with pytest.raises(BusError, match="closed"):
        backend.bus.flush()
    with pytest.raises(BusError, match="closed"):
        backend.bus.subscribe(SUBJECT_READS)
    with pytest.raises(BusError, match="closed"):
        sub.fetch()


@pytest.mark.parametrize("subject", ["ami.*", "ami.>", "ami..reads", "", "ami reads", "ami.r*"])
def test_a_publish_subject_must_be_plain(backend: Backend, subject: str) -> None:
    with pytest.raises(BusError):
        backend.bus.publish(subject, b"x")


@pytest.mark.parametrize("pattern", ["ami.>.reads", "ami.r*", "ami.>x", "", "ami."])
def test_a_subscription_pattern_must_be_valid(backend: Backend, pattern: str) -> None:
    with pytest.raises(BusError):
        backend.bus.subscribe(pattern)


@pytest.mark.parametrize("name", ["a.b", "a*", "a>", "", "a b"])
def test_a_durable_name_must_be_valid(backend: Backend, name: str) -> None:
    with pytest.raises(BusError, match="durable name"):
        backend.bus.subscribe(SUBJECT_READS, durable=name)


def test_the_bus_is_a_context_manager(backend: Backend) -> None:
    with backend.bus as bus:
        bus.flush()
    with pytest.raises(BusError, match="closed"):
        backend.bus.publish(SUBJECT_READS, b"x")


# -- JetStream only: what memory has no way to get wrong ----------------------------------


@pytest.fixture
def nats_stream() -> Iterator[tuple[str, str]]:
    reason = nats_reachable()
    if reason is not None:
        pytest.skip(reason)
    unique = uuid.uuid4().hex[:12]
    stream, prefix = f"TEST_{unique}", f"test{unique}."
    yield stream, prefix
    with JetStreamBus(NATS_URL, stream, prefix=prefix) as admin:
        admin.delete_stream()


@pytest.mark.nats
def test_flush_names_how_many_were_not_stored(nats_stream: tuple[str, str]) -> None:
    stream, prefix = nats_stream
    with JetStreamBus(NATS_URL, stream, prefix=prefix) as bus:
        publish(bus, 3)
        bus.delete_stream()  # behind the publisher's back: nothing stores ami.> any more
        for i in range(5):
            bus.publish(SUBJECT_READS, f"lost{i}".encode())
        with pytest.raises(BusError, match="5 of 5 messages"):
            bus.flush(timeout=5.0)
        bus.flush(timeout=1.0)  # the failures were reported once; nothing is outstanding


@pytest.mark.nats
def test_fetch_waits_for_the_first_message_only(nats_stream: tuple[str, str]) -> None:
    stream, prefix = nats_stream
    with JetStreamBus(NATS_URL, stream, prefix=prefix) as bus:
        sub = bus.subscribe(SUBJECT_READS)
        began = time.monotonic()
        assert sub.fetch(10, timeout=0.3) == []
        assert 0.25 < time.monotonic() - began < 2.0
        publish(bus, 3)
        began = time.monotonic()
        assert datas(sub.fetch(100, timeout=5.0)) == [b"m0", b"m1", b"m2"]
        assert time.monotonic() - began < 1.0


@pytest.mark.nats
def test_jetstream_refuses_subjects_outside_the_stream(nats_stream: tuple[str, str]) -> None:
    stream, prefix = nats_stream
    with JetStreamBus(NATS_URL, stream, prefix=prefix) as bus:
        with pytest.raises(BusError, match="carries"):
            bus.publish("meters.reads", b"x")
        with pytest.raises(BusError, match="carries"):
            bus.subscribe(">")


@pytest.mark.nats
def test_an_unreachable_server_is_a_bus_error() -> None:
    began = time.monotonic()
    with pytest.raises(BusError, match="connect"):
        JetStreamBus(f"nats://127.0.0.1:{free_port()}", connect_timeout=1, request_timeout=1.0)
    assert time.monotonic() - began < 5.0


@pytest.mark.nats
def test_jetstream_publish_is_thread_safe(nats_stream: tuple[str, str]) -> None:
    stream, prefix = nats_stream
    with JetStreamBus(NATS_URL, stream, prefix=prefix, max_pending=64) as bus:
        sub = bus.subscribe(SUBJECT_READS_ALL_SHARDS)

        def work(shard: int) -> None:
            for i in range(250):
                bus.publish(reads_subject(shard), f"{shard}:{i}".encode())

        threads = [threading.Thread(target=work, args=(shard,)) for shard in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bus.flush(timeout=10.0)
        got = fetch_all(sub, 1_000)
        assert len(got) == 1_000
        for shard in range(4):  # each publisher's own order survives
            mine = [m.data for m in got if m.subject == reads_subject(shard)]
            assert mine == [f"{shard}:{i}".encode() for i in range(250)]
