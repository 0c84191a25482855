from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openami.bus.contract import Channel, ReadSource
from openami.errors import StoreError
from openami.store.lake import SHARD_METERS, IntervalLake, meter_chunks, meter_files, shard_of

DAY0 = int(datetime(2026, 8, 3, tzinfo=UTC).timestamp())
STEP = 1800

Read = tuple[int, int, int, int, int, int]  # meter_id, channel, interval_end, value, source, status
Identity = tuple[int, int, int]


def columns(reads: list[Read]) -> dict[str, list[int]]:
    names = ("meter_id", "channel", "interval_end", "value_wh", "source", "status")
    return {name: [r[i] for r in reads] for i, name in enumerate(names)}


def stored(lake: IntervalLake) -> list[Read]:
    con = lake.connect()
    try:
        rows = con.execute(
            "SELECT meter_id, channel, epoch(interval_end)::BIGINT, value_wh, source, status "
            "FROM interval_reads ORDER BY 1, 2, 3"
        ).fetchall()
    finally:
        con.close()
    return [(int(a), int(b), int(c), int(d), int(e), int(f)) for a, b, c, d, e, f in rows]


def identities(reads: list[Read]) -> list[Identity]:
    return [(r[0], r[1], r[2]) for r in reads]


def sample_reads(meters: int = 3, slots: int = 4) -> list[Read]:
    reads: list[Read] = []
    for m in range(1, meters + 1):
        for s in range(1, slots + 1):
            end = DAY0 + s * STEP
            reads.append((m, Channel.IMPORT_INTERVAL, end, 100 * m + s, ReadSource.PUSH, 0))
            reads.append((m, Channel.IMPORT_REGISTER, end, 10_000 * m + s, ReadSource.PUSH, 8))
    return reads


def test_append_writes_then_counts_duplicates(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    reads = sample_reads()
    first = lake.append(columns(reads))
    assert first.written == len(reads) == 24
    assert first.duplicates == 0
    second = lake.append(columns(reads))
    assert second.written == 0
    assert second.duplicates == len(reads)
    assert second.written_by_source == {}
    assert len(stored(lake)) == len(reads)


def test_an_empty_append_writes_nothing(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    result = lake.append(columns([]))
    assert (result.written, result.duplicates, result.written_by_source) == (0, 0, {})
    assert lake.files() == []


def test_a_partly_new_batch_writes_only_the_new_reads(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    reads = sample_reads()
    lake.append(columns(reads[:10]))
    result = lake.append(columns(reads))
    assert (result.written, result.duplicates) == (14, 10)
    assert stored(lake) == sorted(reads)


def test_duplicates_within_one_batch_are_stored_once(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    end = DAY0 + STEP
    reads: list[Read] = [
        (1, 1, end, 10, 1, 0),
        (2, 1, end, 20, 1, 0),
        (1, 1, end, 10, 1, 0),  # exact repeat
        (1, 1, end, 11, 2, 0),  # same identity, other value: the next version
        (1, 2, end, 30, 1, 0),  # same meter and end, other channel: distinct
        (1, 1, end + STEP, 40, 1, 0),  # same meter and channel, other end: distinct
    ]
    result = lake.append(columns(reads))
    assert (result.written, result.duplicates, result.conflicts) == (5, 1, 1)
    assert versions(lake, (1, 1, end)) == [(1, 10), (2, 11)]
    assert versions(lake, (2, 1, end)) == [(1, 20)]


def versions(lake: IntervalLake, identity: Identity) -> list[tuple[int, int]]:
    con = lake.connect()
    try:
        rows = con.execute(
            "SELECT version, value_wh FROM interval_reads WHERE meter_id = ? AND channel = ? "
            "AND epoch(interval_end)::BIGINT = ? ORDER BY version",
            list(identity),
        ).fetchall()
    finally:
        con.close()
    return [(int(v), int(w)) for v, w in rows]


def test_another_value_later_is_kept_as_the_next_version(tmp_path: Path) -> None:
    """A meter that says two things about one interval: both are kept, the later as
    version 2; the first copy delivered again is a duplicate, not a third version."""
    end = DAY0 + STEP
    lake = IntervalLake(tmp_path)
    lake.append(columns([(1, 1, end, 10, 1, 0)]))
    second = lake.append(columns([(1, 1, end, 12, 2, 0)]))
    assert (second.written, second.conflicts) == (1, 1)
    again = IntervalLake(tmp_path).append(columns([(1, 1, end, 10, 1, 0), (1, 1, end, 12, 1, 0)]))
    assert (again.written, again.duplicates) == (0, 2)
    third = IntervalLake(tmp_path).append(columns([(1, 1, end, 13, 1, 0)]))
    assert (third.written, third.conflicts) == (1, 1)
    assert versions(lake, (1, 1, end)) == [(1, 10), (2, 12), (3, 13)]


def test_the_index_keeps_only_recent_days_and_reloads_the_others(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path, index_days=1)
    first = [(1, 1, DAY0 + STEP, 5, 1, 0)]
    lake.append(columns(first))
    lake.append(columns([(1, 1, DAY0 + 86_400 + STEP, 6, 1, 0)]))  # the first day is dropped
    assert all(end >= DAY0 + 86_400 for end in lake._index)
    assert lake.append(columns(first)).duplicates == 1  # reloaded from its files


def test_reads_go_to_the_shard_of_their_meter(tmp_path: Path) -> None:
    from openami.store.lake import SHARD_METERS

    lake = IntervalLake(tmp_path)
    end = DAY0 + STEP
    lake.append(columns([(5, 1, end, 1, 1, 0), (SHARD_METERS + 5, 1, end, 2, 1, 0)]))
    day = datetime.fromtimestamp(DAY0, tz=UTC).date()
    assert [f.parent.name for f in lake.day_files(day)] == ["shard=00000", "shard=00001"]
    only = lake.day_files(day, (SHARD_METERS, 2 * SHARD_METERS - 1))
    assert [f.parent.name for f in only] == ["shard=00001"]
    assert lake.days() == [day]


def test_a_new_lake_on_the_same_folder_still_refuses_duplicates(tmp_path: Path) -> None:
    reads = sample_reads()
    # Two UTC days, so the reloaded index comes from more than one partition.
    reads += [(9, 1, DAY0 + 86_400 + STEP, 5, 1, 0), (9, 1, DAY0 + 86_400 + 2 * STEP, 6, 1, 0)]
    assert IntervalLake(tmp_path).append(columns(reads)).written == len(reads)

    restarted = IntervalLake(tmp_path)
    result = restarted.append(columns(reads))
    assert result.written == 0
    assert result.duplicates == len(reads)

    fresh: list[Read] = [(4, 1, DAY0 + STEP, 1, 1, 0), (9, 1, DAY0 + 86_400 + 3 * STEP, 7, 1, 0)]
    again = IntervalLake(tmp_path).append(columns(reads[:5] + fresh))
    assert (again.written, again.duplicates) == (2, 5)
    assert stored(IntervalLake(tmp_path)) == sorted(reads + fresh)


def test_written_by_source_counts_only_what_was_written(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    end = DAY0 + STEP
    push, recollect = int(ReadSource.PUSH), int(ReadSource.RECOLLECT)
    first = lake.append(
        columns([(1, 1, end, 1, push, 0), (2, 1, end, 1, push, 0), (3, 1, end, 1, recollect, 0)])
    )
    assert first.written_by_source == {push: 2, recollect: 1}
    second = lake.append(
        columns(
            [
                (1, 1, end, 1, recollect, 0),  # duplicate of a push
                (4, 1, end, 1, recollect, 0),
                (5, 1, end, 1, recollect, 0),
                (6, 1, end, 1, push, 0),
            ]
        )
    )
    assert second.written_by_source == {recollect: 2, push: 1}
    assert sum(second.written_by_source.values()) == second.written == 3


def test_no_temporary_files_remain(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    reads = sample_reads()
    lake.append(columns(reads[:7]))
    lake.append(columns(reads))
    lake.append(columns([(1, 1, DAY0 + 86_400 + STEP, 1, 1, 0)]))
    # beside the Parquet files only each shard folder's lock (store/shard_files)
    everything = [p for p in tmp_path.rglob("*") if p.name != ".lock"]
    assert [p for p in everything if p.name.startswith(".")] == []
    assert len(lake.files()) == 3
    assert all(p.suffix == ".parquet" for p in everything if p.is_file())


def test_reads_spanning_two_utc_days_land_in_two_day_folders(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    late = DAY0 + 86_400 - STEP  # 2026-08-03 23:30 UTC
    early = DAY0 + 86_400 + STEP  # 2026-08-04 00:30 UTC
    lake.append(columns([(1, 1, late, 1, 1, 0), (1, 1, early, 2, 1, 0), (2, 1, late, 3, 1, 0)]))
    folders = sorted(p.name for p in lake.reads_dir.iterdir())
    assert folders == ["day=2026-08-03", "day=2026-08-04"]
    con = lake.connect()
    try:
        per_file = con.execute(
            "SELECT filename, count(*) FROM read_parquet(?, filename = true) GROUP BY 1 ORDER BY 1",
            [[f.as_posix() for f in lake.files()]],
        ).fetchall()
    finally:
        con.close()
    assert [(Path(name).parent.parent.name, n) for name, n in per_file] == [
        ("day=2026-08-03", 2),
        ("day=2026-08-04", 1),
    ]


def test_the_duckdb_view_returns_the_stored_values_exactly(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    reads: list[Read] = [
        (1, 1, DAY0 + STEP, 0, 1, 0),
        (1, 3, DAY0 + STEP, 2**40 + 3, 1, 0x7FFF),
        (2**40 - 1, 15, DAY0 + 2 * STEP, -5, 2, 1),
        (3, 0, DAY0 + 86_400 + 7, 123_456_789, 2, 0x80),
    ]
    lake.append(columns(reads))
    assert stored(lake) == sorted(reads)
    con = lake.connect()
    try:
        version, received = con.execute(
            "SELECT min(version), count(received_at) FROM interval_reads"
        ).fetchone() or (None, None)
        columns_seen = [row[0] for row in con.execute("DESCRIBE interval_reads").fetchall()]
    finally:
        con.close()
    assert version == 1
    assert received == len(reads)
    assert columns_seen == [
        "meter_id",
        "channel",
        "interval_end",
        "value_wh",
        "version",
        "source",
        "status",
        "received_at",
    ]


def test_an_empty_lake_has_an_empty_table_shaped_like_the_view(tmp_path: Path) -> None:
    empty = IntervalLake(tmp_path / "empty")
    con = empty.connect()
    try:
        assert con.execute("SELECT count(*) FROM interval_reads").fetchone() == (0,)
        empty_shape = con.execute("DESCRIBE interval_reads").fetchall()
    finally:
        con.close()
    full = IntervalLake(tmp_path / "full")
    full.append(columns(sample_reads(1, 1)))
    con = full.connect()
    try:
        full_shape = con.execute("DESCRIBE interval_reads").fetchall()
    finally:
        con.close()
    assert [row[:2] for row in empty_shape] == [row[:2] for row in full_shape]


@pytest.mark.parametrize("channel", [-1, 16, 255])
def test_a_channel_outside_0_to_15_is_refused(tmp_path: Path, channel: int) -> None:
    lake = IntervalLake(tmp_path)
    with pytest.raises(StoreError, match="channel"):
        lake.append(columns([(1, 1, DAY0 + STEP, 1, 1, 0), (1, channel, DAY0 + STEP, 1, 1, 0)]))
    assert lake.files() == []


@pytest.mark.parametrize("channel", [0, 15])
def test_channels_0_and_15_are_accepted(tmp_path: Path, channel: int) -> None:
    lake = IntervalLake(tmp_path)
    assert lake.append(columns([(1, channel, DAY0 + STEP, 1, 1, 0)])).written == 1
    assert identities(stored(lake)) == [(1, channel, DAY0 + STEP)]


def test_a_lake_that_cannot_be_created_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(StoreError):
        IntervalLake(blocker / "lake")


raw_reads = st.lists(
    st.tuples(
        st.integers(1, 50),  # meter_id
        st.integers(1, 4),  # channel
        st.integers(1, 3 * 48),  # interval slot over three days
        st.integers(0, 5_000),  # value_wh
        st.sampled_from([int(ReadSource.PUSH), int(ReadSource.RECOLLECT)]),
    ),
    max_size=120,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_reads, st.data())
def test_stored_reads_are_the_distinct_reads_in_versions_of_arrival(
    raw: list[tuple[int, int, int, int, int]], data: st.DataObject
) -> None:
    reads: list[Read] = [(m, c, DAY0 + slot * STEP, v, s, 0) for m, c, slot, v, s in raw]
    if reads:
        # Repeat some reads so that duplicates within and across chunks are common.
        reads += data.draw(st.lists(st.sampled_from(reads), max_size=40), label="repeats")
        reads = data.draw(st.permutations(reads), label="order")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(reads)), max_size=5), label="cuts"))
    restarts = data.draw(st.lists(st.booleans(), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    index_days = data.draw(st.integers(1, 3), label="index_days")
    # what must be stored: each distinct value of an identity, numbered in arrival order
    expected: dict[Identity, list[int]] = {}
    for r in reads:
        seen = expected.setdefault((r[0], r[1], r[2]), [])
        if r[3] not in seen:
            seen.append(r[3])
    distinct = sum(len(v) for v in expected.values())

    with tempfile.TemporaryDirectory() as folder:
        lake = IntervalLake(Path(folder), index_days=index_days)
        written = duplicates = conflicts = 0
        by_source: Counter[int] = Counter()
        for lo, hi, restart in zip([0, *cuts], [*cuts, len(reads)], restarts, strict=True):
            if restart:
                lake = IntervalLake(Path(folder), index_days=index_days)
            result = lake.append(columns(reads[lo:hi]))
            written += result.written
            duplicates += result.duplicates
            conflicts += result.conflicts
            by_source.update(result.written_by_source)
        rows = stored(lake)
        con = lake.connect()
        try:
            got = con.execute(
                "SELECT meter_id, channel, epoch(interval_end)::BIGINT, version, value_wh "
                "FROM interval_reads ORDER BY 1, 2, 3, 4"
            ).fetchall()
        finally:
            con.close()

    assert written == len(rows) == distinct
    assert duplicates == len(reads) - distinct
    assert conflicts == distinct - len(expected)
    numbered: dict[Identity, list[int]] = {}
    for m, c, e, version, value in got:
        numbered.setdefault((m, c, e), []).append(int(value))
        assert version == len(numbered[(m, c, e)])
    assert numbered == expected
    assert by_source == Counter(r[4] for r in rows)


def test_meter_ids_beyond_the_packed_identity_are_refused(tmp_path: Path) -> None:
    from openami.store.lake import MAX_METER_ID

    lake = IntervalLake(tmp_path)
    with pytest.raises(StoreError, match="meter_id"):
        lake.append(
            {
                "meter_id": [MAX_METER_ID],
                "channel": [1],
                "interval_end": [DAY0 + STEP],
                "value_wh": [1],
                "source": [1],
                "status": [0],
            }
        )
    assert lake.files() == []


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(st.integers(0, 5 * SHARD_METERS), max_size=300, unique=True).map(sorted),
    most=st.integers(1, 120),
)
def test_meter_chunks_cover_the_meters_in_order_within_one_shard(ids: list[int], most: int) -> None:
    chunks = meter_chunks(np.asarray(ids, dtype=np.int64), most)
    # every meter once, in order
    assert [i for lo, hi in chunks for i in ids[lo:hi]] == ids
    for lo, hi in chunks:
        assert 0 < hi - lo <= most
        assert shard_of(ids[lo]) == shard_of(ids[hi - 1])
    # cut only where it must be: at a shard boundary, or where the chunk is full
    for (lo, hi), (nxt, _) in itertools.pairwise(chunks):
        assert hi == nxt
        assert hi - lo == most or shard_of(ids[hi - 1]) != shard_of(ids[hi])


def test_a_fleet_numbered_from_one_is_cut_at_the_shards() -> None:
    ids = np.arange(1, 3 * SHARD_METERS + 1, dtype=np.int64)
    chunks = meter_chunks(ids, SHARD_METERS)
    assert chunks == [
        (0, SHARD_METERS - 1),
        (SHARD_METERS - 1, 2 * SHARD_METERS - 1),
        (2 * SHARD_METERS - 1, 3 * SHARD_METERS - 1),
        (3 * SHARD_METERS - 1, 3 * SHARD_METERS),
    ]
    with pytest.raises(ValueError, match="at least one meter"):
        meter_chunks(ids, 0)


def test_meter_files_chooses_by_statistics(tmp_path: Path) -> None:
    """Files are chosen by their row groups' meter-id statistics; a range covering every
    chosen file's ids needs no filter."""
    paths = []
    for name, ids in (("a", [1, 2, 3, 4]), ("b", [5, 6, 7, 8]), ("c", [9, 10, 11, 12])):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({"meter_id": pa.array(ids, pa.int64())}), path, row_group_size=2)
        paths.append(path)
    a, b, c = paths
    assert meter_files(paths, 10, 40) == ([c], False)
    assert meter_files(paths, 5, 8) == ([b], True)
    assert meter_files(paths, 3, 6) == ([a, b], False)
    assert meter_files(paths, 1, 12) == (paths, True)
    assert meter_files(paths, 7, 7) == ([b], False)
    assert meter_files(paths, 20, 30) == ([], True)
    assert meter_files(paths, 3, 4) == ([a], False)  # a's second row group holds only 3, 4


def test_meter_files_names_a_file_it_cannot_read(tmp_path: Path) -> None:
    broken = tmp_path / "part-broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(StoreError, match=r"part-broken\.parquet"):
        meter_files([broken], 1, 10)
