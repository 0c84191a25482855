from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from openami.bus.contract import Channel, CollectRequest, ReadSource
from openami.bus.memory import MemoryBus
from openami.fleet.fleet import Fleet
from openami.fleet.meter import MeterServer
from openami.headend.ingest import Ingest
from openami.headend.service import MAX_ATTEMPTS, HeadEnd
from openami.protocols.dlms.apdu import DataNotification, encode_apdu
from openami.protocols.dlms.axdr import Data, DataType
from openami.protocols.dlms.wrapper import WrapperFrame, encode_wrapper
from openami.transport.memory import Datagram, MemoryNetwork
from tests.conftest import provisioned_keys

JST = timezone(timedelta(hours=9))
HES = ("10.255.255.1", 4059)


@pytest.fixture
def fleet() -> Fleet:
    return Fleet(4, datetime(2026, 8, 3, tzinfo=JST), 48, 30, seed=11)


def _push(meters: MeterServer, i: int, t: int) -> Datagram:
    return Datagram(meters.push(i, t), meters.fleet.addresses[i], HES)


def test_a_push_becomes_four_reads_of_that_meter_and_interval(fleet: Fleet) -> None:
    ingest = Ingest(provisioned_keys(fleet))
    meters = MeterServer(fleet)
    meters.close_interval()
    ingest.receive(_push(meters, 1, 0))
    batch = ingest.reads.take()
    assert batch.meter_id == [2, 2, 2, 2]
    assert batch.channel == [int(c) for c in Channel]
    assert batch.value_wh[0] == fleet.profiles.import_wh[1, 0]
    assert batch.value_wh[2] == fleet.import_register[1, 0]
    assert set(batch.source) == {ReadSource.PUSH}
    assert len(ingest.reads) == 0


def test_replayed_push_is_rejected_and_not_read_twice(fleet: Fleet) -> None:
    ingest = Ingest(provisioned_keys(fleet))
    meters = MeterServer(fleet)
    meters.close_interval()
    push = _push(meters, 0, 0)
    ingest.receive(push)
    ingest.receive(push)
    assert ingest.accepted["push"] == 1
    assert ingest.rejected["security"] == 1
    assert len(ingest.reads) == 4


@pytest.mark.parametrize("position", [-1, -13, 20, 12])
def test_tampered_push_is_rejected(fleet: Fleet, position: int) -> None:
    ingest = Ingest(provisioned_keys(fleet))
    meters = MeterServer(fleet)
    meters.close_interval()
    raw = bytearray(meters.push(0, 0))
    raw[position] ^= 0x40
    ingest.receive(Datagram(bytes(raw), fleet.addresses[0], HES))
    assert len(ingest.reads) == 0
    assert sum(ingest.rejected.values()) == 1


def test_clear_text_and_unknown_meters_are_refused(fleet: Fleet) -> None:
    ingest = Ingest(provisioned_keys(fleet))
    clear = encode_apdu(DataNotification(1, None, Data(DataType.NULL, None)))
    ingest.receive(Datagram(encode_wrapper(WrapperFrame(1, 1, clear)), fleet.addresses[0], HES))
    other = Fleet(1, datetime(2026, 8, 3, tzinfo=JST), 1, 30, seed=99)
    stranger = MeterServer(other)
    stranger.close_interval()
    # same system title as meter 1 of our fleet, but not its keys
    ingest.receive(Datagram(stranger.push(0, 0), other.addresses[0], HES))
    ingest.receive(Datagram(b"\x00\x01garbage", fleet.addresses[0], HES))
    assert ingest.rejected == {"security": 2, "decode": 1}
    assert len(ingest.reads) == 0


def test_collection_retries_lost_requests_then_gives_up(fleet: Fleet) -> None:
    network = MemoryNetwork()
    bus = MemoryBus()
    headend = HeadEnd(provisioned_keys(fleet), network.bind([HES]), HES, bus)
    ends = fleet.profiles.interval_end
    request = CollectRequest(1, int(ends[0]), int(ends[2]), "r1")
    # nobody owns the meter's address: every request is lost
    headend.collector.submit(request)
    headend.collector.dispatch()
    for _ in range(MAX_ATTEMPTS):
        headend.collection_tick()
    assert headend.collector.sent == MAX_ATTEMPTS
    assert headend.collector.failed == 1
    assert headend.collector.pending() == 0


def test_collection_answer_becomes_recollected_reads(fleet: Fleet) -> None:
    network = MemoryNetwork()
    bus = MemoryBus()
    headend = HeadEnd(provisioned_keys(fleet), network.bind([HES]), HES, bus)
    meters = MeterServer(fleet)
    port = network.bind(fleet.addresses)
    for _ in range(6):
        meters.close_interval()
    ends = fleet.profiles.interval_end
    headend.collector.submit(CollectRequest(3, int(ends[1]), int(ends[4]), "r2"))
    headend.collector.dispatch()
    for datagram in port.receive_all():
        answer = meters.handle(datagram)
        assert answer is not None
        port.sendto(answer, datagram.destination, datagram.source)
    headend.poll_network()
    batch = headend.ingest.reads.take()
    assert sorted(set(batch.interval_end)) == [int(e) for e in ends[1:5]]
    assert set(batch.source) == {ReadSource.RECOLLECT}
    assert headend.collector.completed == 1
