from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openami.bus.contract import Channel
from openami.mdm.billing import (
    BillingCalendar,
    BillingError,
    BillingMonth,
    TariffBook,
    billing_determinants,
    load_interval_reads,
)
from openami.store.lake import READ_SCHEMA, IntervalLake
from openami.store.shard_files import stamp_of

from .builders import TOU, jst, make_contracts

T0 = int(datetime(2024, 7, 1, 0, 0, tzinfo=UTC).timestamp())
STEP = 1800


def append(lake: IntervalLake, rows: list[tuple[int, int, int, int, int]]) -> None:
    """(meter_id, channel, interval_end, value_wh, status)"""
    lake.append(
        {
            "meter_id": [r[0] for r in rows],
            "channel": [r[1] for r in rows],
            "interval_end": [r[2] for r in rows],
            "value_wh": [r[3] for r in rows],
            "source": [1] * len(rows),
            "status": [r[4] for r in rows],
        }
    )


def full(
    meter: int, ends: range, imp: int = 100, exp: int = 5
) -> list[tuple[int, int, int, int, int]]:
    rows = []
    for end in ends:
        rows += [
            (meter, int(Channel.IMPORT_INTERVAL), end, imp, 0),
            (meter, int(Channel.EXPORT_INTERVAL), end, exp, 0),
            (meter, int(Channel.IMPORT_REGISTER), end, 10_000 + end, 0),
            (meter, int(Channel.EXPORT_REGISTER), end, 20_000, 0),
        ]
    return rows


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def by_key(frame: pl.DataFrame) -> dict[tuple[int, int], dict[str, object]]:
    return {
        (int(r["meter_id"]), int(r["interval_end"].timestamp())): r
        for r in frame.iter_rows(named=True)
    }


def test_channels_pivot_and_status_bits_decide_validity(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    ends = range(T0 + STEP, T0 + 6 * STEP + 1, STEP)
    rows = full(1, ends) + full(2, ends) + full(3, ends)
    rows = [
        (m, c, e, v, 0x02 if (m, c, e) == (2, 1, T0 + STEP) else s)  # clock invalid
        for m, c, e, v, s in rows
    ]
    rows = [
        (m, c, e, v, 0x80 if (m, e) == (2, T0 + 2 * STEP) else s)  # power down: still valid
        for m, c, e, v, s in rows
    ]
    rows = [r for r in rows if not (r[0] == 3 and r[1] == 2 and r[2] == T0 + 3 * STEP)]
    rows = [r for r in rows if not (r[0] == 3 and r[1] == 1 and r[2] == T0 + 4 * STEP)]
    append(lake, rows)
    frame = load_interval_reads(lake, at(T0), at(T0 + 6 * STEP))
    assert dict(frame.schema) == (
        {
            "meter_id": pl.Int64,
            "interval_end": pl.Datetime("us", "UTC"),
            "import_wh": pl.Int64,
            "export_wh": pl.Int64,
            "valid": pl.Boolean,
        }
    )
    assert frame.height == 18
    got = by_key(frame)
    assert got[(1, T0 + STEP)] == {
        "meter_id": 1,
        "interval_end": at(T0 + STEP),
        "import_wh": 100,
        "export_wh": 5,
        "valid": True,
    }
    assert got[(2, T0 + STEP)]["valid"] is False
    assert got[(2, T0 + 2 * STEP)]["valid"] is True
    assert got[(3, T0 + 3 * STEP)]["export_wh"] is None
    assert got[(3, T0 + 3 * STEP)]["valid"] is False
    assert got[(3, T0 + 4 * STEP)]["import_wh"] is None
    assert got[(3, T0 + 4 * STEP)]["export_wh"] == 5
    assert sum(1 for r in got.values() if not r["valid"]) == 3
    # the status mask is a setting
    lenient = load_interval_reads(lake, at(T0), at(T0 + 6 * STEP), invalid_status=0)
    assert by_key(lenient)[(2, T0 + STEP)]["valid"] is True


def test_span_is_open_at_the_start_and_closed_at_the_end(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    append(lake, full(1, range(T0, T0 + 10 * STEP + 1, STEP)))
    frame = load_interval_reads(lake, at(T0 + STEP), at(T0 + 4 * STEP))
    ends = sorted(int(t.timestamp()) for t in frame.get_column("interval_end"))
    assert ends == [T0 + 2 * STEP, T0 + 3 * STEP, T0 + 4 * STEP]


def test_a_span_across_utc_midnight_reads_both_days(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    midnight = T0 + 86_400
    append(lake, full(1, range(midnight - 2 * STEP, midnight + 2 * STEP + 1, STEP)))
    assert len(lake.files()) == 2
    frame = load_interval_reads(lake, at(midnight - 3 * STEP), at(midnight + 2 * STEP))
    assert frame.height == 5


def test_the_highest_version_wins(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    append(lake, full(1, range(T0 + STEP, T0 + 2 * STEP, STEP)))
    folder = next(iter(lake.files())).parent
    edited = pa.table(
        {
            "meter_id": pa.array([1], pa.int64()),
            "channel": pa.array([1], pa.int8()),
            "interval_end": pa.array([T0 + STEP], pa.int64()).cast(pa.timestamp("s", tz="UTC")),
            "value_wh": pa.array([777], pa.int64()),
            "version": pa.array([2], pa.int16()),
            "source": pa.array([1], pa.int8()),
            "status": pa.array([0], pa.int16()),
            "received_at": pa.array([datetime.now(UTC)], pa.timestamp("ms", tz="UTC")),
        },
        schema=READ_SCHEMA,
    )
    # named as the lake names its files (store/shard_files lists only those)
    pq.write_table(edited, folder / f"part-{stamp_of(datetime.now(UTC))}-0000ed17.parquet")
    frame = load_interval_reads(lake, at(T0), at(T0 + STEP))
    assert frame.get_column("import_wh").to_list() == [777]
    assert frame.get_column("export_wh").to_list() == [5]


def test_meters_off_the_half_hour_grid_are_not_valid(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    append(lake, full(1, range(T0 + STEP, T0 + 3 * STEP + 1, STEP)))
    append(lake, full(2, range(T0 + 900, T0 + 3 * STEP + 1, 900)))  # 15-minute meter
    frame = load_interval_reads(lake, at(T0), at(T0 + 3 * STEP))
    assert frame.filter(pl.col("meter_id") == 1).get_column("valid").all()
    two = frame.filter(pl.col("meter_id") == 2)
    assert two.height == 3 and not two.get_column("valid").any()


def test_shards_split_the_fleet(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    rows = []
    for m in range(1, 9):
        rows += full(m, range(T0 + STEP, T0 + 2 * STEP + 1, STEP))
    append(lake, rows)
    seen = []
    for i in range(4):
        part = load_interval_reads(lake, at(T0), at(T0 + 2 * STEP), shard=(i, 4))
        meters = set(part.get_column("meter_id").to_list())
        assert all(m % 4 == i for m in meters)
        seen += sorted(meters)
    assert sorted(seen) == list(range(1, 9))
    with pytest.raises(BillingError, match="shard 4"):
        load_interval_reads(lake, at(T0), at(T0 + STEP), shard=(4, 4))


def test_an_empty_lake_or_span_gives_an_empty_frame(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path)
    frame = load_interval_reads(lake, at(T0), at(T0 + STEP))
    assert frame.height == 0 and frame.columns[-1] == "valid"
    append(lake, full(1, range(T0 + STEP, T0 + 2 * STEP, STEP)))
    assert load_interval_reads(lake, at(T0 + 10 * STEP), at(T0 + 12 * STEP)).height == 0
    with pytest.raises(BillingError, match="aware"):
        load_interval_reads(lake, datetime(2024, 7, 1), at(T0))  # noqa: DTZ001


def test_from_the_lake_to_bill_ready_determinants(tmp_path: Path, book: TariffBook) -> None:
    month = BillingMonth(2024, 8)
    cal = BillingCalendar.for_month(book, month)
    lo, hi = month.cycle_span(10, "Asia/Tokyo")
    ends = np.arange(int(lo.timestamp()) + STEP, int(hi.timestamp()) + 1, STEP)
    lake = IntervalLake(tmp_path)
    rows = []
    for end in ends.tolist():
        rows += full(1, range(end, end + 1), imp=3, exp=1)
        rows += full(2, range(end, end + 1), imp=3, exp=1)
    rows = [r for r in rows if not (r[0] == 2 and r[2] == int(ends[100]))]
    append(lake, rows)
    reads = load_interval_reads(lake, *cal.span)
    contracts = make_contracts([(1, TOU, 10), (2, TOU, 10)])
    out = billing_determinants(reads, contracts, cal)
    one, two = out.to_dicts()
    assert one["bill_ready"] is True and one["import_wh"] == 3 * ends.size
    assert one["export_wh"] == ends.size
    assert one["span_start"] == jst(2024, 7, 10)
    assert two["bill_ready"] is False
    assert two["not_ready_reason"] == f"intervals missing: 1 of {ends.size}"
    assert hi - lo == timedelta(days=31)
