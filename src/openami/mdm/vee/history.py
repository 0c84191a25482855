"""A meter's own history, condensed for VEE: daily statistics for the spike rule and
reference-day profiles for estimation.

The spike rule compares a value with the meter's recent behaviour. Re-reading four weeks of
intervals (1.3 billion rows for a million meters) every day would cost more than the day's
VEE itself, so each run leaves one small row per meter and day (median, MAD, peak of the
import values that passed) and the next run condenses the trailing window of those rows:
the median of the daily medians and MADs, and the highest daily peak. Medians of medians are
robust to a bad day; the peak is what the 3x test needs (calibrated on a simulated year:
every clean interval stayed under 3x the trailing four weeks' peak).

Estimation of a long gap needs the meter's shape through the day: the mean of the same slot
on the same weekday over the last ``weeks`` weeks (UTC days are whole local days shifted by
nine hours in Japan, which has no daylight saving, so a UTC week apart is a local week
apart), falling back to the mean over every history day when a meter has no same weekday.
Only meters that need an estimate are loaded for it.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from openami.mdm.vee.flags import ESTIMATED, FAILED, FLAG_DTYPE

__all__ = ["STATS_SCHEMA", "daily_stats", "reference_profile", "trailing_stats"]

M = "meter_id"
DAY_S = 86_400
STATS_SCHEMA = {
    "meter_id": pl.Int64(),
    "day": pl.Date(),
    "median_wh": pl.Float64(),
    "mad_wh": pl.Float64(),
    "peak_wh": pl.Float64(),
    "intervals": pl.Int32(),
}


def _trusted(flags: str) -> pl.Expr:
    return (pl.col(flags) & pl.lit(int(FAILED | ESTIMATED), FLAG_DTYPE)) == 0


def daily_stats(
    grid: pl.DataFrame, day: date, value: str = "imp", flags: str = "flags_imp"
) -> pl.DataFrame:
    """One row per meter of ``grid``: median, MAD and peak of the day's ``value`` column over
    the intervals that passed validation unchanged (no failure, no estimate)."""
    trusted = grid.lazy().filter(_trusted(flags) & pl.col(value).is_not_null())
    out = (
        trusted.select(M, pl.col(value).cast(pl.Float64).alias("v"))
        .with_columns(med=pl.col("v").median().over(M))
        .group_by(M)
        .agg(
            median_wh=pl.col("med").first(),
            mad_wh=(pl.col("v") - pl.col("med")).abs().median(),
            peak_wh=pl.col("v").max(),
            intervals=pl.len().cast(pl.Int32),
        )
        .with_columns(day=pl.lit(day, dtype=pl.Date()))
        .select(list(STATS_SCHEMA))
        .sort(M)
    )
    return out.collect()


def trailing_stats(daily: pl.DataFrame | pl.LazyFrame, min_days: int = 3) -> pl.DataFrame:
    """``hist_median``, ``hist_mad``, ``hist_peak`` per meter from the daily rows given (the
    caller picks the window); meters with fewer than ``min_days`` days get none, so a new
    meter is not judged against one odd day."""
    return (
        daily.lazy()
        .group_by(M)
        .agg(
            hist_median=pl.col("median_wh").median(),
            hist_mad=pl.col("mad_wh").median(),
            hist_peak=pl.col("peak_wh").max(),
            hist_days=pl.len(),
        )
        .filter(pl.col("hist_days") >= min_days)
        .sort(M)
        .collect()
    )


def reference_profile(
    reads: pl.DataFrame | pl.LazyFrame,
    day0: int,
    step_s: int,
    weeks: int = 4,
) -> pl.DataFrame:
    """Per meter and slot of the day starting at ``day0`` (Unix s): the mean interval value
    of the same slot over the same weekday of the previous ``weeks`` weeks (``imp_wh``,
    ``exp_wh``), or over every day given when a meter has no same weekday.

    ``reads``: validated reads (``meter_id``, ``channel``, ``interval_end`` Unix s,
    ``value_wh``, ``flags``) of the days before ``day0``; failed values that were not
    replaced by an estimate are left out."""
    base = day0 - weeks * 7 * DAY_S
    usable = (
        reads.lazy()
        .filter(
            pl.col("channel").is_in([1, 2])
            & pl.col("value_wh").is_not_null()
            & (pl.col("interval_end") >= base)
            & (pl.col("interval_end") < day0)
            & (
                ((pl.col("flags") & pl.lit(int(FAILED), FLAG_DTYPE)) == 0)
                | ((pl.col("flags") & pl.lit(int(ESTIMATED), FLAG_DTYPE)) != 0)
            )
        )
        .with_columns(rel=pl.col("interval_end") - base)
        .with_columns(
            slot=((pl.col("rel") % DAY_S) // step_s).cast(pl.Int16),
            same_weekday=(pl.col("rel") % (7 * DAY_S)) < DAY_S,
            v=pl.col("value_wh").cast(pl.Float64),
        )
    )
    keys = [M, "slot"]
    profile = (
        usable.group_by([*keys, "channel"])
        .agg(
            same=pl.col("v").filter(pl.col("same_weekday")).mean(),
            every=pl.col("v").mean(),
        )
        .with_columns(wh=pl.coalesce("same", "every"))
        .collect()
        .pivot(on="channel", index=keys, values="wh")
    )
    renames = {"1": "imp_wh", "2": "exp_wh"}
    profile = profile.rename({k: v for k, v in renames.items() if k in profile.columns})
    for column in renames.values():
        if column not in profile.columns:
            profile = profile.with_columns(pl.lit(None, dtype=pl.Float64).alias(column))
    return profile.select(*keys, "imp_wh", "exp_wh").sort(keys)
