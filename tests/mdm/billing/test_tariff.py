from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from openami.errors import ConfigError
from openami.mdm.billing import (
    BillingCalendar,
    DayKind,
    TariffBook,
    holiday_dates,
    load_tariffs,
    parse_tariffs,
)
from openami.mdm.billing.tariff import Tariff

from .builders import FLAT, SEASONAL, TOU, jst


def book_of(text: str) -> TariffBook:
    return parse_tariffs(tomllib.loads(text), "test.toml")


ONE = """
format = 1
timezone = "Asia/Tokyo"
[tariffs.t]
periods = ["a", "b"]
[[tariffs.t.rules]]
period = "a"
hours = "09:00-17:00"
[[tariffs.t.rules]]
period = "b"
"""


def period_at(calendar: BillingCalendar, tariff: str, end: datetime) -> str:
    frame = calendar.frame().filter((pl.col("tariff") == tariff) & (pl.col("interval_end") == end))
    assert frame.height == 1
    return str(frame.item(0, "period"))


def test_the_shipped_book_has_the_three_residential_plans(book: TariffBook) -> None:
    assert book.timezone == "Asia/Tokyo"
    assert book.codes == (FLAT, TOU, SEASONAL)
    assert book[FLAT].periods == ("all",)
    assert book[TOU].periods == ("day", "night")
    assert book[SEASONAL].periods == ("peak", "daytime", "offpeak", "night")
    assert book[SEASONAL].holiday_country == "JP"
    assert book[SEASONAL].rest_days == frozenset({6, 7})
    assert book[SEASONAL].extra_holidays == ((1, 1), (1, 2), (1, 3))
    assert book.max_periods == 4
    with pytest.raises(KeyError):
        book["nope"]


def test_a_file_path_loads_like_the_package_data(tmp_path: Path) -> None:
    path = tmp_path / "tariffs.toml"
    path.write_text(ONE, "utf-8")
    book = load_tariffs(path)
    assert book.codes == ("t",)
    rule = book["t"].rules[0]
    assert (rule.start_minute, rule.end_minute, rule.days) == (540, 1020, DayKind.ANY)


def test_an_unreadable_or_broken_file_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_tariffs(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("format = ", "utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_tariffs(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format=2), "'format' must be 1"),
        (lambda d: d.update(timezone="Mars/Olympus"), "unknown time zone"),
        (lambda d: d.update(timezone=9), "'timezone' must be"),
        (lambda d: d.update(extra=1), "unknown key"),
        (lambda d: d.update(tariffs={}), "no \\[tariffs.CODE\\]"),
        (lambda d: d["tariffs"]["t"].update(periods=[]), "non-empty list"),
        (lambda d: d["tariffs"]["t"].update(periods=["a", "a"]), "twice"),
        (lambda d: d["tariffs"]["t"].update(holidays="XX"), "no public holiday calendar"),
        (lambda d: d["tariffs"]["t"].update(rest_days=["caturday"]), "rest_days"),
        (lambda d: d["tariffs"]["t"].update(extra_holidays=["02-30"]), "not a date"),
        (lambda d: d["tariffs"]["t"].update(extra_holidays=["Jan 1"]), "not 'MM-DD'"),
        (lambda d: d["tariffs"]["t"].update(rules=[]), "at least one"),
        (lambda d: d["tariffs"]["t"]["rules"][0].update(period="c"), "period 'c' is not"),
        (lambda d: d["tariffs"]["t"]["rules"][0].update(hours="9-17"), "not 'HH:MM-HH:MM'"),
        (lambda d: d["tariffs"]["t"]["rules"][0].update(hours="09:15-17:00"), "half hour"),
        (lambda d: d["tariffs"]["t"]["rules"][0].update(hours="09:00-09:00"), "empty"),
        (lambda d: d["tariffs"]["t"]["rules"][0].update(hours="25:00-03:00"), "not 'HH:MM"),
        (lambda d: d["tariffs"]["t"]["rules"][0].update(days="sunday"), "'days' must be"),
        (lambda d: d["tariffs"]["t"]["rules"][0].update(months=[13]), "month numbers"),
        (lambda d: d["tariffs"]["t"]["rules"][0].update(when=1), "unknown key"),
        # the catch-all rule gone: 00:00-09:00 is nobody's
        (lambda d: d["tariffs"]["t"]["rules"].pop(), "no rule covers weekdays in month 1 at 00:00"),
        # the catch-all first: 'a' can never occur
        (lambda d: d["tariffs"]["t"]["rules"].reverse(), "period\\(s\\) a can never occur"),
    ],
)
def test_a_wrong_tariff_file_says_where(change: Any, message: str) -> None:
    data = tomllib.loads(ONE)
    change(data)
    with pytest.raises(ConfigError, match=message):
        parse_tariffs(data, "test.toml")


def test_a_gap_only_on_holidays_in_summer_is_found() -> None:
    text = """
format = 1
timezone = "Asia/Tokyo"
[tariffs.t]
periods = ["x"]
[[tariffs.t.rules]]
period = "x"
days = "weekday"
[[tariffs.t.rules]]
period = "x"
months = [1, 2, 3, 4, 5, 6, 10, 11, 12]
"""
    with pytest.raises(ConfigError, match="holidays in month 7 at 00:00-00:30"):
        book_of(text)


def test_hours_may_wrap_midnight_and_end_at_24() -> None:
    book = book_of(ONE.replace('hours = "09:00-17:00"', 'hours = "22:00-24:00"'))
    assert (book["t"].rules[0].start_minute, book["t"].rules[0].end_minute) == (1320, 1440)
    cal = BillingCalendar.build(book, jst(2024, 5, 1), jst(2024, 5, 2))
    assert period_at(cal, "t", jst(2024, 5, 1, 22, 30)) == "a"  # 22:00-22:30
    assert period_at(cal, "t", jst(2024, 5, 2, 0, 0)) == "a"  # 23:30-24:00
    assert period_at(cal, "t", jst(2024, 5, 1, 22, 0)) == "b"  # 21:30-22:00


def test_the_interval_ending_at_seven_belongs_to_the_night(august: BillingCalendar) -> None:
    # the read stamped 07:00 covers 06:30-07:00; the one stamped 23:30 covers 23:00-23:30
    assert period_at(august, TOU, jst(2024, 7, 10, 7, 0)) == "night"
    assert period_at(august, TOU, jst(2024, 7, 10, 7, 30)) == "day"
    assert period_at(august, TOU, jst(2024, 7, 10, 23, 0)) == "day"
    assert period_at(august, TOU, jst(2024, 7, 10, 23, 30)) == "night"
    assert period_at(august, FLAT, jst(2024, 7, 10, 3, 0)) == "all"


def test_seasonal_plan_weekday_weekend_and_public_holiday(august: BillingCalendar) -> None:
    # 2024-07-15 is Marine Day, a Monday: a weekday afternoon that is a holiday
    assert period_at(august, SEASONAL, jst(2024, 7, 15, 14, 0)) == "offpeak"
    assert period_at(august, SEASONAL, jst(2024, 7, 16, 14, 0)) == "peak"  # Tuesday
    assert period_at(august, SEASONAL, jst(2024, 7, 16, 13, 0)) == "daytime"  # 12:30-13:00
    assert period_at(august, SEASONAL, jst(2024, 7, 16, 16, 0)) == "peak"  # 15:30-16:00
    assert period_at(august, SEASONAL, jst(2024, 7, 16, 16, 30)) == "daytime"
    assert period_at(august, SEASONAL, jst(2024, 7, 13, 14, 0)) == "offpeak"  # Saturday
    assert period_at(august, SEASONAL, jst(2024, 7, 14, 14, 0)) == "offpeak"  # Sunday
    assert period_at(august, SEASONAL, jst(2024, 7, 15, 2, 0)) == "night"  # holiday night
    # the holiday starts at local midnight: 23:30-24:00 of the 14th is Sunday's, 00:00-00:30
    # of the 16th is Tuesday's; both night anyway, so look at 07:00-07:30
    assert period_at(august, SEASONAL, jst(2024, 7, 15, 7, 30)) == "offpeak"
    assert period_at(august, SEASONAL, jst(2024, 7, 16, 7, 30)) == "daytime"


def test_peak_is_summer_only(book: TariffBook) -> None:
    cal = BillingCalendar.build(book, jst(2024, 10, 1), jst(2024, 10, 3))
    assert period_at(cal, SEASONAL, jst(2024, 10, 1, 14, 0)) == "daytime"  # Tuesday, October


def test_new_year_period_is_a_holiday_when_the_plan_says_so(book: TariffBook) -> None:
    cal = BillingCalendar.build(book, jst(2024, 12, 30), jst(2025, 1, 7))
    # 2025-01-02 (Thursday) and 01-03 (Friday): extra holidays; 01-06 (Monday): a weekday
    assert period_at(cal, SEASONAL, jst(2025, 1, 2, 12, 0)) == "offpeak"
    assert period_at(cal, SEASONAL, jst(2025, 1, 3, 12, 0)) == "offpeak"
    assert period_at(cal, SEASONAL, jst(2025, 1, 6, 12, 0)) == "daytime"
    assert period_at(cal, SEASONAL, jst(2024, 12, 31, 12, 0)) == "daytime"  # Tuesday
    text = tomllib.loads(
        (Path(__file__).parents[3] / "src/openami/mdm/billing/tariffs.toml").read_text("utf-8")
    )
    del text["tariffs"][SEASONAL]["extra_holidays"]
    plain = parse_tariffs(text)
    cal = BillingCalendar.build(plain, jst(2024, 12, 30), jst(2025, 1, 7))
    assert period_at(cal, SEASONAL, jst(2025, 1, 2, 12, 0)) == "daytime"
    assert period_at(cal, SEASONAL, jst(2025, 1, 1, 12, 0)) == "offpeak"  # New Year's Day


def test_holiday_dates_come_from_the_japanese_calendar(book: TariffBook) -> None:
    days = {d.isoformat() for d in holiday_dates(book[SEASONAL], [2024])}
    assert {"2024-07-15", "2024-09-16", "2024-09-23", "2024-01-02", "2024-01-03"} <= days
    assert "2024-02-12" in days  # substitute holiday for Foundation Day on a Sunday
    assert "2024-07-16" not in days
    assert holiday_dates(book[TOU], [2024]) == []
    leap_only = Tariff("x", "x", ("all",), book[FLAT].rules, extra_holidays=((2, 29),))
    assert [d.isoformat() for d in holiday_dates(leap_only, [2023, 2024])] == ["2024-02-29"]
