from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from openami.bus.contract import (
    SUBJECT_READS,
    Channel,
    CollectRequest,
    ReadBatch,
    ReadSource,
    encode_message,
)
from openami.bus.memory import MemoryBus
from openami.errors import StoreError
from openami.mdm.ingest import ReadIngest
from openami.store.lake import IntervalLake

DAY0 = int(datetime(2026, 8, 3, tzinfo=UTC).timestamp())
STEP = 1800


def batch(meters: range, slots: range, source: ReadSource = ReadSource.PUSH) -> ReadBatch:
    cols: dict[str, list[int]] = {k: [] for k in ReadBatch.__struct_fields__}
    for m in meters:
        for s in slots:
            for channel in (Channel.IMPORT_INTERVAL, Channel.IMPORT_REGISTER):
                cols["meter_id"].append(m)
                cols["channel"].append(int(channel))
                cols["interval_end"].append(DAY0 + s * STEP)
                cols["value_wh"].append(m * 1000 + s)
                cols["source"].append(int(source))
                cols["status"].append(0)
    return ReadBatch(**cols)


def stored_rows(lake: IntervalLake) -> list[tuple[int, int, int, int, int]]:
    con = lake.connect()
    try:
        rows = con.execute(
            "SELECT meter_id, channel, epoch(interval_end)::BIGINT, value_wh, source "
            "FROM interval_reads ORDER BY 1, 2, 3"
        ).fetchall()
    finally:
        con.close()
    return [(int(a), int(b), int(c), int(d), int(e)) for a, b, c, d, e in rows]


def expected_rows(b: ReadBatch) -> list[tuple[int, int, int, int, int]]:
    return sorted(zip(b.meter_id, b.channel, b.interval_end, b.value_wh, b.source, strict=True))


@pytest.fixture
def lake(tmp_path: Path) -> IntervalLake:
    return IntervalLake(tmp_path / "lake")


def test_poll_stores_a_batch_and_acks_it(lake: IntervalLake) -> None:
    bus = MemoryBus()
    subscription = bus.subscribe(SUBJECT_READS)
    ingest = ReadIngest(lake, subscription)
    reads = batch(range(1, 4), range(1, 5))
    bus.publish(SUBJECT_READS, encode_message(reads))

    assert ingest.poll() == 24
    assert subscription.pending() == 0
    assert subscription.redeliver_unacked() == 0
    assert stored_rows(lake) == expected_rows(reads)
    assert ingest.batches == 1
    assert ingest.duplicates == 0
    assert ingest.poll() == 0


def test_poll_takes_several_batches(lake: IntervalLake) -> None:
    bus = MemoryBus()
    subscription = bus.subscribe(SUBJECT_READS)
    ingest = ReadIngest(lake, subscription)
    first, second = batch(range(1, 3), range(1, 3)), batch(range(3, 5), range(1, 3))
    bus.publish(SUBJECT_READS, encode_message(first))
    bus.publish(SUBJECT_READS, encode_message(second))
    assert ingest.poll(limit=1) == 8
    assert subscription.pending() == 1
    assert ingest.poll() == 8
    assert subscription.pending() == 0
    assert stored_rows(lake) == sorted(expected_rows(first) + expected_rows(second))


def test_the_same_batch_twice_is_stored_once(lake: IntervalLake) -> None:
    bus = MemoryBus()
    subscription = bus.subscribe(SUBJECT_READS)
    ingest = ReadIngest(lake, subscription)
    reads = batch(range(1, 3), range(1, 4))
    data = encode_message(reads)
    bus.publish(SUBJECT_READS, data)
    bus.publish(SUBJECT_READS, data)

    assert ingest.poll() == 12
    assert ingest.batches == 2
    assert ingest.duplicates == 12
    assert ingest.stored == Counter({ReadSource.PUSH: 12})
    assert stored_rows(lake) == expected_rows(reads)
    assert subscription.pending() == 0


def test_a_redelivery_after_a_crash_is_absorbed(lake: IntervalLake, tmp_path: Path) -> None:
    bus = MemoryBus()
    subscription = bus.subscribe(SUBJECT_READS)
    reads = batch(range(1, 3), range(1, 3))
    bus.publish(SUBJECT_READS, encode_message(reads))
    # A consumer that stored the batch but crashed before acknowledging it.
    (message,) = subscription.fetch()
    ReadIngest(lake, subscription).ingest(reads)
    assert subscription.redeliver_unacked() == 1
    # The restarted consumer gets it again; the lake (reopened) absorbs it.
    restarted = ReadIngest(IntervalLake(tmp_path / "lake"), subscription)
    assert restarted.poll() == 0
    assert restarted.duplicates == 8
    assert subscription.pending() == 0
    assert stored_rows(lake) == expected_rows(reads)
    assert message.acked


def test_stored_counts_are_attributed_to_the_read_source(lake: IntervalLake) -> None:
    bus = MemoryBus()
    subscription = bus.subscribe(SUBJECT_READS)
    ingest = ReadIngest(lake, subscription)
    pushed = batch(range(1, 3), range(1, 4), ReadSource.PUSH)  # 12 reads
    # Recollected: overlaps the pushed meter 2 (6 duplicates) and adds meter 3 (6 new).
    recollected = batch(range(2, 4), range(1, 4), ReadSource.RECOLLECT)
    bus.publish(SUBJECT_READS, encode_message(pushed))
    bus.publish(SUBJECT_READS, encode_message(recollected))

    assert ingest.poll() == 18
    assert ingest.stored == Counter({ReadSource.PUSH: 12, ReadSource.RECOLLECT: 6})
    assert all(isinstance(source, ReadSource) for source in ingest.stored)
    assert ingest.duplicates == 6
    sources = Counter(row[4] for row in stored_rows(lake))
    assert sources == Counter({int(ReadSource.PUSH): 12, int(ReadSource.RECOLLECT): 6})


def test_a_collect_request_on_the_reads_subject_is_acked_and_ignored(lake: IntervalLake) -> None:
    bus = MemoryBus()
    subscription = bus.subscribe(SUBJECT_READS)
    ingest = ReadIngest(lake, subscription)
    bus.publish(SUBJECT_READS, encode_message(CollectRequest(1, DAY0, DAY0 + STEP, "r1")))
    assert ingest.poll() == 0
    assert ingest.batches == 0
    assert subscription.pending() == 0
    assert lake.files() == []


def test_a_batch_the_lake_refuses_is_not_acked(lake: IntervalLake) -> None:
    bus = MemoryBus()
    subscription = bus.subscribe(SUBJECT_READS)
    ingest = ReadIngest(lake, subscription)
    bad = ReadBatch([1], [99], [DAY0 + STEP], [1], [int(ReadSource.PUSH)], [0])
    bus.publish(SUBJECT_READS, encode_message(bad))
    with pytest.raises(StoreError):
        ingest.poll()
    assert subscription.pending() == 1
    assert subscription.redeliver_unacked() == 1


def test_undecodable_and_unknown_source_messages_are_dead_lettered_not_blocking(
    tmp_path: Path,
) -> None:
    bus = MemoryBus()
    ingest = ReadIngest(IntervalLake(tmp_path), bus.subscribe(SUBJECT_READS))
    bad_source = batch(range(1, 2), range(1, 2))
    bad_source = ReadBatch(
        **{**{f: getattr(bad_source, f) for f in ReadBatch.__struct_fields__}, "source": [9, 9]}
    )
    bus.publish(SUBJECT_READS, b"\xc1 not msgpack")
    bus.publish(SUBJECT_READS, encode_message(bad_source))
    bus.publish(SUBJECT_READS, encode_message(batch(range(1, 3), range(1, 3))))
    assert ingest.poll() == 8  # the good batch behind the bad ones is stored
    assert len(ingest.dead_letters) == 2
    assert ingest.dead_letters[0] == b"\xc1 not msgpack"
    assert ingest.subscription.pending() == 0
    assert ingest.lake.connect().execute("SELECT count(*) FROM interval_reads").fetchone() == (8,)


def test_a_second_value_from_the_bus_is_kept_and_vee_flags_the_conflict(
    lake: IntervalLake, tmp_path: Path
) -> None:
    """A meter that sends another value for an interval it already sent: the lake keeps
    both (the later as version 2) and VEE's conflict rule flags the interval."""
    import polars as pl

    from openami.mdm.vee.flags import Quality
    from openami.mdm.vee.run import run_day
    from openami.store.validated import ValidatedStore

    bus = MemoryBus()
    ingest = ReadIngest(lake, bus.subscribe(SUBJECT_READS, durable="mdm"))
    first = batch(range(1, 3), range(1, 49))
    bus.publish(SUBJECT_READS, encode_message(first))
    ingest.poll()
    changed = list(first.value_wh)
    changed[40] += 7  # meter 1, import interval of slot 21: another value
    columns = {f: getattr(first, f) for f in ReadBatch.__struct_fields__}
    bus.publish(SUBJECT_READS, encode_message(ReadBatch(**{**columns, "value_wh": changed})))
    bus.publish(SUBJECT_READS, encode_message(first))  # and the first copy again
    ingest.poll()
    assert (ingest.duplicates, ingest.conflicts) == (2 * len(first.meter_id) - 1, 1)
    day = datetime.fromtimestamp(DAY0, tz=UTC).date()
    store = ValidatedStore(lake.root)
    run_day(lake, store, day, pl.DataFrame({"meter_id": [1, 2]}), now=DAY0 + 2 * 86_400)
    rows = store.current(day).filter((pl.col("flags").cast(pl.Int64) & int(Quality.CONFLICT)) != 0)
    assert rows.select("meter_id", "interval_end").rows() == [(1, first.interval_end[40])]
