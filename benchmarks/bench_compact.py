"""mdm.compact: a day's scan over the raw lake, before and after compaction.

The day: ``meters`` meters (default 100,000, one shard) x 48 half-hours x the import and
export intervals, written as ingest writes it: ``files`` appends (default 2,000, about
one flush every 43 s over a day), each its own Parquet file. Then ``compact_day``.

Value: interval reads per second of a DuckDB scan-and-sum over the compacted day
(``SELECT meter_id, sum(value_wh) ... GROUP BY meter_id``). Baseline: the same scan over
the small files, in the same run. ``params`` give the compaction's own time and rate, the
files and bytes before and after, and the best of ``repeat`` runs of each scan.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from openami.bench import Benchmark, BenchResult, result
from openami.errors import BenchmarkError
from openami.store.compaction import compact_day
from openami.store.lake import READ_SCHEMA, IntervalLake

DAY = date(2026, 8, 3)
SLOTS = 48


def _write_day(lake: IntervalLake, meters: int, files: int) -> int:
    """The day in ``files`` appends, in arrival order (each append a slice of the day's
    pushes: every meter's reads of some half-hours)."""
    day0 = int(datetime(2026, 8, 3, tzinfo=UTC).timestamp())
    rng = np.random.default_rng(7)
    meter = np.repeat(np.arange(1, meters + 1, dtype=np.int64), SLOTS * 2)
    slot = np.tile(np.repeat(np.arange(1, SLOTS + 1, dtype=np.int64), 2), meters)
    channel = np.tile(np.array([1, 2], dtype=np.int8), meters * SLOTS)
    order = np.argsort(slot, kind="stable")  # pushes arrive by interval
    meter, slot, channel = meter[order], slot[order], channel[order]
    n = meter.size
    now = datetime.now(UTC)
    table = pa.table(
        {
            "meter_id": meter,
            "channel": channel,
            "interval_end": pa.array(day0 + slot * 1800, pa.int64()).cast(
                pa.timestamp("s", tz="UTC")
            ),
            "value_wh": rng.integers(0, 800, n),
            "version": np.ones(n, np.int16),
            "source": np.ones(n, np.int8),
            "status": np.zeros(n, np.int16),
            "received_at": pa.array([now] * n, pa.timestamp("ms", tz="UTC")),
        },
        schema=READ_SCHEMA,
    )
    step = -(-n // files)
    for lo in range(0, n, step):
        lake.load_unchecked(table.slice(lo, step))
    return n


def _scan(files: list[Path], repeat: int) -> tuple[float, int]:
    """The best time of ``repeat`` DuckDB scans-and-sums of ``files``, and the rows."""
    listing = [str(f) for f in files]
    best, rows = float("inf"), 0
    for _ in range(repeat):
        con = duckdb.connect()
        began = time.perf_counter()
        got = con.execute(
            "SELECT meter_id, sum(value_wh) FROM read_parquet(?) GROUP BY meter_id", [listing]
        ).fetchall()
        best = min(best, time.perf_counter() - began)
        rows = len(got)
        con.close()
    return best, rows


def run(params: Mapping[str, str]) -> BenchResult:
    try:
        meters = int(params.get("meters", "100000"))
        files = int(params.get("files", "2000"))
        repeat = int(params.get("repeat", "3"))
    except ValueError as exc:
        raise BenchmarkError(f"mdm.compact parameter: {exc}") from None
    if not 100 <= meters <= 10_000_000 or not 1 <= files <= 100_000 or not 1 <= repeat <= 20:
        raise BenchmarkError(
            "mdm.compact parameters: meters 100..10 M, files 1..100 k, repeat 1..20"
        )
    with tempfile.TemporaryDirectory(prefix="bench-compact-") as tmp:
        lake = IntervalLake(Path(tmp))
        reads = _write_day(lake, meters, files)
        before_files = lake.day_files(DAY)
        before_bytes = sum(f.stat().st_size for f in before_files)
        before_s, before_meters = _scan(before_files, repeat)
        report = compact_day(lake, DAY, grace=timedelta(0))
        after_files = lake.day_files(DAY)
        after_s, after_meters = _scan(after_files, repeat)
    if before_meters != after_meters or after_meters != meters:
        raise BenchmarkError(
            f"the scans disagree: {before_meters:,} meters before, {after_meters:,} after"
        )
    return result(
        "mdm.compact",
        round(reads / after_s, 1),
        "interval reads/s (DuckDB scan-and-sum of a compacted day)",
        "the same scan of the day's small files",
        round(reads / before_s, 1),
        meters=meters,
        interval_reads=reads,
        files_before=len(before_files),
        files_after=len(after_files),
        bytes_before=before_bytes,
        bytes_after=report.bytes_after,
        bytes_per_read_before=round(before_bytes / reads, 3),
        bytes_per_read_after=round(report.bytes_after / reads, 3),
        scan_before_s=round(before_s, 4),
        scan_after_s=round(after_s, 4),
        compaction_s=round(report.seconds, 3),
        compaction_reads_per_s=round(reads / report.seconds, 1),
        removed=report.removed,
    )


BENCHMARKS = [
    Benchmark(
        "mdm.compact",
        "DuckDB scan of a day of the raw lake after compaction vs its small files",
        run,
    )
]
