"""mdm.vee: VEE and billing determinants of one day of a fleet, in interval reads per second.

The day: ``meters`` meters (default 1,000,000: 48 million interval reads, 192 million raw
rows with both registers) made by the VEE's synthetic generator (Japanese household shapes,
PV on a share of homes, every kind of fault injected on its own 1% of the meters), written
in a child process and loaded into the raw lake's layout (a file per day and shard of
100,000 meter ids), with 28 days of per-meter statistics before it so that the spike rule
has its history.

Timed, on ``openami.mdm.parallel`` as the product runs it (``workers=1``: in this process;
``workers=2``: a two-process Dask LocalCluster started beforehand):

1. VEE of the day: grid, every rule, gap decisions (the first pass after the day's close
   asks for every gap), estimation of the failed values, the validated versions written;
2. the billing determinants of the whole fleet for the month the day belongs to (every
   meter on the day/night plan, read on the 1st), from the validated reads.

Both run twice on the same processes, the day's VEE output removed in between: a cold
pass (fresh worker processes: imports, compiled code loaded, memory faulted in) and a warm
pass, as a day-close job finds a cluster that closed the day before.

Value: interval reads (meters x 48) per second over both, in the warm pass (the cold
pass's seconds are in ``params``). Baseline: a plain Polars scan-and-sum of the same raw
files (``group_by(meter_id).sum(value_wh)``), in the same run (in a process of its own, so
that its memory does not count as ours; its second scan timed, warm as well), in the same
unit. ``params`` extrapolate to TEPCO's 27 million meters (the first million at the cold
pass's speed, the other 26 at the warm pass's), give the stored bytes per validated read
(flags included), the peak memory of each process, and the time from the day's close to
bill-ready determinants (VEE + determinants; the cycle's other days are in the validated
store already, and contribute no reads to a one-day run).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from openami.bench import Benchmark, BenchResult, result
from openami.bus.contract import ReadSource
from openami.errors import BenchmarkError
from openami.mdm.billing import BillingMonth, TariffBook, load_tariffs
from openami.mdm.parallel import billing_for_cycle, local_cluster, run_vee_day
from openami.mdm.vee.run import RunSummary
from openami.mdm.vee.synthetic import DAY0, write_day
from openami.store.lake import IntervalLake
from openami.store.validated import ValidatedStore

DAY = date(2026, 8, 3)  # synthetic.DAY0
MONTH = BillingMonth(2026, 9)  # read on the 1st: the cycle of August, Japan time
TEPCO_METERS = 27_000_000
SLOTS = 48


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _write(root: Path, meters: int, seed: int) -> tuple[IntervalLake, pl.DataFrame]:
    """The day in the lake's layout and 28 days of statistics before it; returns the lake
    and the meters' attributes."""
    work = root / "gen"
    work.mkdir()
    child = multiprocessing.get_context("spawn").Process(
        target=write_day, args=(work, meters, seed)
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise BenchmarkError(f"writing the synthetic day failed (exit {child.exitcode})")
    lake = IntervalLake(root / "lake")
    generated = pq.ParquetFile(work / "reads.parquet")
    for group in range(generated.metadata.num_row_groups):  # one block of meters at a time
        block = generated.read_row_group(group)
        pushed = pa.array(np.full(block.num_rows, int(ReadSource.PUSH), np.int8))
        lake.load_unchecked(block.append_column("source", pushed))
    (work / "reads.parquet").unlink()
    per_meter = pl.read_parquet(work / "meters.parquet")
    store = ValidatedStore(lake.root)
    stats = per_meter.select(
        "meter_id",
        median_wh=pl.col("hist_median"),
        mad_wh=pl.col("hist_mad"),
        peak_wh=pl.col("hist_peak"),
        intervals=pl.lit(SLOTS, pl.Int32),
    )
    for back in range(1, 29):
        day = DAY - timedelta(days=back)
        store.save_stats(
            day,
            stats.with_columns(day=pl.lit(day, pl.Date)).select(
                "meter_id", "day", "median_wh", "mad_wh", "peak_wh", "intervals"
            ),
        )
    return lake, per_meter.select("meter_id", "has_pv", "occupied", "contract_amps")


# twice, the second timed: warm, as the VEE pass that counts is
_SCAN_AND_SUM = """
import sys, time
import polars as pl
for _ in range(2):
    began = time.perf_counter()
    pl.scan_parquet(sys.argv[1:]).group_by("meter_id").agg(pl.col("value_wh").sum()).collect()
print(time.perf_counter() - began)
"""


def _baseline(files: list[Path]) -> float:
    """Seconds of the plain scan-and-sum, in a process of its own (its memory is not ours)."""
    done = subprocess.run(
        [sys.executable, "-c", _SCAN_AND_SUM, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchmarkError(f"the baseline scan failed: {done.stderr.strip()[-300:]}")
    return float(done.stdout.strip())


def _forget_day(store: ValidatedStore, day: date) -> None:
    """Remove what VEE wrote of ``day`` (validated reads, gap book, statistics), so that
    the next pass does the same work as the first."""
    name = f"day={day.isoformat()}"
    for folder in (store.reads_dir, store.gaps_dir, store.stats_dir):
        shutil.rmtree(folder / name, ignore_errors=True)


def _close_day(
    lake: IntervalLake,
    store: ValidatedStore,
    attributes: pl.DataFrame,
    contracts: pl.DataFrame,
    book: TariffBook,
    chunk: int,
    client: Any,
) -> tuple[float, float, RunSummary, pl.DataFrame]:
    """VEE of the day, then the determinants of its billing month: (VEE seconds,
    determinants seconds, VEE summary, determinants)."""
    began = time.perf_counter()
    summary = run_vee_day(
        lake,
        store,
        DAY,
        attributes,
        now=DAY0 + 86_400 + 900,  # a quarter of an hour after the day's close
        chunk_meters=chunk,
        scheduler=client,
    )
    vee_s = time.perf_counter() - began
    began = time.perf_counter()
    det = billing_for_cycle(
        store, MONTH, contracts, book=book, shard_meters=chunk, scheduler=client
    )
    return vee_s, time.perf_counter() - began, summary, det


def _worker_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(params: Mapping[str, str]) -> BenchResult:
    try:
        meters = int(params.get("meters", "1000000"))
        chunk = int(params.get("chunk", "100000"))
        workers = int(params.get("workers", "2"))
        seed = int(params.get("seed", "1"))
    except ValueError as exc:
        raise BenchmarkError(f"mdm.vee parameter: {exc}") from None
    if not 1_000 <= meters <= 30_000_000 or chunk < 1 or not 1 <= workers <= 64:
        raise BenchmarkError(
            "mdm.vee parameters: meters 1,000..30,000,000, chunk > 0, workers 1..64"
        )
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-mdm-") as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        lake, attributes = _write(root, meters, seed)
        write_s = time.perf_counter() - began
        raw_files = lake.files()
        raw_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in raw_files)
        raw_bytes = sum(f.stat().st_size for f in raw_files)
        reads = meters * SLOTS

        baseline_s = _baseline(raw_files)

        store = ValidatedStore(lake.root)
        contracts = attributes.select(
            "meter_id",
            tariff=pl.lit("jp-residential-tou"),
            contract_amps=pl.col("contract_amps").cast(pl.Int64),
            reading_day=pl.lit(1, pl.Int32),
        )
        book = load_tariffs()
        client: Any = None
        startup_s = 0.0
        with contextlib.ExitStack() as stack:
            if workers > 1:
                from distributed import Client

                began = time.perf_counter()
                cluster = stack.enter_context(local_cluster(workers))
                client = stack.enter_context(Client(cluster))  # type: ignore[no-untyped-call]
                startup_s = time.perf_counter() - began
            # twice: cold (fresh worker processes) and warm (as a day-close job finds a
            # cluster that ran the day before); the day's VEE output is removed in between
            passes = []
            for _ in ("cold", "warm"):
                _forget_day(store, DAY)
                passes.append(_close_day(lake, store, attributes, contracts, book, chunk, client))
            worker_peaks: list[float] = (
                list(client.run(_worker_peak_mib).values()) if client is not None else []
            )
        (cold_vee_s, cold_billing_s, _, _), (vee_s, billing_s, summary, det) = passes
        bytes_per_read = store.bytes_per_read(DAY)
        validated_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in store.files(DAY))
    total_s = vee_s + billing_s
    cold_s = cold_vee_s + cold_billing_s
    # a 27 M-meter day: the first million on cold processes, the other 26 on warm ones
    day_27m_s = cold_s + (TEPCO_METERS - meters) / meters * total_s
    flagged = {k: v for k, v in sorted(summary.counts.items()) if v and "/" in k}
    return result(
        "mdm.vee",
        round(reads / total_s, 1),
        "interval reads/s (VEE + determinants)",
        "polars scan-and-sum",
        round(reads / baseline_s, 1),
        meters=meters,
        interval_reads=reads,
        raw_rows=raw_rows,
        chunk=chunk,
        workers=workers,
        scheduler="in-process" if workers == 1 else f"dask LocalCluster ({workers} processes)",
        vee_s=round(vee_s, 2),
        vee_reads_per_s=round(reads / vee_s, 1),
        determinants_s=round(billing_s, 2),
        cold_vee_s=round(cold_vee_s, 2),
        cold_determinants_s=round(cold_billing_s, 2),
        contracts=det.height,
        baseline_s=round(baseline_s, 2),
        cluster_startup_s=round(startup_s, 2),
        write_day_s=round(write_s, 2),
        extrapolated_27m_minutes=round(day_27m_s / 60.0, 2),
        goal_27m_minutes=10.0,
        day_close_to_bill_ready_s=round(total_s, 2),
        day_close_to_bill_ready_27m_minutes=round(day_27m_s / 60.0, 2),
        goal_day_close_to_bill_ready_minutes=60.0,
        bytes_per_read=round(bytes_per_read, 3),
        validated_rows=validated_rows,
        written=summary.written,  # by the warm pass
        raw_bytes_per_interval_read=round(raw_bytes / reads, 3),
        goal_bytes_per_read=2.0,
        peak_rss_mib=round(max([_peak_rss_mib(), *worker_peaks]), 1),
        driver_peak_rss_mib=round(_peak_rss_mib(), 1),
        worker_peak_rss_mib=[round(p, 1) for p in worker_peaks],
        collection_requests=len(summary.requests),
        flagged=flagged,
        loadavg_before=[round(x, 2) for x in load],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
    )


BENCHMARKS = [
    Benchmark(
        "mdm.vee",
        "VEE + billing determinants of one day of 1 M meters, interval reads/s vs a Polars scan",
        run,
    )
]
