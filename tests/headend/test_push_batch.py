"""The batch path decides exactly as the general one, datagram for datagram."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.bus.contract import Channel, ReadBatch
from openami.fleet.fleet import Fleet
from openami.fleet.pushgen import PushEncoder
from openami.headend.ingest import Ingest
from openami.headend.push_batch import PushBatchIngest, split_by_shard
from openami.transport.memory import Datagram
from openami.transport.udp_batch import ip_to_int
from tests.conftest import provisioned_keys

JST = timezone(timedelta(hours=9))
HES = ("10.255.255.1", 4059)
START = datetime(2026, 8, 3, 1, tzinfo=JST)


def _traffic(seed: int, meters: int = 30) -> tuple[Fleet, list[Datagram]]:
    """Three intervals of a small fleet's pushes, with everything that goes wrong on a
    network: duplicates, reordering, bit flips, replays, a foreign key, other lengths."""
    fleet = Fleet.simple(meters, START, seed=seed)
    encoder = PushEncoder(fleet)
    every = np.arange(fleet.n, dtype=np.int64)
    rng = random.Random(seed)
    out: list[Datagram] = []
    for step in range(3):
        values = fleet.advance()
        rows = encoder.intervals(values, every)
        out += [Datagram(bytes(r), fleet.address(i), HES) for i, r in enumerate(rows)]
        if step == 1:
            fleet.set_clock_error(np.array([3]), 3600)
            utility = fleet.utility_meters
            for i, r in zip(
                utility.tolist(),
                encoder.utilities(values, utility, fleet.gas_index, fleet.water_index),
                strict=True,
            ):
                out.append(Datagram(bytes(r), fleet.address(i), HES))
            out.append(Datagram(encoder.event(5, START, 1, 0), fleet.address(5), HES))
    extra: list[Datagram] = []
    for d in rng.sample(out, 10):
        extra.append(d)  # duplicated (a replay, to the head-end)
    for d in rng.sample(out, 10):
        bad = bytearray(d.payload)
        bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
        extra.append(Datagram(bytes(bad), d.source, d.destination))
    other = Fleet.simple(meters, START, seed=seed + 100)  # same titles, other keys
    extra += [
        Datagram(bytes(r), other.address(i), HES)
        for i, r in enumerate(PushEncoder(other).intervals(other.advance(), np.arange(5)))
    ]
    extra.append(Datagram(b"\x00\x01" * 40, fleet.address(0), HES))  # 80 octets of nonsense
    extra.append(Datagram(b"", fleet.address(0), HES))
    # a communication unit swapped: the same meter now sends from a new address
    moved = Datagram(
        bytes(encoder.intervals(fleet.advance(), np.array([7]))[0]), ("127.1.9.9", 4059), HES
    )
    mixed = out + extra + [moved]
    rng.shuffle(mixed)
    return fleet, mixed


def _reads(batch: ReadBatch | None) -> list[tuple[int, int, int, int, int, int]]:
    if batch is None:
        return []
    return sorted(
        zip(
            batch.meter_id,
            batch.channel,
            batch.interval_end,
            batch.value_wh,
            batch.source,
            batch.status,
            strict=True,
        )
    )


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 64))
def test_batches_of_any_size_decide_as_one_by_one(seed: int, size: int) -> None:
    fleet, traffic = _traffic(seed)
    one_keys, batch_keys = provisioned_keys(fleet), provisioned_keys(fleet)
    one = Ingest(one_keys)
    for d in traffic:
        one.receive(d)
    many = PushBatchIngest(batch_keys)
    for start in range(0, len(traffic), size):
        part = traffic[start : start + size]
        many.receive(
            [d.payload for d in part],
            np.array([ip_to_int(d.source[0]) for d in part], dtype=np.uint32),
            np.array([d.source[1] for d in part], dtype=np.uint16),
            HES,
        )
    assert _reads(many.take()) == _reads(one.reads.take())
    assert dict(many.rejected) == dict(one.rejected)
    assert dict(many.accepted) == dict(one.accepted)
    assert many.ingest.events.take() == one.events.take()
    assert np.array_equal(batch_keys.last, one_keys.last)
    assert np.array_equal(batch_keys.ip, one_keys.ip)
    assert batch_keys.by_id(8).address == ("127.1.9.9", 4059)


def test_a_clean_interval_goes_entirely_through_the_columns() -> None:
    fleet = Fleet.simple(200, START, seed=3)
    keys = provisioned_keys(fleet)
    values = fleet.advance()
    rows = PushEncoder(fleet).intervals(values, np.arange(fleet.n, dtype=np.int64))
    ingest = PushBatchIngest(keys)
    ingest.receive(
        [bytes(r) for r in rows],
        np.array([ip_to_int(fleet.address(i)[0]) for i in range(fleet.n)], dtype=np.uint32),
        np.full(fleet.n, 4059, dtype=np.uint16),
        HES,
    )
    assert len(ingest) == 800 and len(ingest.ingest.reads) == 0
    batch = ingest.take()
    assert batch is not None and len(batch.meter_id) == 800
    assert batch.value_wh[2::4] == values.import_register.tolist()
    assert set(batch.interval_end) == {fleet.interval_end(values.number)}
    assert ingest.take() is None


@pytest.mark.parametrize("n", [0])
def test_an_empty_batch_is_nothing(n: int) -> None:
    fleet = Fleet.simple(2, START, seed=3)
    ingest = PushBatchIngest(provisioned_keys(fleet))
    ingest.receive([], np.zeros(n, np.uint32), np.zeros(n, np.uint16), HES)
    assert ingest.take() is None


def _fed(fleet: Fleet, traffic: list[Datagram], size: int) -> PushBatchIngest:
    ingest = PushBatchIngest(provisioned_keys(fleet))
    for start in range(0, len(traffic), size):
        part = traffic[start : start + size]
        ingest.receive(
            [d.payload for d in part],
            np.array([ip_to_int(d.source[0]) for d in part], dtype=np.uint32),
            np.array([d.source[1] for d in part], dtype=np.uint16),
            HES,
        )
    return ingest


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 64))
def test_reads_by_shard_are_the_one_batch_split_by_shard(seed: int, size: int) -> None:
    fleet, traffic = _traffic(seed, meters=40)
    whole = _fed(fleet, traffic, size).take()
    ingest = _fed(fleet, traffic, size)
    taken = ingest.take_by_shard()
    assert whole is not None and taken is not None
    assert taken.batches == split_by_shard(whole)
    assert list(taken.batches) == sorted(taken.batches)
    assert taken.reads == len(whole.meter_id)
    assert (taken.first_end, taken.last_end) == (min(whole.interval_end), max(whole.interval_end))
    imports = [
        end
        for end, channel in zip(whole.interval_end, whole.channel, strict=True)
        if channel == Channel.IMPORT_INTERVAL
    ]
    assert sorted(taken.import_ends.tolist()) == sorted(imports)
    assert ingest.take_by_shard() is None and ingest.take() is None


def test_co_metering_pushes_go_through_the_columns_too() -> None:
    fleet = Fleet.simple(300, START, seed=5)
    fleet.advance()
    values = fleet.advance()  # on the hour: gas and water indexes close
    utility = fleet.utility_meters
    rows = PushEncoder(fleet).utilities(values, utility, fleet.gas_index, fleet.water_index)
    keys = provisioned_keys(fleet)
    ingest = PushBatchIngest(keys)
    one_by_one: list[Datagram] = []
    ingest.ingest.receive = one_by_one.append  # type: ignore[method-assign,assignment]
    ingest.receive(
        [bytes(r) for r in rows],
        np.array([ip_to_int(fleet.address(int(i))[0]) for i in utility], dtype=np.uint32),
        np.full(utility.size, 4059, dtype=np.uint16),
        HES,
    )
    assert one_by_one == []  # none needed the general path
    assert ingest.accepted["utility"] == utility.size
    batch = ingest.take()
    assert batch is not None
    gas = [v for v, c in zip(batch.value_wh, batch.channel, strict=True) if c == 5]
    assert gas == fleet.gas_index[utility].tolist()
