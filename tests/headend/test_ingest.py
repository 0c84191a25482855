from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from openami.bus.contract import Channel, CollectRequest, ReadSource
from openami.bus.memory import MemoryBus
from openami.fleet.fleet import Fleet, IntervalValues
from openami.fleet.meter import MeterServer
from openami.fleet.pushgen import PushEncoder
from openami.headend.ingest import Ingest
from openami.headend.service import MAX_ATTEMPTS, HeadEnd
from openami.protocols.dlms.apdu import DataNotification, encode_apdu
from openami.protocols.dlms.axdr import Data, DataType
from openami.protocols.dlms.wrapper import WrapperFrame, encode_wrapper
from openami.transport.memory import Datagram, MemoryNetwork
from tests.conftest import provisioned_keys

JST = timezone(timedelta(hours=9))
HES = ("10.255.255.1", 4059)
START = datetime(2026, 8, 3, tzinfo=JST)
PROFILE_CHANNELS = [
    Channel.IMPORT_INTERVAL,
    Channel.EXPORT_INTERVAL,
    Channel.IMPORT_REGISTER,
    Channel.EXPORT_REGISTER,
]


@pytest.fixture
def fleet() -> Fleet:
    return Fleet.simple(4, START, seed=11)


def _push(encoder: PushEncoder, values: IntervalValues, i: int) -> Datagram:
    """Meter ``i``'s interval push for ``values``, from its own address."""
    row = encoder.intervals(values, np.array([i], dtype=np.int64))[0]
    return Datagram(bytes(row), encoder.fleet.address(i), HES)


def test_a_push_becomes_four_reads_of_that_meter_and_interval(fleet: Fleet) -> None:
    ingest = Ingest(provisioned_keys(fleet))
    values = fleet.advance()
    ingest.receive(_push(PushEncoder(fleet), values, 1))
    batch = ingest.reads.take()
    assert batch.meter_id == [2, 2, 2, 2]
    assert batch.channel == [int(c) for c in PROFILE_CHANNELS]
    assert batch.interval_end == [fleet.interval_end(values.number)] * 4
    assert batch.value_wh == [
        int(values.import_wh[1]),
        int(values.export_wh[1]),
        int(values.import_register[1]),
        int(values.export_register[1]),
    ]
    assert set(batch.source) == {ReadSource.PUSH}
    assert len(ingest.reads) == 0
    assert ingest.accepted == {"push": 1}


def test_replayed_push_is_rejected_and_not_read_twice(fleet: Fleet) -> None:
    ingest = Ingest(provisioned_keys(fleet))
    push = _push(PushEncoder(fleet), fleet.advance(), 0)
    ingest.receive(push)
    ingest.receive(push)
    assert ingest.accepted["push"] == 1
    assert ingest.rejected["security"] == 1
    assert len(ingest.reads) == 4


@pytest.mark.parametrize("position", [-1, -13, 20, 12])
def test_tampered_push_is_rejected(fleet: Fleet, position: int) -> None:
    ingest = Ingest(provisioned_keys(fleet))
    raw = bytearray(_push(PushEncoder(fleet), fleet.advance(), 0).payload)
    raw[position] ^= 0x40
    ingest.receive(Datagram(bytes(raw), fleet.address(0), HES))
    assert len(ingest.reads) == 0
    assert sum(ingest.rejected.values()) == 1


def test_clear_text_and_unknown_meters_are_refused(fleet: Fleet) -> None:
    ingest = Ingest(provisioned_keys(fleet))
    clear = encode_apdu(DataNotification(1, None, Data(DataType.NULL, None)))
    ingest.receive(Datagram(encode_wrapper(WrapperFrame(1, 1, clear)), fleet.address(0), HES))
    other = Fleet.simple(1, START, seed=99)
    # same system title as meter 1 of our fleet, but not its keys
    assert other.system_title(0) == fleet.system_title(0)
    ingest.receive(_push(PushEncoder(other), other.advance(), 0))
    ingest.receive(Datagram(b"\x00\x01garbage", fleet.address(0), HES))
    assert ingest.rejected == {"security": 2, "decode": 1}
    assert len(ingest.reads) == 0


def test_a_new_communication_unit_is_learned_from_an_authentic_push(fleet: Fleet) -> None:
    keys = provisioned_keys(fleet)
    ingest = Ingest(keys)
    encoder = PushEncoder(fleet)
    i = int(np.flatnonzero(fleet.separated)[0])  # a meter whose unit is a separate part
    old = fleet.address(i)
    fleet.swap_comm_unit(np.array([i], dtype=np.int64))
    assert fleet.address(i) != old
    ingest.receive(_push(encoder, fleet.advance(), i))
    assert ingest.accepted["address_changed"] == 1
    assert keys.by_id(i + 1).address == fleet.address(i)  # requests go there from now on
    # a forged datagram from yet another address teaches nothing
    forged = bytearray(_push(encoder, fleet.advance(), i).payload)
    forged[-2] ^= 0x01
    ingest.receive(Datagram(bytes(forged), ("127.200.0.1", 4059), HES))
    assert keys.by_id(i + 1).address == fleet.address(i)


def test_collection_retries_lost_requests_then_gives_up(fleet: Fleet) -> None:
    network = MemoryNetwork()
    bus = MemoryBus()
    headend = HeadEnd(provisioned_keys(fleet), network.bind([HES]), HES, bus)
    o = fleet.origin
    request = CollectRequest(1, fleet.interval_end(o + 1), fleet.interval_end(o + 3), "r1")
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
    values = [fleet.advance() for _ in range(6)]
    ends = [fleet.interval_end(v.number) for v in values]
    headend.collector.submit(CollectRequest(3, ends[1], ends[4], "r2"))
    headend.collector.dispatch()
    for datagram in port.receive_all():
        answer = meters.handle(datagram)
        assert answer is not None
        port.sendto(answer, datagram.destination, datagram.source)
    headend.poll_network()
    batch = headend.ingest.reads.take()
    assert sorted(set(batch.interval_end)) == ends[1:5]
    assert set(batch.source) == {ReadSource.RECOLLECT}
    assert headend.collector.completed == 1
    # what came back is what meter 3 pushed for the same intervals
    pushed = {
        (fleet.interval_end(v.number), int(c)): int(x)
        for v in values[1:5]
        for c, x in zip(
            PROFILE_CHANNELS,
            (v.import_wh[2], v.export_wh[2], v.import_register[2], v.export_register[2]),
            strict=True,
        )
    }
    assert {
        (t, c): x for t, c, x in zip(batch.interval_end, batch.channel, batch.value_wh, strict=True)
    } == pushed
    assert set(batch.meter_id) == {3}
