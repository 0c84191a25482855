"""Throughput of billing determinants on one day of generated reads (not a pytest test).

    .venv/bin/python -m tests.mdm.billing.measure_throughput [METERS] [SHARDS]

Generates METERS x 48 half-hourly reads of one Japanese day with NumPy (random tariffs and
reading days, 0.1% invalid, a 3-hour event for a fifth of the meters) and times, in the
same run, a plain Polars scan-and-sum of the same frame (the baseline), the day's
``accumulate`` (what a day-close job does), and ``finalize`` for the month. With SHARDS > 1
the frame is processed shard by shard (``meter_id % SHARDS``) and merged, as a memory-bound
run would. Prints one JSON object; peak memory is the process's maximum resident set size,
and its growth over what the generated input already held.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from openami.mdm.billing import (
    BillingCalendar,
    BillingMonth,
    Partials,
    accumulate,
    finalize,
    load_tariffs,
    merge_partials,
)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(meters: int = 200_000, shards: int = 1) -> dict[str, object]:
    book = load_tariffs()
    month = BillingMonth(2024, 8)
    day_start = datetime(2024, 7, 15, 15, 0, tzinfo=UTC)  # 16 July 00:00 JST
    calendar = BillingCalendar.build(book, day_start, day_start + timedelta(days=1))
    rng = np.random.default_rng(1)
    slots = 48
    ids = np.arange(1, meters + 1, dtype=np.int64)
    ends = int(day_start.timestamp()) + 1800 * np.arange(1, slots + 1, dtype=np.int64)
    reads = pl.DataFrame(
        {
            "meter_id": np.tile(ids, slots),  # lake order: interval by interval
            "interval_end": pl.from_epoch(pl.Series(np.repeat(ends, meters)), "s")
            .dt.replace_time_zone("UTC")
            .dt.cast_time_unit("us"),
            "import_wh": rng.integers(0, 2_000, meters * slots),
            "export_wh": rng.integers(0, 50, meters * slots),
            "valid": rng.random(meters * slots) > 0.001,
        }
    )
    contracts = pl.DataFrame(
        {
            "meter_id": ids,
            "tariff": np.array(book.codes)[rng.integers(0, len(book.codes), meters)],
            "contract_amps": rng.choice([30, 40, 50, 60], meters).astype(np.int32),
            "reading_day": rng.integers(1, 29, meters).astype(np.int32),
        }
    )
    enrolled = ids[rng.random(meters) < 0.2]
    event_start = datetime(2024, 7, 16, 4, 0, tzinfo=UTC)  # 13:00-16:00 JST
    events = pl.DataFrame(
        {
            "meter_id": enrolled,
            "event_id": ["cpp-0716"] * enrolled.size,
            "start": [event_start] * enrolled.size,
            "end": [event_start + timedelta(hours=3)] * enrolled.size,
        },
        schema_overrides={"start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC")},
    )
    n = reads.height

    t = time.perf_counter()
    reads.lazy().group_by("meter_id").agg(pl.col("import_wh").sum()).collect()
    baseline_s = time.perf_counter() - t

    # shards as the lake loader would hand them over (split before the clock starts)
    shard = pl.col("meter_id") % shards
    inputs = (
        [
            (reads.filter(shard == s), contracts.filter(shard == s), events.filter(shard == s))
            for s in range(shards)
        ]
        if shards > 1
        else [(reads, contracts, events)]
    )
    input_mb = _rss_mb()

    t = time.perf_counter()
    parts: list[Partials] = [accumulate(r, c, calendar, e) for r, c, e in inputs]
    partial = parts[0] if shards == 1 else merge_partials(parts)
    accumulate_s = time.perf_counter() - t
    peak_accumulate = _peak_mb()

    t = time.perf_counter()
    month_calendar = BillingCalendar.for_month(book, month)
    result = finalize(partial, contracts, month_calendar)
    finalize_s = time.perf_counter() - t
    assert result.height == meters

    return {
        "meters": meters,
        "reads": n,
        "shards": shards,
        "threads": pl.thread_pool_size(),
        "load_avg_1min": os.getloadavg()[0],
        "baseline_scan_sum_s": round(baseline_s, 3),
        "baseline_reads_per_s": round(n / baseline_s),
        "accumulate_s": round(accumulate_s, 3),
        "accumulate_reads_per_s": round(n / accumulate_s),
        "ratio_to_baseline": round(baseline_s / accumulate_s, 3),
        "finalize_s": round(finalize_s, 3),
        "input_rss_mb": round(input_mb),
        "peak_rss_mb": round(peak_accumulate),
        "peak_growth_mb": round(peak_accumulate - input_mb),
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    print(json.dumps(main(*args)))
