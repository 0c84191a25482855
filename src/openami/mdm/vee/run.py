"""VEE for one day of the lake: stream each meter chunk's raw reads into a grid, run the
partition pass, and append the changed versions to the validated store.

Memory is bounded by the chunk (meters x slots), not by the day: a chunk's reads are read
from the day's Parquet files with a meter-range filter, batch by batch, into the grid
builder (about 2 GB at the default 100,000 meters, measured). Chunks are independent
(each writes its own file), so they can run in parallel on Dask workers; here they run one
after another. The day's gap book and statistics are
written once at the end: should the run die before, the next run repeats the requests of
this one (harmless: the head-end sends a range asked for while queued once) and recomputes
the statistics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

from openami.bus.contract import CollectRequest
from openami.mdm.vee.config import VeeConfig, default_config
from openami.mdm.vee.engine import GAP_SCHEMA, new_versions, validate_partition
from openami.mdm.vee.grid import GridBuilder, GridInfo, unix_seconds
from openami.mdm.vee.history import reference_profile, trailing_stats
from openami.store.lake import IntervalLake
from openami.store.validated import ValidatedStore

__all__ = ["RunSummary", "day_start", "feed_lake", "run_day"]

M = "meter_id"
_COLUMNS = ["meter_id", "channel", "interval_end", "value_wh", "version", "status", "received_at"]


@dataclass(frozen=True)
class RunSummary:
    day: date
    meters: int
    reads: int
    written: int
    requests: list[CollectRequest]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def day_start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def feed_lake(builder: GridBuilder, lake: IntervalLake, day: date, lo: int, hi: int) -> None:
    """Put the raw reads of meters ``lo..hi`` for ``day`` into ``builder``, and the
    opening interval (ending at 00:00) from the previous day's files."""
    opening = builder.info.day0 - builder.info.step_s
    meters = (ds.field("meter_id") >= lo) & (ds.field("meter_id") <= hi)
    sources = [(lake.day_files(day, (lo, hi)), meters)]
    previous = lake.day_files(day - timedelta(days=1), (lo, hi))
    if previous:
        at_midnight = ds.field("interval_end") == pa.scalar(opening, pa.timestamp("s", "UTC"))
        sources.append((previous, meters & at_midnight))
    for files, where in sources:
        if not files:
            continue
        dataset = ds.dataset([str(f) for f in files], format="parquet")
        for batch in dataset.to_batches(columns=_COLUMNS, filter=where, batch_size=1 << 20):
            builder.add(
                batch.column("meter_id").to_numpy(),
                batch.column("channel").to_numpy(),
                unix_seconds(batch.column("interval_end")),
                batch.column("value_wh").to_numpy(),
                version=batch.column("version").to_numpy(),
                status=batch.column("status").to_numpy(),
                received_at=unix_seconds(batch.column("received_at")),
            )


def _profile_loader(
    store: ValidatedStore, day: date, info: GridInfo, weeks: int
) -> Callable[[pl.Series], pl.DataFrame | None]:
    def load(meters: pl.Series) -> pl.DataFrame | None:
        # the same weekday of past weeks, and yesterday for meters too new for those
        days = [day - timedelta(days=7 * k) for k in range(1, weeks + 1)]
        days.append(day - timedelta(days=1))
        frames = [f for d in days if (f := store.current(d, meters)).height]
        if not frames:
            return None
        return reference_profile(pl.concat(frames), info.day0, info.step_s, weeks)

    return load


def run_day(
    lake: IntervalLake,
    store: ValidatedStore,
    day: date,
    attributes: pl.DataFrame,
    *,
    now: int,
    config: VeeConfig | None = None,
    chunk_meters: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """VEE of ``day`` (a UTC day of the lake) for the meters in ``attributes``
    (``meter_id``, optional ``interval_s`` (default 1800), ``has_pv``, ``occupied``,
    ``contract_amps``). ``progress(done, total)`` is called after each chunk of meters."""
    started = time.perf_counter()
    config = config or default_config()
    attrs = attributes.sort(M)
    if "interval_s" not in attrs.columns:
        attrs = attrs.with_columns(interval_s=pl.lit(1800, dtype=pl.Int32))
    stats_days = [day - timedelta(days=d) for d in range(1, config.history_days + 1)]
    daily = store.load_stats(stats_days)
    history = trailing_stats(daily) if daily is not None else None
    book = store.load_gaps(day)
    has_versions = bool(store.files(day))
    requests: list[CollectRequest] = []
    books, stats = [], []
    counts: dict[str, int] = {}
    reads = written = done = 0
    total = attrs.height
    for (interval_s,), group in attrs.group_by("interval_s", maintain_order=True):
        step = int(str(interval_s))
        info = GridInfo(day_start(day), step, 86_400 // step)
        ids = group[M].to_numpy()
        for lo in range(0, ids.size, chunk_meters):
            chunk = ids[lo : lo + chunk_meters]
            builder = GridBuilder(
                chunk,
                info,
                grid_s=config.grid_s,
                future_tolerance_s=config.future_tolerance_s,
            )
            feed_lake(builder, lake, day, int(chunk[0]), int(chunk[-1]))
            in_chunk = pl.col(M).is_between(int(chunk[0]), int(chunk[-1]))
            result = validate_partition(
                builder,
                group.filter(in_chunk),
                config,
                now,
                history=history.filter(in_chunk) if history is not None else None,
                profile=_profile_loader(store, day, info, config.estimation.profile_weeks),
                gaps=book.filter(in_chunk) if book is not None else None,
            )
            current = store.current(day, pl.Series(chunk)) if has_versions else None
            written += store.append(new_versions(result.reads, current))
            requests += result.requests
            books.append(result.gaps)
            stats.append(result.stats)
            reads += builder.placed
            for key, value in result.counts.items():
                counts[key] = counts.get(key, 0) + value
            done += chunk.size
            if progress is not None:
                progress(done, total)
    store.save_gaps(day, pl.concat(books) if books else pl.DataFrame(schema=GAP_SCHEMA))
    if stats:
        store.save_stats(day, pl.concat(stats))
    return RunSummary(day, total, reads, written, requests, counts, time.perf_counter() - started)
