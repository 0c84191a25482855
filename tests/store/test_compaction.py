"""Compaction of the raw lake: the same rows before and after, each read once at every
moment, the superseded files removed only after the grace, nothing lost to a crash or to
a writer appending while compaction runs."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.store.compaction import BackgroundCompactor, compact_day
from openami.store.lake import SHARD_METERS, IntervalLake
from openami.store.shard_files import listing, locked, next_stamp, record_upto, stamp_of

from .test_lake import DAY0, STEP, Read, columns, stored, versions

DAY = date(2026, 8, 3)
NOW = timedelta(0)


def _small_appends(lake: IntervalLake, batches: int = 12) -> list[Read]:
    """Reads of two shards in many small appends, with redeliveries and a second value."""
    reads: list[Read] = []
    for b in range(batches):
        for meter in (5 + b, SHARD_METERS + 7 + b):
            for s in range(1, 5):
                reads.append((meter, 1, DAY0 + s * STEP, 10 * b + s, 1, 0))
        lake.append(columns(reads[-8:]))
        lake.append(columns(reads[-8:-4]))  # redelivered: duplicates, nothing written
    lake.append(columns([(5, 1, DAY0 + STEP, 999, 3, 0)]))  # another value: version 2
    return reads


def _all_rows(lake: IntervalLake) -> list[tuple[object, ...]]:
    con = lake.connect()
    try:
        return con.execute("SELECT * FROM interval_reads ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_compaction_keeps_every_row_and_leaves_one_file_per_shard(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    _small_appends(lake)
    before = _all_rows(lake)
    assert len(lake.day_files(DAY)) == 2 * 12 + 1
    report = compact_day(lake, DAY, grace=NOW)
    assert (report.shards, report.compacted, report.files_before) == (2, 2, 25)
    assert report.rows == len(before) == 2 * 12 * 4 + 1
    assert report.removed == 25
    files = lake.day_files(DAY)
    assert [f.name.split("-")[0] for f in files] == ["compact", "compact"]
    assert _all_rows(lake) == before  # every column of every row, versions included
    assert versions(lake, (5, 1, DAY0 + STEP)) == [(1, 1), (2, 999)]
    # sorted by meter, channel, interval end and version inside
    table = pq.read_table(files[0], partitioning=None)
    keys = list(
        zip(*(table.column(c).to_pylist() for c in ("meter_id", "interval_end")), strict=True)
    )
    assert keys == sorted(keys)


def test_a_new_lake_still_refuses_duplicates_after_compaction(tmp_path: Path) -> None:
    reads = _small_appends(IntervalLake(tmp_path))
    compact_day(IntervalLake(tmp_path), DAY, grace=NOW)
    again = IntervalLake(tmp_path).append(columns(reads))
    assert (again.written, again.duplicates) == (0, len(reads))


def test_reads_arriving_after_compaction_are_seen_and_folded_in_next_time(
    tmp_path: Path,
) -> None:
    lake = IntervalLake(tmp_path)
    _small_appends(lake)
    compact_day(lake, DAY, grace=NOW)
    late = (6, 1, DAY0 + 10 * STEP, 77, 2, 0)
    assert lake.append(columns([late])).written == 1
    assert late in stored(lake)
    assert len(lake.day_files(DAY, (0, SHARD_METERS - 1))) == 2  # the compact file, the part
    report = compact_day(lake, DAY, grace=NOW)
    assert (report.compacted, report.files_before) == (1, 2)  # the other shard is done
    assert len(lake.day_files(DAY)) == 2
    assert late in stored(lake)


def test_within_the_grace_the_old_files_stay_but_each_read_is_seen_once(
    tmp_path: Path,
) -> None:
    lake = IntervalLake(tmp_path)
    _small_appends(lake)
    before = _all_rows(lake)
    report = compact_day(lake, DAY)  # the default grace: a reader may still be on them
    assert report.removed == 0
    on_disk = sorted(tmp_path.rglob("*.parquet"))
    assert len(on_disk) == 25 + 2
    assert _all_rows(lake) == before
    # later: the next pass removes what the compact files hold
    for folder in lake.shard_folders(DAY):
        for _, path in listing(folder).compacts:
            old = time.time() - 3600
            os.utime(path, (old, old))
    assert compact_day(lake, DAY).removed == 25
    assert len(sorted(tmp_path.rglob("*.parquet"))) == 2
    assert _all_rows(lake) == before


def test_a_compaction_that_died_before_its_rename_left_nothing_visible(
    tmp_path: Path,
) -> None:
    lake = IntervalLake(tmp_path)
    _small_appends(lake)
    before = _all_rows(lake)
    folder = lake.shard_folders(DAY)[0]
    (folder / ".compact-half-written.parquet.1234.tmp").write_bytes(b"PAR1 half")
    record_upto(folder, stamp_of(datetime.now(UTC)))  # it had recorded its UPTO, no more
    assert _all_rows(lake) == before
    assert compact_day(lake, DAY, grace=NOW).compacted == 2
    assert _all_rows(lake) == before


def test_a_writer_whose_clock_stepped_back_names_after_the_compacted_stamp(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "shard=00000"
    folder.mkdir()
    upto = stamp_of(datetime(2026, 8, 4, 12, tzinfo=UTC))
    record_upto(folder, upto)
    earlier = datetime(2026, 8, 4, 11, tzinfo=UTC)
    assert next_stamp(folder, earlier) > upto
    later = datetime(2026, 8, 4, 13, tzinfo=UTC)
    assert next_stamp(folder, later) == stamp_of(later)


def test_appends_while_compaction_runs_lose_nothing_and_double_nothing(
    tmp_path: Path,
) -> None:
    lake = IntervalLake(tmp_path)
    written: list[Read] = []
    stop = threading.Event()

    def writer() -> None:
        own = IntervalLake(tmp_path)  # as another process would: its own index
        n = 0
        while not stop.is_set() and n < 400:
            batch = [(1 + n % 50, 1, DAY0 + (1 + n // 50) * STEP, n, 1, 0)]
            own.append(columns(batch))
            written.extend(batch)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 30.0  # bounded whatever happens
    passes = 0
    while thread.is_alive() and time.monotonic() < deadline:
        compact_day(lake, DAY, grace=NOW)
        passes += 1
    stop.set()
    thread.join(timeout=30.0)
    compact_day(lake, DAY, grace=NOW)
    assert passes > 1
    assert sorted(stored(lake)) == sorted(written)
    assert len(lake.day_files(DAY)) == 1


@settings(max_examples=25, deadline=None)
@given(
    plan=st.lists(
        st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(0, 3), st.booleans()),
        min_size=1,
        max_size=30,
    )
)
def test_any_mix_of_appends_and_compactions_reads_the_same(
    plan: list[tuple[int, int, int, bool]],
) -> None:
    """Appends (meter, slot, value) interleaved with compactions at random: the lake reads
    as a lake that was never compacted."""
    import tempfile

    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        plain, compacted = IntervalLake(Path(a)), IntervalLake(Path(b))
        for meter, slot, value, compact in plan:
            read = [(meter, 1, DAY0 + slot * STEP, value, 1, 0)]
            assert plain.append(columns(read)) == compacted.append(columns(read))
            if compact:
                compact_day(compacted, DAY, grace=NOW, min_files=1)
        assert _all_rows_but_arrival(plain) == _all_rows_but_arrival(compacted)


def _all_rows_but_arrival(lake: IntervalLake) -> list[tuple[object, ...]]:
    con = lake.connect()
    try:
        return con.execute(
            "SELECT * EXCLUDE (received_at) FROM interval_reads ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()


def test_the_background_compactor_compacts_in_its_own_thread(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    before = _small_appends(lake)
    compactor = BackgroundCompactor(lake, grace=NOW)
    assert compactor.start([DAY])
    assert compactor.join(30.0)
    assert compactor.compacted == 2 and compactor.errors == []
    assert sorted(stored(lake)) == sorted(set(stored(lake))) and len(lake.day_files(DAY)) == 2
    assert {r[:3] for r in before} <= {r[:3] for r in stored(lake)}
    assert not compactor.start([])  # nothing to do: no thread


def test_a_pass_asked_for_while_one_runs_is_skipped_and_errors_are_kept(
    tmp_path: Path,
) -> None:
    lake = IntervalLake(tmp_path)
    _small_appends(lake)
    folder = lake.shard_folders(DAY)[0]
    broken = folder / f"part-{stamp_of(datetime.now(UTC))}-0badf11e.parquet"
    broken.write_bytes(b"PAR1 not parquet")
    compactor = BackgroundCompactor(lake, grace=NOW)
    # hold the folder's lock shared so that the pass waits; ask for a second meanwhile
    with locked(folder, exclusive=False):
        assert compactor.start([DAY])
        assert not compactor.start([DAY])  # still running: skipped
    assert compactor.join(30.0)
    assert len(compactor.errors) == 1 and "cannot read" in compactor.errors[0]
    assert compactor.compacted == 1  # the other shard's folder
    assert broken.exists()  # the folder it could not read is as it was
