"""The daily and trailing statistics (NumPy over the dense grid) against their definition
as grouped Polars aggregations, on random grids and random daily rows."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from openami.mdm.vee.flags import ESTIMATED, FAILED, FLAG_DTYPE
from openami.mdm.vee.history import STATS_SCHEMA, daily_stats, trailing_stats

DAY = date(2026, 8, 3)
M = "meter_id"


def _daily_by_definition(grid: pl.DataFrame) -> pl.DataFrame:
    trusted = (pl.col("flags_imp") & pl.lit(int(FAILED | ESTIMATED), FLAG_DTYPE)) == 0
    return (
        grid.lazy()
        .filter(trusted & pl.col("imp").is_not_null())
        .select(M, pl.col("imp").cast(pl.Float64).alias("v"))
        .with_columns(med=pl.col("v").median().over(M))
        .group_by(M)
        .agg(
            median_wh=pl.col("med").first(),
            mad_wh=(pl.col("v") - pl.col("med")).abs().median(),
            peak_wh=pl.col("v").max(),
            intervals=pl.len().cast(pl.Int32),
        )
        .with_columns(day=pl.lit(DAY, dtype=pl.Date()))
        .select(list(STATS_SCHEMA))
        .sort(M)
        .collect()
    )


def _trailing_by_definition(daily: pl.DataFrame, min_days: int) -> pl.DataFrame:
    return (
        daily.group_by(M)
        .agg(
            hist_median=pl.col("median_wh").median(),
            hist_mad=pl.col("mad_wh").median(),
            hist_peak=pl.col("peak_wh").max(),
            hist_days=pl.len(),
        )
        .filter(pl.col("hist_days") >= min_days)
        .sort(M)
    )


@settings(max_examples=60, deadline=None)
@given(
    meters=st.integers(1, 30),
    slots=st.sampled_from([4, 24, 48]),
    seed=st.integers(0, 2**32 - 1),
    missing=st.floats(0.0, 1.0),
)
def test_daily_stats_are_the_grouped_medians(
    meters: int, slots: int, seed: int, missing: float
) -> None:
    rng = np.random.default_rng(seed)
    n = meters * slots
    values = rng.integers(-5, 900, n).astype(float)
    values[rng.random(n) < missing] = np.nan
    flags = rng.choice([0, 1, int(FAILED), int(ESTIMATED)], n).astype(np.uint32)
    grid = pl.DataFrame(
        {
            M: np.repeat(np.arange(1, meters + 1) * 7, slots),
            "imp": pl.Series(values).fill_nan(None).cast(pl.Int64),
            "flags_imp": pl.Series(flags, dtype=FLAG_DTYPE),
        }
    )
    assert_frame_equal(daily_stats(grid, DAY, slots), _daily_by_definition(grid))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 12),
            st.one_of(st.none(), st.floats(0, 500, allow_nan=False)),
            st.one_of(st.none(), st.floats(0, 80, allow_nan=False)),
            st.one_of(st.none(), st.floats(0, 2000, allow_nan=False)),
        ),
        max_size=120,
    ),
    min_days=st.integers(1, 5),
)
def test_trailing_stats_are_the_grouped_medians(
    rows: list[tuple[int, float | None, float | None, float | None]], min_days: int
) -> None:
    daily = pl.DataFrame(
        rows,
        schema={M: pl.Int64, "median_wh": pl.Float64, "mad_wh": pl.Float64, "peak_wh": pl.Float64},
        orient="row",
    )
    got = trailing_stats(daily, min_days=min_days)
    want = _trailing_by_definition(daily, min_days)
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    meters=st.lists(st.integers(1, 10**9), min_size=1, max_size=30, unique=True),
    days=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    missing=st.floats(0.0, 1.0),
    min_days=st.integers(1, 5),
    odd_one_out=st.booleans(),
)
def test_trailing_stats_of_the_same_meters_day_after_day(
    meters: list[int], days: int, seed: int, missing: float, min_days: int, odd_one_out: bool
) -> None:
    """The daily files of a fleet that did not change: one block of meters per day, in
    meter order (reshaped, not sorted); with ``odd_one_out`` one day lacks a meter, which
    is the general case again."""
    rng = np.random.default_rng(seed)
    ids = np.tile(np.sort(np.asarray(meters, dtype=np.int64)), days)
    if odd_one_out:
        ids = np.delete(ids, rng.integers(ids.size))
    columns: dict[str, object] = {M: ids}
    for column in ("median_wh", "mad_wh", "peak_wh"):
        values = rng.integers(0, 900, ids.size).astype(float)
        values[rng.random(ids.size) < missing] = np.nan
        columns[column] = pl.Series(values).fill_nan(None)
    daily = pl.DataFrame(columns)
    got = trailing_stats(daily, min_days=min_days)
    want = _trailing_by_definition(daily, min_days)
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-12)


def test_a_grid_that_is_not_whole_meters_is_refused() -> None:
    grid = pl.DataFrame({M: [1, 1, 1], "imp": [1, 2, 3], "flags_imp": [0, 0, 0]})
    with pytest.raises(ValueError, match="whole number"):
        daily_stats(grid, DAY, 2)
