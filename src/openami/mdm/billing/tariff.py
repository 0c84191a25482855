"""Tariff definitions: which time-of-use period each half hour of local time belongs to.

Tariffs are data (a TOML file a utility edits, see ``tariffs.toml`` in this package for the
format), not code: period names, hours, seasons and holiday rules are read from the file and
turned into one Polars expression per tariff. Loading checks that the rules cover every half
hour of every month on weekdays and holidays and that every listed period can occur, so a
typo shows up when the file is read, not as a silently zero period on a bill.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import polars as pl

from openami.config import read_toml
from openami.errors import ConfigError

__all__ = [
    "FORMAT_VERSION",
    "SLOT_MINUTES",
    "DayKind",
    "Rule",
    "Tariff",
    "TariffBook",
    "load_tariffs",
    "parse_tariffs",
]

FORMAT_VERSION = 1
SLOT_MINUTES = 30  # period boundaries fall on half hours: the 30-minute interval grid
_DAY_MINUTES = 24 * 60
_WEEKDAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}


class DayKind(Enum):
    """Which days a rule applies to. A holiday is a rest day (e.g. Saturday, Sunday), a
    public holiday of the tariff's country, or one of its extra holidays."""

    ANY = "any"
    WEEKDAY = "weekday"
    HOLIDAY = "holiday"


@dataclass(frozen=True)
class Rule:
    """One line of a tariff: intervals starting in ``[start_minute, end_minute)`` local time
    (wrapping midnight when start > end) on ``days`` in ``months`` are in ``period``."""

    period: str
    start_minute: int = 0
    end_minute: int = _DAY_MINUTES
    days: DayKind = DayKind.ANY
    months: frozenset[int] = frozenset()  # empty: every month

    def matches(self) -> pl.Expr:
        """A boolean expression over the calendar columns ``month`` (1..12), ``holiday``
        (bool) and ``minute`` (minute of the day at which the interval starts, local time)."""
        minute = pl.col("minute")
        if self.start_minute < self.end_minute:
            cond = (minute >= self.start_minute) & (minute < self.end_minute)
        else:  # wraps midnight
            cond = (minute >= self.start_minute) | (minute < self.end_minute)
        if self.days is DayKind.WEEKDAY:
            cond = cond & ~pl.col("holiday")
        elif self.days is DayKind.HOLIDAY:
            cond = cond & pl.col("holiday")
        if self.months:
            cond = cond & pl.col("month").is_in(sorted(self.months))
        return cond


@dataclass(frozen=True)
class Tariff:
    """A tariff: its periods in bill order, its rules (first match wins) and what counts as
    a holiday for it."""

    code: str
    name: str
    periods: tuple[str, ...]
    rules: tuple[Rule, ...]
    holiday_country: str | None = None
    rest_days: frozenset[int] = frozenset()  # ISO weekdays, 1 = Monday
    extra_holidays: tuple[tuple[int, int], ...] = ()  # (month, day), every year

    def period_index(self) -> pl.Expr:
        """The index in ``periods`` of the first matching rule's period (null if none
        matches, which a loaded tariff rules out)."""
        expr: Any = pl
        for rule in self.rules:
            expr = expr.when(rule.matches()).then(pl.lit(self.periods.index(rule.period)))
        return (expr.otherwise(None) if self.rules else pl.lit(None)).cast(pl.Int8)


@dataclass(frozen=True)
class TariffBook:
    """Every tariff of a utility, with the local time zone of tariffs and reading days."""

    timezone: str
    tariffs: tuple[Tariff, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.tariffs)

    @property
    def max_periods(self) -> int:
        return max((len(t.periods) for t in self.tariffs), default=1)

    def __getitem__(self, code: str) -> Tariff:
        for tariff in self.tariffs:
            if tariff.code == code:
                return tariff
        raise KeyError(code)


def load_tariffs(path: Path | None = None) -> TariffBook:
    """The tariff book in ``path``, or the one shipped with openami (``tariffs.toml`` in this
    package) when no path is given."""
    data, source = read_toml(path, "openami.mdm.billing", "tariffs.toml", "tariff file")
    return parse_tariffs(data, source)


def parse_tariffs(data: Mapping[str, Any], source: str = "tariffs") -> TariffBook:
    """Check and build a tariff book from parsed TOML; every error names where it is."""
    if data.get("format") != FORMAT_VERSION:
        raise ConfigError(f"{source}: 'format' must be {FORMAT_VERSION}")
    _known(data, {"format", "timezone", "tariffs"}, source)
    tz = data.get("timezone")
    if not isinstance(tz, str):
        raise ConfigError(f"{source}: 'timezone' must be a time zone name such as 'Asia/Tokyo'")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{source}: unknown time zone {tz!r}") from None
    table = data.get("tariffs")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{source}: no [tariffs.CODE] tables")
    tariffs = tuple(
        _tariff(code, body, f"{source}: tariff {code!r}") for code, body in table.items()
    )
    for tariff in tariffs:
        _check_coverage(tariff, f"{source}: tariff {tariff.code!r}")
    return TariffBook(tz, tariffs)


def _known(table: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _tariff(code: str, body: Any, where: str) -> Tariff:
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: must be a table")
    _known(body, {"name", "periods", "holidays", "rest_days", "extra_holidays", "rules"}, where)
    periods = body.get("periods")
    if (
        not isinstance(periods, list)
        or not periods
        or not all(isinstance(p, str) and p for p in periods)
    ):
        raise ConfigError(f"{where}: 'periods' must be a non-empty list of names")
    if len(set(periods)) != len(periods):
        raise ConfigError(f"{where}: 'periods' names a period twice")
    if len(periods) > 127:
        raise ConfigError(f"{where}: at most 127 periods")
    country = body.get("holidays")
    if country is not None and not (isinstance(country, str) and country):
        raise ConfigError(f"{where}: 'holidays' must be a country code such as 'JP'")
    if country is not None:
        _check_country(country, where)
    rest = body.get("rest_days", [])
    if not isinstance(rest, list) or not all(isinstance(d, str) and d in _WEEKDAYS for d in rest):
        raise ConfigError(f"{where}: 'rest_days' must list weekdays (mon, tue, ... sun)")
    extra = body.get("extra_holidays", [])
    if not isinstance(extra, list):
        raise ConfigError(f"{where}: 'extra_holidays' must be a list of 'MM-DD' dates")
    rules_raw = body.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise ConfigError(f"{where}: needs at least one [[rules]] entry")
    rules = tuple(_rule(raw, periods, f"{where} rule {i + 1}") for i, raw in enumerate(rules_raw))
    name = body.get("name", code)
    if not isinstance(name, str):
        raise ConfigError(f"{where}: 'name' must be text")
    return Tariff(
        code=code,
        name=name,
        periods=tuple(periods),
        rules=rules,
        holiday_country=country,
        rest_days=frozenset(_WEEKDAYS[d] for d in rest),
        extra_holidays=tuple(_month_day(d, where) for d in extra),
    )


def _check_country(country: str, where: str) -> None:
    try:
        holidays.country_holidays(country, years=2000)
    except NotImplementedError:
        raise ConfigError(f"{where}: no public holiday calendar for {country!r}") from None


def _month_day(text: Any, where: str) -> tuple[int, int]:
    try:
        month, day = (int(p) for p in str(text).split("-"))
    except ValueError:
        raise ConfigError(f"{where}: extra holiday {text!r} is not 'MM-DD'") from None
    days_in = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not (1 <= month <= 12 and 1 <= day <= days_in[month - 1]):
        raise ConfigError(f"{where}: extra holiday {text!r} is not a date")
    return month, day


def _rule(raw: Any, periods: Sequence[str], where: str) -> Rule:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    _known(raw, {"period", "hours", "days", "months"}, where)
    period = raw.get("period")
    if period not in periods:
        raise ConfigError(f"{where}: period {period!r} is not one of {list(periods)}")
    start, end = 0, _DAY_MINUTES
    if "hours" in raw:
        start, end = _hours(raw["hours"], where)
    try:
        days = DayKind(raw.get("days", "any"))
    except ValueError:
        raise ConfigError(f"{where}: 'days' must be 'any', 'weekday' or 'holiday'") from None
    months = raw.get("months", [])
    if not isinstance(months, list) or not all(
        isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 12 for m in months
    ):
        raise ConfigError(f"{where}: 'months' must list month numbers 1..12")
    return Rule(str(period), start, end, days, frozenset(months))


def _hours(text: Any, where: str) -> tuple[int, int]:
    """'HH:MM-HH:MM' -> (start, end) minutes of the day; half hours only."""
    try:
        first, second = str(text).split("-")
        start, end = _minute(first), _minute(second)
    except ValueError:
        raise ConfigError(f"{where}: 'hours' {text!r} is not 'HH:MM-HH:MM'") from None
    if start >= _DAY_MINUTES or start == end:
        raise ConfigError(f"{where}: 'hours' {text!r} is empty or out of range")
    if start % SLOT_MINUTES or end % SLOT_MINUTES:
        raise ConfigError(f"{where}: 'hours' {text!r} must start and end on a half hour")
    return start, end


def _minute(text: str) -> int:
    hours, minutes = text.strip().split(":")
    if len(minutes) != 2:
        raise ValueError(text)
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise ValueError(text)
    return h * 60 + m


def _check_coverage(tariff: Tariff, where: str) -> None:
    """Every half hour of every month on weekdays and holidays has a period; every period
    occurs somewhere. Evaluated with the same expression the calendar uses."""
    grid = pl.DataFrame(
        {
            "month": [m for m in range(1, 13) for _ in (False, True) for _ in range(48)],
            "holiday": [h for _ in range(1, 13) for h in (False, True) for _ in range(48)],
            "minute": [s * 30 for _ in range(1, 13) for _ in (False, True) for s in range(48)],
        }
    ).with_columns(period=tariff.period_index())
    hole = grid.filter(pl.col("period").is_null())
    if hole.height:
        row = hole.row(0, named=True)
        kind = "holidays" if row["holiday"] else "weekdays"
        m = row["minute"]
        raise ConfigError(
            f"{where}: no rule covers {kind} in month {row['month']} at "
            f"{m // 60:02d}:{m % 60:02d}-{(m + 30) // 60:02d}:{(m + 30) % 60:02d}"
        )
    used = set(grid.get_column("period").unique().to_list())
    unused = [p for i, p in enumerate(tariff.periods) if i not in used]
    if unused:
        raise ConfigError(f"{where}: period(s) {', '.join(unused)} can never occur")
