from __future__ import annotations

import pytest

from openami.bus.memory import MemoryBus, Message, Subscription
from openami.errors import BusError

SUBJECT = "ami.reads"


def _publish(bus: MemoryBus, count: int, subject: str = SUBJECT) -> list[int]:
    return [bus.publish(subject, f"m{i}".encode()) for i in range(count)]


def _datas(messages: list[Message]) -> list[bytes]:
    return [m.data for m in messages]


def test_publish_fetch_ack() -> None:
    bus = MemoryBus()
    sub = bus.subscribe(SUBJECT)
    seqs = _publish(bus, 3)
    assert seqs == [1, 2, 3]
    assert sub.pending() == 3

    got = sub.fetch()
    assert _datas(got) == [b"m0", b"m1", b"m2"]
    assert [m.sequence for m in got] == seqs
    assert all(m.subject == SUBJECT and not m.acked for m in got)
    # Fetched but not acknowledged: still pending, but not fetched again.
    assert sub.pending() == 3
    assert sub.fetch() == []

    for m in got:
        m.ack()
    assert all(m.acked for m in got)
    assert sub.pending() == 0
    assert sub.redeliver_unacked() == 0
    assert sub.fetch() == []


def test_fetch_takes_at_most_limit_in_order() -> None:
    bus = MemoryBus()
    sub = bus.subscribe(SUBJECT)
    _publish(bus, 5)
    assert _datas(sub.fetch(2)) == [b"m0", b"m1"]
    assert _datas(sub.fetch(2)) == [b"m2", b"m3"]
    assert _datas(sub.fetch(2)) == [b"m4"]


def test_sequences_keep_growing_across_subjects() -> None:
    bus = MemoryBus()
    assert bus.publish("a", b"") == 1
    assert bus.publish("b", b"") == 2
    assert bus.publish("a", b"") == 3


def test_a_message_published_before_subscribing_is_not_delivered() -> None:
    bus = MemoryBus()
    bus.publish(SUBJECT, b"early")
    sub = bus.subscribe(SUBJECT)
    assert sub.fetch() == []


def test_unacked_messages_come_back_in_the_original_order() -> None:
    bus = MemoryBus()
    sub = bus.subscribe(SUBJECT)
    _publish(bus, 6)
    got = sub.fetch(4)  # m0..m3 in flight, m4 m5 still queued
    got[1].ack()
    got[3].ack()
    assert sub.redeliver_unacked() == 2
    assert sub.pending() == 4
    again = sub.fetch()
    assert _datas(again) == [b"m0", b"m2", b"m4", b"m5"]
    assert [m.sequence for m in again] == [1, 3, 5, 6]


def test_redelivery_of_everything_keeps_order() -> None:
    bus = MemoryBus()
    sub = bus.subscribe(SUBJECT)
    _publish(bus, 5)
    sub.fetch(3)
    assert sub.redeliver_unacked() == 3
    assert _datas(sub.fetch()) == [b"m0", b"m1", b"m2", b"m3", b"m4"]


def test_a_redelivered_message_can_be_acked() -> None:
    bus = MemoryBus()
    sub = bus.subscribe(SUBJECT)
    _publish(bus, 1)
    sub.fetch()
    sub.redeliver_unacked()
    (message,) = sub.fetch()
    message.ack()
    assert sub.pending() == 0


def test_nak_redelivers_first() -> None:
    bus = MemoryBus()
    sub = bus.subscribe(SUBJECT)
    _publish(bus, 3)
    first, second = sub.fetch(2)
    second.ack()
    first.nak()
    assert sub.pending() == 2
    again = sub.fetch()
    assert _datas(again) == [b"m0", b"m2"]
    assert again[0].sequence == first.sequence
    again[0].ack()
    again[1].ack()
    assert sub.pending() == 0


def test_nak_twice_redelivers_once() -> None:
    bus = MemoryBus()
    sub = bus.subscribe(SUBJECT)
    _publish(bus, 1)
    (message,) = sub.fetch()
    message.nak()
    message.nak()
    assert sub.pending() == 1
    assert len(sub.fetch()) == 1


def test_nak_after_ack_does_nothing() -> None:
    bus = MemoryBus()
    sub = bus.subscribe(SUBJECT)
    _publish(bus, 1)
    (message,) = sub.fetch()
    message.ack()
    message.nak()
    assert sub.pending() == 0
    assert sub.fetch() == []


def test_double_ack_is_refused() -> None:
    bus = MemoryBus()
    sub = bus.subscribe(SUBJECT)
    _publish(bus, 1)
    (message,) = sub.fetch()
    message.ack()
    with pytest.raises(BusError, match="twice"):
        message.ack()


def test_every_subscription_gets_its_own_copy() -> None:
    bus = MemoryBus()
    subs: list[Subscription] = [bus.subscribe(SUBJECT) for _ in range(3)]
    elsewhere = bus.subscribe("ami.collect")
    _publish(bus, 2)

    got = [sub.fetch() for sub in subs]
    for messages in got:
        assert _datas(messages) == [b"m0", b"m1"]
    # Distinct message objects: acknowledging on one subscription leaves the others alone.
    assert got[0][0] is not got[1][0]
    for m in got[0]:
        m.ack()
    assert subs[0].pending() == 0
    assert subs[1].pending() == 2
    assert subs[2].redeliver_unacked() == 2
    assert _datas(subs[2].fetch()) == [b"m0", b"m1"]
    assert subs[1].redeliver_unacked() == 2
    assert elsewhere.pending() == 0
    assert elsewhere.fetch() == []


def test_a_late_ack_after_redelivery_is_not_delivered_again() -> None:
    bus = MemoryBus()
    sub = bus.subscribe("s")
    bus.publish("s", b"a")
    (first,) = sub.fetch()
    assert sub.redeliver_unacked() == 1
    first.ack()  # the slow consumer finishes after all
    assert sub.fetch() == []
    assert sub.pending() == 0
