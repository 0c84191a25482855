from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from openami.mdm.billing import (
    INTERVAL_S,
    BillingCalendar,
    BillingError,
    BillingMonth,
    TariffBook,
    parse_tariffs,
)
from openami.mdm.billing.calendar import NO_CYCLE

from .builders import SEASONAL, TOU, jst

TARIFFS = Path(__file__).parents[3] / "src/openami/mdm/billing/tariffs.toml"


def test_billing_month_names_the_cycle_its_reading_day_closes() -> None:
    april = BillingMonth.parse("2024-04")
    assert str(april) == "2024-04"
    assert april.cycle_dates(15) == (date(2024, 3, 15), date(2024, 4, 15))
    assert BillingMonth(2025, 1).cycle_dates(15) == (date(2024, 12, 15), date(2025, 1, 15))
    assert BillingMonth(2025, 1).previous() == BillingMonth(2024, 12)
    start, end = april.cycle_span(15, "Asia/Tokyo")
    assert start == datetime(2024, 3, 14, 15, 0, tzinfo=UTC)  # 15 March 00:00 JST
    assert end == datetime(2024, 4, 14, 15, 0, tzinfo=UTC)
    assert april.window("Asia/Tokyo") == (jst(2024, 3, 1), jst(2024, 4, 28))


@pytest.mark.parametrize("bad", ["2024", "2024-13", "x-y", "0-01"])
def test_a_bad_billing_month_is_refused(bad: str) -> None:
    with pytest.raises(BillingError):
        BillingMonth.parse(bad)


@pytest.mark.parametrize("day", [0, 29, 31])
def test_reading_days_are_1_to_28(day: int) -> None:
    with pytest.raises(BillingError, match=r"outside 1\.\.28"):
        BillingMonth(2024, 3).cycle_dates(day)


def intervals(month: BillingMonth, day: int, timezone: str = "Asia/Tokyo") -> int:
    start, end = month.cycle_span(day, timezone)
    return int((end - start).total_seconds()) // INTERVAL_S


def test_reading_day_28_across_february() -> None:
    # 28 Feb - 27 Mar: 29 days in a leap year, 28 otherwise
    assert intervals(BillingMonth(2024, 3), 28) == 29 * 48
    assert intervals(BillingMonth(2023, 3), 28) == 28 * 48
    # 28 Jan - 27 Feb
    assert intervals(BillingMonth(2024, 2), 28) == 31 * 48
    assert intervals(BillingMonth(2024, 3), 1) == 29 * 48  # February itself


def test_no_daylight_saving_in_japan_every_day_has_48_intervals(book: TariffBook) -> None:
    # cycles over the US (10 Mar / 3 Nov 2024) and EU (31 Mar / 27 Oct 2024) changes
    for month, day in [(BillingMonth(2024, 4), 5), (BillingMonth(2024, 11), 10)]:
        first, after = month.cycle_dates(day)
        assert intervals(month, day) == (after - first).days * 48
    # the same cycle where clocks change loses an hour in spring
    assert intervals(BillingMonth(2024, 4), 5, "America/New_York") == 31 * 48 - 2
    # night (23:00-07:00 JST) is 14:00-22:00 UTC all year round
    cal = BillingCalendar.build(book, jst(2024, 1, 1), jst(2025, 1, 1))
    frame = cal.frame().filter(cal.frame()["tariff"] == TOU)
    ends = frame["interval_end"]
    hours = frame.with_columns(h=ends.dt.hour().cast(int) * 60 + ends.dt.minute().cast(int))
    night = set(hours.filter(hours["period"] == "night")["h"].to_list())
    assert night == {14 * 60 + 30 + 30 * i for i in range(16)}  # ends 14:30 .. 22:00 UTC


def test_a_daylight_saving_zone_still_classifies_by_local_time() -> None:
    data = tomllib.loads(TARIFFS.read_text("utf-8"))
    data["timezone"] = "America/New_York"
    book = parse_tariffs(data)
    cal = BillingCalendar.build(
        book, datetime(2024, 3, 9, 5, tzinfo=UTC), datetime(2024, 3, 12, 4, tzinfo=UTC)
    )
    frame = cal.frame().filter(cal.frame()["tariff"] == TOU)
    local = frame["interval_end"].dt.convert_time_zone("America/New_York")
    # 07:30 local is day both before (12:30 UTC) and after (11:30 UTC) the change
    minute = local.dt.hour().cast(int) * 60 + local.dt.minute().cast(int)
    assert frame.filter(minute == 450)["period"].to_list() == ["day"] * 3


def test_cycle_start_per_reading_day(august: BillingCalendar) -> None:
    # the interval 00:00-00:30 of 15 July is the first of the cycle read on the 15th
    assert august.cycle_start(15, jst(2024, 7, 15, 0, 30)) == date(2024, 7, 15)
    assert august.cycle_start(15, jst(2024, 7, 15, 0, 0)) is None  # June's cycle: not August's
    assert august.cycle_start(15, jst(2024, 8, 15, 0, 0)) == date(2024, 7, 15)  # its last
    assert august.cycle_start(15, jst(2024, 8, 15, 0, 30)) is None
    assert august.cycle_start(1, jst(2024, 7, 1, 0, 30)) == date(2024, 7, 1)
    assert august.cycle_start(28, jst(2024, 8, 28, 0, 0)) == date(2024, 7, 28)
    assert august.cycle_start(28, jst(2024, 9, 1)) is None  # outside the span


def test_without_a_month_every_cycle_in_the_span_is_kept(book: TariffBook) -> None:
    cal = BillingCalendar.build(book, jst(2024, 8, 14), jst(2024, 8, 16))
    assert cal.month is None
    assert cal.cycle_start(15, jst(2024, 8, 15, 0, 0)) == date(2024, 7, 15)
    assert cal.cycle_start(15, jst(2024, 8, 15, 0, 30)) == date(2024, 8, 15)
    assert (cal.cycle_lut[: cal.slots] == NO_CYCLE).all()  # row 0: no reading day 0
    assert cal.span == (jst(2024, 8, 14), jst(2024, 8, 16))
    assert cal.last_end == int(jst(2024, 8, 16).timestamp())


def test_the_calendar_refuses_naive_off_grid_or_empty_spans(book: TariffBook) -> None:
    with pytest.raises(BillingError, match="no time zone"):
        BillingCalendar.build(book, datetime(2024, 1, 1), jst(2024, 1, 2))  # noqa: DTZ001
    with pytest.raises(BillingError, match="30-minute grid"):
        BillingCalendar.build(book, jst(2024, 1, 1, 0, 15), jst(2024, 1, 2))
    with pytest.raises(BillingError, match="empty"):
        BillingCalendar.build(book, jst(2024, 1, 2), jst(2024, 1, 1))
    with pytest.raises(BillingError, match="unknown tariff"):
        BillingCalendar.build(book, jst(2024, 1, 1), jst(2024, 1, 2)).tariff_index("x")


def test_the_calendar_is_small_and_independent_of_fleet_size(august: BillingCalendar) -> None:
    assert august.slots == (date(2024, 8, 28) - date(2024, 7, 1)).days * 48
    assert august.period_lut.nbytes == 3 * august.slots
    assert august.cycle_lut.nbytes == 29 * august.slots * 4
    assert august.tariff_index(SEASONAL) == 2
    # one seasonal weekday in July: 16 night, 6 peak, 26 daytime
    day = np.asarray(august.period_lut[2 * august.slots : 3 * august.slots][:48])
    assert sorted(np.bincount(day, minlength=4).tolist()) == [0, 6, 16, 26]
    assert august.first_end == int((jst(2024, 7, 1) + timedelta(minutes=30)).timestamp())
