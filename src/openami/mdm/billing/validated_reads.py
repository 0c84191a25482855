"""Interval reads for billing from VEE's validated store: what makes a cycle bill-ready.

The same column contract as ``load_interval_reads`` (meter_id, interval_end, import_wh,
export_wh, valid), taken from the current version of each validated read. A read is valid
for billing when both channels have a value and neither fails validation, or when the
failing value was replaced by an estimate or an edit (an estimated read is billable, and is
flagged as estimated on the bill). A read still missing, or failing with no replacement,
keeps the cycle from being bill-ready.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from openami.bus.contract import Channel
from openami.mdm.billing.calendar import BillingError
from openami.mdm.vee.flags import ESTIMATED, FAILED, Quality
from openami.store.validated import Origin, ValidatedStore, day_start, span_days

__all__ = ["load_validated_reads"]

_REPLACED = int(ESTIMATED | Quality.EDITED)
_DAY_S = 86_400


def _side(rows: pl.DataFrame, channel: Channel, name: str) -> pl.DataFrame:
    flags = pl.col("flags").cast(pl.Int64)
    return rows.filter(pl.col("channel") == int(channel)).select(
        "meter_id",
        "interval_end",
        pl.col("value_wh").alias(f"{name}_wh"),
        (
            pl.col("value_wh").is_not_null()
            & (pl.col("origin") != int(Origin.MISSING))
            & (((flags & int(FAILED)) == 0) | ((flags & _REPLACED) != 0))
        ).alias(f"{name}_ok"),
    )


def _paired(imp: pl.DataFrame, exp: pl.DataFrame) -> pl.DataFrame:
    """Both channels of each interval side by side. VEE writes a channel's rows in the
    same (meter, interval end) order as the other's, so usually the two sides line up row
    for row and are put side by side as they are; otherwise (several files, later
    versions, a channel missing) they are joined on the key."""
    key = ["meter_id", "interval_end"]
    if imp.height == exp.height and imp.select(key).equals(exp.select(key)):
        return imp.hstack(exp.drop(key))
    return imp.join(exp, on=key, how="full", coalesce=True)


def load_validated_reads(store: ValidatedStore, start: datetime, end: datetime) -> pl.DataFrame:
    """Validated reads with interval ends in (start, end], as billing's input frame."""
    if start.tzinfo is None or end.tzinfo is None:
        raise BillingError("start and end must be aware datetimes")
    lo, hi = int(start.timestamp()), int(end.timestamp())
    days = span_days(start, end)
    frames = []
    for day in days:
        rows = store.current(day)
        first = day_start(day)
        if first <= lo or first + _DAY_S - 1 > hi:  # the day's file holds ends [first, +1 day)
            rows = rows.filter(pl.col("interval_end").is_between(lo + 1, hi))
        frames.append(rows)  # a day inside the span is taken whole: no copy of it
    rows = pl.concat(frames) if frames else store.current(end.astimezone(UTC).date()).head(0)
    both = _paired(
        _side(rows, Channel.IMPORT_INTERVAL, "import"),
        _side(rows, Channel.EXPORT_INTERVAL, "export"),
    )
    return both.select(
        pl.col("meter_id").cast(pl.Int64),
        pl.from_epoch(pl.col("interval_end"), time_unit="s")
        .dt.replace_time_zone("UTC")
        .cast(pl.Datetime("us", "UTC"))
        .alias("interval_end"),
        pl.col("import_wh").cast(pl.Int64),
        pl.col("export_wh").cast(pl.Int64),
        (pl.col("import_ok").fill_null(False) & pl.col("export_ok").fill_null(False)).alias(
            "valid"
        ),
    )
