"""Interval reads for billing straight from the raw lake (before the VEE stage exists).

The lake stores one row per (meter, channel, interval end, version), channel 1 the imported
and channel 2 the exported Wh of the interval. Billing wants one row per (meter, interval
end) with both values and a validity flag, so this loader pivots the two channels with a
Polars join, keeping the highest version of each read.

Validity from raw data alone is only what the meter itself says: a read is valid when both
channels arrived and neither carries a status bit in ``invalid_status`` (by default the
AMR profile status bits critical error, clock invalid and data not valid; power-down is
not among them, since zero use during an outage is a true read). Once VEE runs, billing
should take its validated frame instead, which follows the same column contract.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from openami.bus.contract import Channel
from openami.mdm.billing.calendar import INTERVAL_S, BillingError
from openami.store.lake import IntervalLake
from openami.store.validated import span_days

__all__ = ["DEFAULT_INVALID_STATUS", "load_interval_reads"]

# AMR profile status (IDIS / DLMS Blue Book): bit 0 critical error, bit 1 clock invalid,
# bit 2 data not valid. Bit 7 (power down) leaves the read valid.
DEFAULT_INVALID_STATUS = 0x01 | 0x02 | 0x04


def _day_files(lake: IntervalLake, start: datetime, end: datetime) -> list[str]:
    """Files of the UTC days holding interval ends in (start, end]."""
    wanted = {f"day={day:%Y-%m-%d}" for day in span_days(start, end)}
    return [f.as_posix() for f in lake.files() if f.parent.parent.name in wanted]


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "meter_id": pl.Int64,
            "interval_end": pl.Datetime("us", "UTC"),
            "import_wh": pl.Int64,
            "export_wh": pl.Int64,
            "valid": pl.Boolean,
        }
    )


def _has_versions(scan: pl.LazyFrame) -> bool:
    """Whether any read in the span has a version above 1 (an edit): only then is the
    (costly) pick of the highest version per read needed."""
    top = scan.select(pl.col("version").max()).collect().item()
    return top is not None and int(top) > 1


def _pivot(scan: pl.LazyFrame, *, edited: bool) -> pl.DataFrame:
    """One row per (meter, interval end) with both channels: a full join of the import and
    export rows (several times faster than a grouped pivot over both)."""
    key = ["meter_id", "end_s"]
    sides = []
    for channel, name in ((Channel.IMPORT_INTERVAL, "import"), (Channel.EXPORT_INTERVAL, "export")):
        side = scan.filter(pl.col("channel") == int(channel))
        if edited:
            side = side.sort("version").unique(key, keep="last")
        sides.append(
            side.select(
                *key, pl.col("value").alias(f"{name}_wh"), pl.col("status").alias(f"{name}_status")
            )
        )
    return sides[0].join(sides[1], on=key, how="full", coalesce=True).collect()


def load_interval_reads(
    lake: IntervalLake,
    start: datetime,
    end: datetime,
    *,
    shard: tuple[int, int] | None = None,
    invalid_status: int = DEFAULT_INVALID_STATUS,
) -> pl.DataFrame:
    """Reads with interval ends in (start, end] as the billing input frame (meter_id,
    interval_end, import_wh, export_wh, valid), in no particular order. ``shard=(i, n)``
    keeps the meters with ``meter_id % n == i``: one partition of a fleet streamed
    partition by partition."""
    if start.tzinfo is None or end.tzinfo is None:
        raise BillingError("start and end must be aware datetimes")
    lo, hi = int(start.timestamp()), int(end.timestamp())
    files = _day_files(lake, start, end)
    if not files:
        return _empty()
    scan = pl.scan_parquet(files, hive_partitioning=False).filter(
        pl.col("channel").is_in([int(Channel.IMPORT_INTERVAL), int(Channel.EXPORT_INTERVAL)])
        & (pl.col("interval_end") > datetime.fromtimestamp(lo, UTC))
        & (pl.col("interval_end") <= datetime.fromtimestamp(hi, UTC))
    )
    if shard is not None:
        index, count = shard
        if not 0 <= index < count:
            raise BillingError(f"shard {index} is outside 0..{count - 1}")
        scan = scan.filter(pl.col("meter_id") % count == index)
    scan = scan.select(
        pl.col("meter_id").cast(pl.Int64),
        end_s=pl.col("interval_end").dt.epoch("s"),
        channel=pl.col("channel"),
        value=pl.col("value_wh").cast(pl.Int64),
        status=pl.col("status").cast(pl.Int32),
        version=pl.col("version"),
    )
    frame = _pivot(scan, edited=_has_versions(scan))
    if frame.height == 0:
        return _empty()
    # A meter with reads off the 30-minute grid (after an interval change) cannot be billed
    # from raw data: its reads stay, marked not valid, until VEE has dealt with them.
    off_grid = pl.col("end_s") % INTERVAL_S != 0
    odd_meters = frame.filter(off_grid).get_column("meter_id").unique()
    status = pl.col("import_status").fill_null(0) | pl.col("export_status").fill_null(0)
    return frame.filter(~off_grid).select(
        pl.col("meter_id"),
        interval_end=pl.from_epoch("end_s", "s")
        .dt.replace_time_zone("UTC")
        .cast(pl.Datetime("us", "UTC")),
        import_wh=pl.col("import_wh"),
        export_wh=pl.col("export_wh"),
        valid=pl.col("import_wh").is_not_null()
        & pl.col("export_wh").is_not_null()
        & ((status & invalid_status) == 0)
        & ~pl.col("meter_id").is_in(odd_meters.implode()),
    )
