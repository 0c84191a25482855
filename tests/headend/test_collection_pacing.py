"""Collection paced per access point, and the same range asked twice sent once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from openami.bus.contract import CollectRequest
from openami.fleet.fleet import Fleet
from openami.headend.collection import AccessPointPacer, Collector
from openami.headend.keystore import KeyStore
from openami.transport.memory import Address

JST = timezone(timedelta(hours=9))
HES = ("127.0.0.1", 4059)


class Sent:
    def __init__(self) -> None:
        self.to: list[Address] = []

    def sendto(self, payload: bytes, source: Address, destination: Address) -> None:
        self.to.append(destination)


def _keys(n: int, aps: list[int]) -> KeyStore:
    fleet = Fleet.simple(n, datetime(2026, 8, 3, tzinfo=JST), seed=3)
    c = fleet.key_shipment()
    keys = KeyStore()
    keys.provision_columns(
        np.asarray(c["meter_id"], np.int64),
        np.asarray(c["title"], np.uint64),
        np.asarray(c["ek"], np.uint8),
        np.asarray(c["ak"], np.uint8),
        np.asarray(c["ip"], np.uint32),
        np.asarray(c["port"], np.uint16),
        np.array(aps, dtype=np.int64),
    )
    return keys


def _request(meter: int, k: int = 0) -> CollectRequest:
    return CollectRequest(
        meter, 1_785_000_600 + 1800 * k, 1_785_000_600 + 1800 * k, f"r{meter}-{k}"
    )


def test_the_meters_behind_one_access_point_are_paced() -> None:
    # meters 1-20 behind access point 7, meters 21-25 behind access point 8, 26 unknown
    keys = _keys(26, [7] * 20 + [8] * 5 + [-1])
    sent = Sent()
    collector = Collector(keys, sent, HES, AccessPointPacer(rate=2.0, burst=4.0))
    for meter in range(1, 27):
        collector.submit(_request(meter))
    collector.dispatch(now=100.0)
    # a burst of 4 behind each access point; the unknown one is not held back
    assert len(sent.to) == 4 + 4 + 1
    collector.dispatch(now=101.0)  # one second: two more behind each
    assert len(sent.to) == 9 + 2 + 1  # access point 8 had one of its five left
    collector.dispatch(now=110.0)
    # a full bucket again (4, not 18: idle time does not pile up); ap 7's last 10 wait
    assert len(sent.to) == 12 + 4
    assert sum(1 for a in sent.to if a[0] in {f"127.1.0.{m}" for m in range(1, 21)}) == 10
    assert collector.pacer is not None and collector.pacer.held > 0


def test_asking_again_for_the_same_range_sends_it_once() -> None:
    keys = _keys(3, [1, 1, 1])
    sent = Sent()
    collector = Collector(keys, sent, HES)
    collector.submit(_request(2))
    collector.submit(_request(2))  # the MDMS asked again before the answer came
    collector.submit(_request(2, k=1))  # another range of the same meter: queued
    collector.dispatch(now=0.0)
    assert len(sent.to) == 1 and collector.merged == 1 and collector.pending() == 2


def test_an_unanswered_request_is_sent_again_later_each_time() -> None:
    keys = _keys(1, [-1])
    sent = Sent()
    collector = Collector(keys, sent, HES, backoff_s=1.0, max_backoff_s=4.0)
    collector.submit(_request(1))
    collector.dispatch(now=0.0)
    times = []
    now = 0.0
    while now < 20.0:
        before = len(sent.to)
        collector.retry_pending(max_attempts=8, now=now)
        if len(sent.to) > before:
            times.append(now)
        now += 0.25
    # 1 s, then 2, then 4, then every 4 s (the cap)
    assert times[:5] == [1.0, 3.0, 7.0, 11.0, 15.0]
