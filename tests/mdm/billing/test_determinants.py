"""Hand-made cycles whose determinants are worked out by hand in the comments."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest

from openami.mdm.billing import (
    BillingCalendar,
    BillingError,
    BillingMonth,
    Partials,
    TariffBook,
    accumulate,
    billing_determinants,
    events_from_windows,
    finalize,
    merge_partials,
    parse_tariffs,
    periods_long,
)

from .builders import (
    FLAT,
    SEASONAL,
    TOU,
    jst,
    make_contracts,
    make_events,
    make_reads,
    periods_of,
    utc_column,
)

TARIFFS = Path(__file__).parents[3] / "src/openami/mdm/billing/tariffs.toml"


def one(frame: pl.DataFrame, contract_id: int) -> dict[str, Any]:
    rows = frame.filter(pl.col("contract_id") == contract_id).to_dicts()
    assert len(rows) == 1
    return rows[0]


def determinants(
    book: TariffBook,
    month: BillingMonth,
    reads: pl.DataFrame,
    contracts: pl.DataFrame,
    events: pl.DataFrame | None = None,
) -> pl.DataFrame:
    return billing_determinants(reads, contracts, BillingCalendar.for_month(book, month), events)


def test_july_2024_with_marine_day_on_a_monday(book: TariffBook) -> None:
    # Billing month 2024-08, reading day 1: 1-31 July 2024, 31 days, 1 Wh every interval.
    # 1 July is a Monday; weekends 6,7,13,14,20,21,27,28 (8 days); 15 July is Marine Day
    # (a Monday): 9 holidays, 22 weekdays.
    #   night (23-07, every day)           31 x 16 = 496
    #   peak (13-16 on summer weekdays)    22 x  6 = 132
    #   daytime (rest of weekdays)         22 x 26 = 572
    #   offpeak (07-23 on holidays)         9 x 32 = 288      total 1488 = 31 x 48
    reads = make_reads([1, 2, 3], jst(2024, 7, 1), jst(2024, 8, 1), export=2)
    contracts = make_contracts([(1, SEASONAL, 1), (2, TOU, 1), (3, FLAT, 1)])
    out = determinants(book, BillingMonth(2024, 8), reads, contracts)
    seasonal = one(out, 1)
    assert periods_of(seasonal) == {"peak": 132, "daytime": 572, "offpeak": 288, "night": 496}
    assert list(periods_of(seasonal)) == ["peak", "daytime", "offpeak", "night"]  # bill order
    assert seasonal["import_wh"] == 1488
    assert seasonal["export_wh"] == 2 * 1488
    assert (seasonal["cycle_start"], seasonal["cycle_end"]) == (date(2024, 7, 1), date(2024, 7, 31))
    assert (seasonal["span_start"], seasonal["span_end"]) == (jst(2024, 7, 1), jst(2024, 8, 1))
    assert seasonal["billing_month"] == "2024-08"
    assert seasonal["intervals_expected"] == seasonal["intervals_valid"] == 1488
    assert seasonal["bill_ready"] is True
    assert seasonal["not_ready_reason"] is None
    assert periods_of(one(out, 2)) == {"day": 992, "night": 496}
    assert periods_of(one(out, 3)) == {"all": 1488}


def test_a_cycle_spanning_new_year(book: TariffBook) -> None:
    # Billing month 2025-01, reading day 15: 15 Dec 2024 - 14 Jan 2025, 31 days.
    # Weekends: Dec 15,21,22,28,29, Jan 4,5,11,12 (9). Holidays on weekdays: Jan 1 (New
    # Year's Day), Jan 2-3 (New Year period of the plan), Jan 13 (Coming of Age Day): 4.
    # 13 holidays, 18 weekdays, winter: no peak.
    #   night 31 x 16 = 496, daytime 18 x 32 = 576, offpeak 13 x 32 = 416
    reads = make_reads([1], jst(2024, 12, 15), jst(2025, 1, 15))
    contracts = make_contracts([(1, SEASONAL, 15)])
    row = one(determinants(book, BillingMonth(2025, 1), reads, contracts), 1)
    assert periods_of(row) == {"peak": 0, "daytime": 576, "offpeak": 416, "night": 496}
    assert row["bill_ready"] is True
    # Without the plan's New Year period, 2 and 3 January are weekdays: +2 / -2 days
    data = tomllib.loads(TARIFFS.read_text("utf-8"))
    del data["tariffs"][SEASONAL]["extra_holidays"]
    plain = parse_tariffs(data)
    row = one(determinants(plain, BillingMonth(2025, 1), reads, contracts), 1)
    assert periods_of(row) == {"peak": 0, "daytime": 640, "offpeak": 352, "night": 496}


@pytest.mark.parametrize(("year", "days"), [(2024, 29), (2023, 28)])
def test_reading_day_28_in_february(book: TariffBook, year: int, days: int) -> None:
    # 28 Feb - 27 Mar; 2 Wh per interval
    reads = make_reads([7], jst(year, 2, 20), jst(year, 4, 1), value=2)
    row = one(determinants(book, BillingMonth(year, 3), reads, make_contracts([(7, TOU, 28)])), 7)
    assert row["intervals_expected"] == row["intervals_present"] == days * 48
    assert row["import_wh"] == 2 * days * 48
    assert periods_of(row) == {"day": 2 * days * 32, "night": 2 * days * 16}
    assert (row["cycle_start"], row["cycle_end"]) == (date(year, 2, 28), date(year, 3, 27))
    assert row["bill_ready"] is True


def test_dst_elsewhere_changes_nothing_in_japan(book: TariffBook) -> None:
    # 5 Mar - 4 Apr 2024 holds the US and EU clock changes: still 31 x 48 intervals
    reads = make_reads([1], jst(2024, 3, 5), jst(2024, 4, 5))
    row = one(determinants(book, BillingMonth(2024, 4), reads, make_contracts([(1, TOU, 5)])), 1)
    assert row["intervals_expected"] == 31 * 48
    assert periods_of(row) == {"day": 31 * 32, "night": 31 * 16}
    assert row["bill_ready"] is True


def spike(at: list[datetime], wh: int) -> Any:
    marks = np.array([int(t.timestamp()) for t in at], dtype=np.int64)

    def value(meters: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> Any:
        return np.where(np.isin(ends, marks), wh, 100)

    return value


def test_maximum_demand_is_the_largest_interval_earliest_if_tied(book: TariffBook) -> None:
    first, second = jst(2024, 7, 10, 19, 30), jst(2024, 7, 20, 19, 30)
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 8, 1), value=spike([first, second], 1234))
    row = one(determinants(book, BillingMonth(2024, 8), reads, make_contracts([(1, FLAT, 1)])), 1)
    assert row["max_demand_wh"] == 1234
    assert row["max_demand_kw"] == pytest.approx(2.468)  # 1234 Wh in half an hour
    assert row["max_demand_at"] == first
    # an invalid read does not set the maximum
    reads = reads.with_columns(valid=pl.col("interval_end") != first)
    row = one(determinants(book, BillingMonth(2024, 8), reads, make_contracts([(1, FLAT, 1)])), 1)
    assert row["max_demand_at"] == second
    assert row["bill_ready"] is False


def test_bill_ready_needs_every_interval_present_and_valid(book: TariffBook) -> None:
    reads = make_reads([1, 2, 3, 4], jst(2024, 7, 1), jst(2024, 8, 1), value=10)
    gone = jst(2024, 7, 20, 12, 0)
    reads = reads.filter(~((pl.col("meter_id") == 1) & (pl.col("interval_end") == gone)))
    reads = reads.with_columns(
        valid=~((pl.col("meter_id") == 2) & (pl.col("interval_end") == gone)),
        import_wh=pl.when((pl.col("meter_id") == 3) & (pl.col("interval_end") == gone))
        .then(None)
        .otherwise(pl.col("import_wh")),
    )
    contracts = make_contracts([(1, TOU, 1), (2, TOU, 1), (3, TOU, 1), (4, TOU, 1), (5, TOU, 1)])
    out = determinants(book, BillingMonth(2024, 8), reads, contracts)
    missing, invalid, null, full, silent = (one(out, i) for i in range(1, 6))
    assert missing["intervals_present"] == missing["intervals_valid"] == 1487
    assert missing["not_ready_reason"] == "intervals missing: 1 of 1488"
    assert invalid["intervals_present"] == 1488 and invalid["intervals_valid"] == 1487
    assert invalid["not_ready_reason"] == "intervals not valid: 1"
    assert null["not_ready_reason"] == "intervals not valid: 1"  # a null value is not valid
    for row in (missing, invalid, null):
        assert row["bill_ready"] is False
        assert row["import_wh"] == 14_870  # only valid reads count, still summing exactly
        assert sum(periods_of(row).values()) == row["import_wh"]
    assert full["bill_ready"] is True and full["import_wh"] == 14_880
    # a contract without any read: all missing, no demand
    assert silent["intervals_present"] == 0 and silent["import_wh"] == 0
    assert silent["max_demand_wh"] is None and silent["max_demand_at"] is None
    assert silent["not_ready_reason"] == "intervals missing: 1488 of 1488"
    assert periods_of(silent) == {"day": 0, "night": 0}


def test_duplicated_reads_are_reported_not_billed_silently(book: TariffBook) -> None:
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 8, 1))
    reads = pl.concat([reads, reads.head(1)])
    row = one(determinants(book, BillingMonth(2024, 8), reads, make_contracts([(1, TOU, 1)])), 1)
    assert row["bill_ready"] is False
    assert row["not_ready_reason"] == "reads beyond the 1488 expected: 1"


def test_reads_outside_the_cycle_or_without_contract_are_ignored(book: TariffBook) -> None:
    # meter 1 is read on the 15th: July 1-14 and August 15-27 are other cycles
    reads = make_reads([1, 99], jst(2024, 6, 1), jst(2024, 9, 30))
    out = determinants(book, BillingMonth(2024, 8), reads, make_contracts([(1, TOU, 15)]))
    assert out.height == 1
    row = one(out, 1)
    assert row["import_wh"] == row["intervals_expected"] == 31 * 48
    assert row["bill_ready"] is True


def test_event_energy_per_event_and_overlaps_counted_once(book: TariffBook) -> None:
    # 10 Wh per interval; event A 13:00-17:00 JST (8 intervals), B 16:00-18:00 (4), overlap
    # 16:00-17:00 (2): union 10 intervals. C starts before the cycle: only its part inside.
    reads = make_reads([1, 2], jst(2024, 7, 1), jst(2024, 8, 1), value=10)
    events = make_events(
        [
            (1, "A", jst(2024, 7, 16, 13), jst(2024, 7, 16, 17)),
            (1, "B", jst(2024, 7, 16, 16), jst(2024, 7, 16, 18)),
            (1, "C", jst(2024, 6, 30, 22), jst(2024, 7, 1, 1)),  # 2 intervals in July
            (3, "A", jst(2024, 7, 16, 13), jst(2024, 7, 16, 17)),  # no contract: ignored
        ]
    )
    contracts = make_contracts([(1, SEASONAL, 1), (2, SEASONAL, 1)])
    out = determinants(book, BillingMonth(2024, 8), reads, contracts, events)
    row = one(out, 1)
    assert row["event_intervals"] == 12 and row["event_wh"] == 120
    assert row["events"] == [
        {"event_id": "A", "wh": 80, "intervals": 8},
        {"event_id": "B", "wh": 40, "intervals": 4},
        {"event_id": "C", "wh": 20, "intervals": 2},
    ]
    assert one(out, 2)["events"] == [] and one(out, 2)["event_wh"] == 0


def test_an_event_interval_without_a_valid_read_counts_nothing(book: TariffBook) -> None:
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 8, 1), value=10)
    reads = reads.filter(pl.col("interval_end") != jst(2024, 7, 16, 14))
    reads = reads.with_columns(valid=pl.col("interval_end") != jst(2024, 7, 16, 15))
    events = make_events([(1, "A", jst(2024, 7, 16, 13), jst(2024, 7, 16, 17))])
    row = one(
        determinants(book, BillingMonth(2024, 8), reads, make_contracts([(1, TOU, 1)]), events), 1
    )
    assert row["events"] == [{"event_id": "A", "wh": 60, "intervals": 6}]


def test_events_must_be_on_the_grid(book: TariffBook, august: BillingCalendar) -> None:
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 7, 2))
    events = make_events([(1, "odd", jst(2024, 7, 1, 13, 10), jst(2024, 7, 1, 14))])
    with pytest.raises(BillingError, match="'odd' is empty or not on the 30-minute grid"):
        accumulate(reads, make_contracts([(1, TOU, 1)]), august, events)


def test_a_retailer_switch_mid_cycle_splits_the_cycle(book: TariffBook) -> None:
    # meter 5 changes contract at 16 July 00:00 JST: 15 days on contract 50, 16 on 51
    switch = jst(2024, 7, 16)
    contracts = pl.DataFrame(
        {
            "contract_id": [50, 51],
            "meter_id": [5, 5],
            "tariff": [TOU, FLAT],
            "contract_amps": [30, 40],
            "reading_day": [1, 1],
            "valid_from": [None, switch],
            "valid_to": [switch, None],
        },
        schema_overrides={
            "valid_from": pl.Datetime("us", "UTC"),
            "valid_to": pl.Datetime("us", "UTC"),
        },
    )
    reads = make_reads([5], jst(2024, 7, 1), jst(2024, 8, 1))
    out = determinants(book, BillingMonth(2024, 8), reads, contracts)
    old, new = one(out, 50), one(out, 51)
    assert (old["span_start"], old["span_end"]) == (jst(2024, 7, 1), switch)
    assert (new["span_start"], new["span_end"]) == (switch, jst(2024, 8, 1))
    assert old["intervals_expected"] == old["import_wh"] == 15 * 48
    assert new["intervals_expected"] == new["import_wh"] == 16 * 48
    assert periods_of(old) == {"day": 15 * 32, "night": 15 * 16}
    assert periods_of(new) == {"all": 16 * 48}
    assert old["bill_ready"] and new["bill_ready"]
    assert new["contract_amps"] == 40
    # a contract that ended before the cycle is not billed in it
    ended = contracts.with_columns(
        valid_to=pl.lit(jst(2024, 6, 1)).dt.cast_time_unit("us"),
        valid_from=pl.lit(None, pl.Datetime("us", "UTC")),
    ).head(1)
    assert determinants(book, BillingMonth(2024, 8), reads, ended).height == 0


def test_a_single_contract_with_an_end_date(book: TariffBook) -> None:
    # moved out on 11 July 00:00 JST: 10 days billed, later reads ignored
    contracts = make_contracts([(1, TOU, 1)]).with_columns(
        valid_to=pl.lit(jst(2024, 7, 11)).dt.cast_time_unit("us")
    )
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 8, 1))
    row = one(determinants(book, BillingMonth(2024, 8), reads, contracts), 1)
    assert row["intervals_expected"] == row["import_wh"] == 10 * 48
    assert row["bill_ready"] is True


def test_sparse_meter_ids_take_the_join_path_with_the_same_result(book: TariffBook) -> None:
    big = [10**12 + 7, 3 * 10**12 + 1]
    reads = make_reads([1, 2, *big], jst(2024, 7, 1), jst(2024, 8, 1), value=3)
    contracts = make_contracts([(1, TOU, 1), (2, SEASONAL, 1)])
    sparse = make_contracts([(big[0], TOU, 1), (big[1], SEASONAL, 1)])
    dense_out = determinants(book, BillingMonth(2024, 8), reads, contracts)
    sparse_out = determinants(book, BillingMonth(2024, 8), reads, sparse)
    drop = ["contract_id", "meter_id"]
    assert dense_out.drop(drop).equals(sparse_out.drop(drop))


def test_partials_of_days_and_shards_merge_to_the_whole(book: TariffBook) -> None:
    # the way a day-close job runs: each day and meter shard alone, merged at the end
    rng = np.random.default_rng(5)

    def noisy(meters: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> Any:
        return rng.integers(0, 900, meters.size)

    reads = make_reads(list(range(1, 9)), jst(2024, 7, 1), jst(2024, 8, 28), value=noisy)
    reads = reads.with_columns(valid=pl.Series(rng.random(reads.height) > 0.001))
    contracts = make_contracts([(m, (FLAT, TOU, SEASONAL)[m % 3], 1 + 3 * m) for m in range(1, 9)])
    events = make_events([(3, "e", jst(2024, 7, 30, 13), jst(2024, 7, 30, 16))])
    month = BillingMonth(2024, 8)
    cal = BillingCalendar.for_month(book, month)
    whole = billing_determinants(reads, contracts, cal, events)
    day = pl.col("interval_end").dt.epoch("s") // 86_400
    parts: list[Partials] = []
    for shard in (0, 1):
        mine = contracts.filter(pl.col("meter_id") % 2 == shard)
        shard_reads = reads.filter(pl.col("meter_id") % 2 == shard)
        for _, chunk in shard_reads.group_by(day, maintain_order=True):
            parts.append(accumulate(chunk, mine, cal, events))
    merged = finalize(merge_partials(parts), contracts, cal)
    assert merged.equals(whole)
    # a calendar without a month (one per day) gives the same after finalize
    daily = []
    for (d,), chunk in reads.group_by(day.alias("d")):
        assert isinstance(d, int)
        lo = datetime.fromtimestamp(d * 86_400 - 1800, UTC)  # ends in [d 00:00, d+1 00:00)
        day_cal = BillingCalendar.build(book, lo, lo + timedelta(days=1))
        daily.append(accumulate(chunk, contracts, day_cal, events))
    assert finalize(merge_partials(daily), contracts, cal, month).equals(whole)


def test_periods_long_form(book: TariffBook) -> None:
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 8, 1))
    out = determinants(book, BillingMonth(2024, 8), reads, make_contracts([(1, TOU, 1)]))
    long = periods_long(out)
    assert long.columns == ["contract_id", "cycle_start", "period", "wh"]
    assert long.get_column("wh").to_list() == [992, 496]


def test_finalize_needs_a_month(book: TariffBook) -> None:
    cal = BillingCalendar.build(book, jst(2024, 7, 1), jst(2024, 7, 2))
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 7, 2))
    contracts = make_contracts([(1, TOU, 1)])
    with pytest.raises(BillingError, match="needs a billing month"):
        finalize(accumulate(reads, contracts, cal), contracts, cal)
    with pytest.raises(BillingError, match="nothing to merge"):
        merge_partials([])


def bad_reads(august: BillingCalendar) -> list[tuple[pl.DataFrame, str]]:
    good = make_reads([1], jst(2024, 7, 1), jst(2024, 7, 2))
    naive = good.with_columns(pl.col("interval_end").dt.replace_time_zone(None))
    tokyo = good.with_columns(pl.col("interval_end").dt.convert_time_zone("Asia/Tokyo"))
    off = good.with_columns(interval_end=pl.col("interval_end") + timedelta(minutes=15))
    negative = good.with_columns(import_wh=pl.lit(-1, pl.Int64))
    return [
        (good.drop("valid"), "lack column"),
        (naive, "Datetime in UTC"),
        (tokyo, "Datetime in UTC"),
        (off, "not on the 30-minute grid"),
        (negative, "negative value"),
        (good.with_columns(valid=pl.lit(1)), "valid must be Boolean"),
        (good.with_columns(import_wh=pl.lit(1.5)), "import_wh must be an integer"),
        (good.with_columns(meter_id=pl.lit(None, pl.Int64)), "null"),
    ]


def test_reads_breaking_the_contract_are_refused(august: BillingCalendar) -> None:
    contracts = make_contracts([(1, TOU, 1)])
    for reads, message in bad_reads(august):
        with pytest.raises(BillingError, match=message):
            accumulate(reads, contracts, august)


def test_an_invalid_negative_read_is_just_not_valid(august: BillingCalendar) -> None:
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 7, 2)).with_columns(
        import_wh=pl.lit(-5, pl.Int64), valid=pl.lit(False)
    )
    part = accumulate(reads, make_contracts([(1, TOU, 1)]), august)
    assert part.cycles.item(0, "import_wh") == 0
    assert part.cycles.item(0, "intervals_valid") == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.with_columns(tariff=pl.lit("jp-unknown")), "unknown tariff"),
        (lambda c: c.with_columns(reading_day=pl.lit(29)), "reading_day outside"),
        (lambda c: c.with_columns(reading_day=pl.lit(0)), "reading_day outside"),
        (lambda c: c.with_columns(contract_id=pl.lit(1)), "appears twice"),
        (lambda c: c.drop("tariff"), "lack column"),
        (lambda c: c.with_columns(tariff=pl.lit(3)), "tariff must be text"),
        (lambda c: c.with_columns(contract_amps=pl.lit(None, pl.Int32)), "null value"),
        (
            lambda c: c.with_columns(valid_from=pl.lit(datetime(2024, 7, 1, 0, 10, tzinfo=UTC))),
            "not on the 30-minute grid",
        ),
        (
            lambda c: c.with_columns(
                valid_from=pl.lit(datetime(2024, 7, 2, tzinfo=UTC)),
                valid_to=pl.lit(datetime(2024, 7, 1, tzinfo=UTC)),
            ),
            "not before valid_to",
        ),
        (
            lambda c: c.with_columns(meter_id=pl.lit(1, pl.Int64), contract_id=pl.Series([1, 2])),
            "overlap",
        ),
    ],
)
def test_contracts_breaking_the_contract_are_refused(
    august: BillingCalendar, change: Any, message: str
) -> None:
    contracts = change(make_contracts([(1, TOU, 1), (2, TOU, 1)]))
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 7, 2))
    with pytest.raises(BillingError, match=message):
        accumulate(reads, contracts, august)


def test_empty_inputs_give_empty_or_all_missing_results(august: BillingCalendar) -> None:
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 7, 2)).head(0)
    assert accumulate(reads, make_contracts([]), august).cycles.height == 0
    out = billing_determinants(reads, make_contracts([(1, TOU, 3)]), august)
    assert out.item(0, "intervals_present") == 0
    assert out.item(0, "bill_ready") is False


def test_interval_end_time_units_do_not_matter(august: BillingCalendar) -> None:
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 8, 1))
    contracts = make_contracts([(1, TOU, 1)])
    base = billing_determinants(reads, contracts, august)
    for unit in ("ms", "ns"):
        other = reads.with_columns(pl.col("interval_end").dt.cast_time_unit(unit))
        assert billing_determinants(other, contracts, august).equals(base)
    seconds = reads.with_columns(interval_end=utc_column(reads["interval_end"].dt.epoch("s")))
    assert billing_determinants(seconds, contracts, august).equals(base)


def test_events_from_per_meter_windows(book: TariffBook) -> None:
    reads = make_reads([1, 2], jst(2024, 7, 1), jst(2024, 8, 1), value=10)
    windows = {
        1: [
            (jst(2024, 7, 16, 13), jst(2024, 7, 16, 16)),
            (jst(2024, 7, 17, 13), jst(2024, 7, 17, 14)),
        ],
        2: [],
    }
    events = events_from_windows(windows)
    assert events.height == 2
    assert events.item(0, "event_id") == "2024-07-16T04:00:00+00:00/2024-07-16T07:00:00+00:00"
    contracts = make_contracts([(1, TOU, 1), (2, TOU, 1)])
    out = determinants(book, BillingMonth(2024, 8), reads, contracts, events)
    assert one(out, 1)["event_wh"] == 80 and one(out, 1)["event_intervals"] == 8
    assert one(out, 2)["event_wh"] == 0
    assert events_from_windows({}).height == 0
    with pytest.raises(BillingError, match="naive"):
        events_from_windows({1: [(datetime(2024, 7, 1), jst(2024, 7, 2))]})  # noqa: DTZ001


def test_finalize_refuses_another_month_than_the_calendars(august: BillingCalendar) -> None:
    reads = make_reads([1], jst(2024, 7, 1), jst(2024, 7, 2))
    contracts = make_contracts([(1, TOU, 1)])
    with pytest.raises(BillingError, match="the calendar is for 2024-08, not for 2024-09"):
        finalize(accumulate(reads, contracts, august), contracts, august, BillingMonth(2024, 9))


def test_contract_ids_may_be_registry_mrids(book: TariffBook, august: BillingCalendar) -> None:
    reads = make_reads([1, 2], jst(2024, 7, 1), jst(2024, 8, 1))
    contracts = make_contracts([(1, TOU, 1), (2, FLAT, 1)]).with_columns(
        contract_id=pl.Series(["agr-0001", "agr-0002"])
    )
    out = billing_determinants(reads, contracts, august)
    assert out.get_column("contract_id").to_list() == ["agr-0001", "agr-0002"]
    assert out.get_column("import_wh").to_list() == [1488, 1488]
    parts = [accumulate(reads.filter(pl.col("meter_id") == m), contracts, august) for m in (1, 2)]
    assert finalize(merge_partials(parts), contracts, august).equals(out)
    with pytest.raises(BillingError, match="contract_id must be an integer"):
        accumulate(reads, contracts.with_columns(contract_id=pl.lit(1.5)), august)


def test_the_order_of_the_reads_does_not_matter(book: TariffBook) -> None:
    """Reads in meter and time order are grouped without hashing (``accumulate``); any
    other order must give the same determinants, including the day and time of the
    maximum demand and a retailer switch mid-cycle."""
    reads = make_reads([1, 2, 3], jst(2024, 7, 1), jst(2024, 8, 1), value=3)
    reads = reads.with_columns(
        import_wh=pl.int_range(pl.len()) % 97, export_wh=pl.int_range(pl.len()) % 5
    )
    contracts = make_contracts([(1, TOU, 1), (2, SEASONAL, 1), (3, FLAT, 15)])
    ordered = determinants(
        book, BillingMonth(2024, 8), reads.sort("meter_id", "interval_end"), contracts
    )
    shuffled = determinants(
        book, BillingMonth(2024, 8), reads.sample(fraction=1.0, shuffle=True, seed=7), contracts
    )
    backwards = determinants(
        book,
        BillingMonth(2024, 8),
        reads.sort("meter_id", "interval_end", descending=True),
        contracts,
    )
    assert ordered.height == 3
    assert shuffled.equals(ordered)
    assert backwards.equals(ordered)
