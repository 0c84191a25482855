"""Properties over random reads and random tariffs: period energies always sum to the total,
totals equal a plain sum over the cycle, and partials merge to the whole."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openami.mdm.billing import (
    BillingCalendar,
    BillingMonth,
    DayKind,
    Rule,
    Tariff,
    TariffBook,
    accumulate,
    billing_determinants,
    finalize,
    load_tariffs,
    merge_partials,
)

from .builders import FLAT, SEASONAL, TOU, make_contracts, periods_of, utc_column

BOOK = load_tariffs()
MONTH = BillingMonth(2024, 8)
CALENDAR = BillingCalendar.for_month(BOOK, MONTH)

Read = tuple[int, int, bool]  # slot, import Wh, valid


@st.composite
def fleets(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame]:
    meters = draw(st.integers(1, 3))
    contracts = make_contracts(
        [
            (m, draw(st.sampled_from([FLAT, TOU, SEASONAL])), draw(st.integers(1, 28)))
            for m in range(1, meters + 1)
        ]
    )
    rows: list[tuple[int, int, int, bool]] = []
    for m in range(1, meters + 1):
        reads: list[Read] = draw(
            st.lists(
                st.tuples(
                    st.integers(0, CALENDAR.slots - 1),
                    st.integers(0, 5_000),
                    st.booleans(),
                ),
                unique_by=lambda r: r[0],
                max_size=120,
            )
        )
        rows += [(m, slot, wh, ok) for slot, wh, ok in reads]
    frame = pl.DataFrame(
        {
            "meter_id": [r[0] for r in rows],
            "interval_end": utc_column([CALENDAR.first_end + 1800 * r[1] for r in rows]),
            "import_wh": [r[2] for r in rows],
            "export_wh": [r[2] // 3 for r in rows],
            "valid": [r[3] for r in rows],
        },
        schema_overrides={
            "meter_id": pl.Int64,
            "import_wh": pl.Int64,
            "export_wh": pl.Int64,
            "valid": pl.Boolean,
        },
    )
    return frame, contracts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_periods_sum_to_the_total_which_is_the_plain_sum(
    data: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    reads, contracts = data
    out = billing_determinants(reads, contracts, CALENDAR)
    assert out.height == contracts.height
    for row in out.iter_rows(named=True):
        assert sum(periods_of(row).values()) == row["import_wh"]
        lo, hi = MONTH.cycle_span(row["reading_day"], "Asia/Tokyo")
        mine = reads.filter(
            (pl.col("meter_id") == row["meter_id"])
            & (pl.col("interval_end") > lo)
            & (pl.col("interval_end") <= hi)
        )
        good = mine.filter(pl.col("valid"))
        assert row["import_wh"] == good.get_column("import_wh").sum()
        assert row["export_wh"] == good.get_column("export_wh").sum()
        assert row["intervals_present"] == mine.height
        assert row["intervals_valid"] == good.height
        assert row["max_demand_wh"] == good.get_column("import_wh").max()
        assert row["bill_ready"] is False  # at most 120 of ~1,400 intervals


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), st.integers(0, 2**32 - 1))
def test_any_split_into_partials_merges_to_the_whole(
    data: tuple[pl.DataFrame, pl.DataFrame], seed: int
) -> None:
    reads, contracts = data
    whole = billing_determinants(reads, contracts, CALENDAR)
    mask = pl.Series([(seed >> (i % 32)) & 1 == 1 for i in range(reads.height)], dtype=pl.Boolean)
    parts = [
        accumulate(reads.filter(mask), contracts, CALENDAR),
        accumulate(reads.filter(~mask), contracts, CALENDAR),
    ]
    assert finalize(merge_partials(parts), contracts, CALENDAR).equals(whole)


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    k = draw(st.integers(1, 5))
    periods = tuple(f"p{i}" for i in range(k))
    rules = []
    for _ in range(draw(st.integers(0, 6))):
        start = draw(st.integers(0, 47)) * 30
        end = draw(st.integers(1, 48)) * 30
        if start == end:
            continue
        rules.append(
            Rule(
                period=draw(st.sampled_from(periods)),
                start_minute=start,
                end_minute=end,
                days=draw(st.sampled_from(list(DayKind))),
                months=frozenset(draw(st.lists(st.integers(1, 12), max_size=4))),
            )
        )
    rules.append(Rule(period=draw(st.sampled_from(periods))))  # the catch-all
    return Tariff(
        code="random",
        name="random",
        periods=periods,
        rules=tuple(rules),
        holiday_country=draw(st.sampled_from([None, "JP"])),
        rest_days=frozenset(draw(st.lists(st.integers(1, 7), max_size=2))),
        extra_holidays=((1, 2),),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tariffs(), st.lists(st.integers(0, 9_999), min_size=48 * 7, max_size=48 * 7))
def test_any_tariff_splits_the_total_exactly(tariff: Tariff, values: list[int]) -> None:
    book = TariffBook("Asia/Tokyo", (tariff,))
    start = datetime(2024, 12, 28, 15, tzinfo=UTC)  # a week over New Year, Japan time
    cal = BillingCalendar.build(book, start, datetime(2025, 1, 4, 15, tzinfo=UTC))
    reads = pl.DataFrame(
        {
            "meter_id": [1] * len(values),
            "interval_end": utc_column([cal.first_end + 1800 * i for i in range(len(values))]),
            "import_wh": values,
            "export_wh": [0] * len(values),
            "valid": [True] * len(values),
        },
        schema_overrides={"import_wh": pl.Int64, "export_wh": pl.Int64},
    )
    contracts = make_contracts([(1, "random", 1)])
    part = accumulate(reads, contracts, cal)
    cycles = part.cycles
    total = sum(values)
    assert cycles.get_column("import_wh").sum() == total
    period_sum = sum(cycles.get_column(f"p{i}").sum() for i in range(len(tariff.periods)))
    assert period_sum == total
