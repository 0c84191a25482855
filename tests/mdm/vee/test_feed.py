"""Reading a chunk's raw reads from the lake into the grid (``vee.run.feed_lake``): the same
grid as the reads handed to the builder directly, after the definition's own selection
(the chunk's meters; the day's reads and, of the day before, only the interval ending at
00:00), whichever shards and days the lake's files hold."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from openami.errors import StoreError
from openami.mdm.vee.grid import GridBuilder, GridInfo
from openami.mdm.vee.run import feed_lake
from openami.store.lake import READ_SCHEMA, SHARD_METERS, IntervalLake
from openami.store.validated import day_start

DAY = date(2026, 8, 3)
INFO = GridInfo(day_start(DAY), 1800, 48)


def _reads(seed: int) -> dict[str, np.ndarray]:
    """Reads of meters on both sides of a shard boundary, over the day before, the day
    and the day after, every fourth one received early (its stamp ahead of receipt)."""
    rng = np.random.default_rng(seed)
    meters = np.array([SHARD_METERS - 2, SHARD_METERS - 1, SHARD_METERS, SHARD_METERS + 3])
    ends = INFO.day0 + 1800 * np.arange(-48, 2 * 48 + 1)
    m, e, c = np.meshgrid(meters, ends, np.arange(1, 5), indexing="ij")
    n = m.size
    keep = rng.random(n) < 0.9  # some reads never arrived
    received = e.ravel() + rng.integers(-600, 3600, n)
    columns = {
        "meter_id": m.ravel(),
        "channel": c.ravel(),
        "interval_end": e.ravel(),
        "value_wh": rng.integers(0, 900, n),
        "version": rng.integers(1, 3, n),
        "source": np.ones(n, dtype=np.int64),
        "status": rng.choice([0, 0, 0, 0x02, 0x80], n),
        "received_at": received * 1000,
    }
    order = rng.permutation(int(keep.sum()))  # arrival order, not meter order
    return {name: values[keep][order] for name, values in columns.items()}


def _table(reads: dict[str, np.ndarray]) -> pa.Table:
    return pa.table(
        {
            "meter_id": pa.array(reads["meter_id"], pa.int64()),
            "channel": pa.array(reads["channel"], pa.int8()),
            "interval_end": pa.array(reads["interval_end"], pa.int64()).cast(
                pa.timestamp("s", tz="UTC")
            ),
            "value_wh": pa.array(reads["value_wh"], pa.int64()),
            "version": pa.array(reads["version"], pa.int16()),
            "source": pa.array(reads["source"], pa.int8()),
            "status": pa.array(reads["status"], pa.int16()),
            "received_at": pa.array(reads["received_at"], pa.int64()).cast(
                pa.timestamp("ms", tz="UTC")
            ),
        },
        schema=READ_SCHEMA,
    )


@pytest.mark.parametrize(("lo", "hi"), [(SHARD_METERS - 2, SHARD_METERS - 1), (1, 10**6)])
def test_the_lake_gives_the_grid_of_the_chosen_reads(tmp_path: Path, lo: int, hi: int) -> None:
    reads = _reads(seed=lo)
    lake = IntervalLake(tmp_path)
    lake.load_unchecked(_table(reads))
    ids = np.unique(reads["meter_id"][(reads["meter_id"] >= lo) & (reads["meter_id"] <= hi)])

    from_lake = GridBuilder(ids, INFO)
    feed_lake(from_lake, lake, DAY, lo, hi)

    opening = INFO.day0 - INFO.step_s
    day = reads["interval_end"] // 86_400 == INFO.day0 // 86_400
    chosen = (
        (reads["meter_id"] >= lo)
        & (reads["meter_id"] <= hi)
        & (day | (reads["interval_end"] == opening))
    )
    direct = GridBuilder(ids, INFO)
    direct.add(
        reads["meter_id"][chosen],
        reads["channel"][chosen],
        reads["interval_end"][chosen],
        reads["value_wh"][chosen],
        version=reads["version"][chosen],
        status=reads["status"][chosen],
        received_at=reads["received_at"][chosen] // 1000,
    )
    # the lake's files are in (day, shard) order, not arrival order: where copies of a
    # read disagree on value at equal versions, which came first differs, so the reads
    # here have one copy each and the grids must be equal
    assert from_lake.reads == direct.reads > 0
    assert_frame_equal(from_lake.frame(), direct.frame())


def test_a_raw_read_without_a_value_is_refused(tmp_path: Path) -> None:
    reads = _reads(seed=3)
    table = _table(reads)
    values = table.column("value_wh").to_pylist()
    on_the_day = np.flatnonzero(reads["interval_end"] // 86_400 == INFO.day0 // 86_400)
    values[int(on_the_day[0])] = None
    table = table.set_column(3, READ_SCHEMA.field("value_wh"), pa.array(values, pa.int64()))
    lake = IntervalLake(tmp_path)
    lake.load_unchecked(table)
    builder = GridBuilder(np.unique(reads["meter_id"]), INFO)
    with pytest.raises(StoreError, match="has no value_wh"):
        feed_lake(builder, lake, DAY, 1, 10**6)
