"""Billing cycles and the precomputed calendar of interval ends.

Everything that depends on local time (time-of-use periods, holidays, the meter-reading day)
is worked out once per interval end of a window and kept in two small lookup tables:

- ``period_lut[tariff, slot]``: index of the TOU period of the interval ending at ``slot``,
- ``cycle_lut[reading_day, slot]``: local date (days since 1970-01-01) on which the billing
  cycle holding that interval starts, for a meter read on ``reading_day``.

A window of two months is ~2,900 slots, so the tables hold a few hundred thousand entries at
most, however many meters are billed. Reads then find their period and cycle by integer
indexing (a join against this calendar done as array lookups), never by per-row time zone
arithmetic. The calendar is plain data: it pickles, so a Dask scheduler can ship it to
workers once.

An interval belongs to the local date and time at which it STARTS (the read identified by
the interval end 07:00 covers 06:30-07:00), both for its period and for its cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import numpy.typing as npt
import polars as pl

from openami.errors import AmiError
from openami.mdm.billing.tariff import Tariff, TariffBook

__all__ = [
    "INTERVAL_S",
    "MAX_READING_DAY",
    "MAX_SPAN_DAYS",
    "NO_CYCLE",
    "BillingCalendar",
    "BillingError",
    "BillingMonth",
]

INTERVAL_S = 1800  # determinants are defined on 30-minute intervals (max 30-minute demand)
MAX_READING_DAY = 28  # every month has the reading day: no cycle skips February
NO_CYCLE = np.iinfo(np.int32).min  # cycle_lut value: the slot is in no cycle being billed
MAX_SPAN_DAYS = 400  # a calendar covers at most this: lookup tables stay a few MB
_EPOCH = date(1970, 1, 1)


class BillingError(AmiError):
    """Input to billing breaks its contract (schema, alignment, unknown tariff, ...)."""


@dataclass(frozen=True, order=True)
class BillingMonth:
    """A billing month in Japanese usage ("N月分"): the cycle that the meter-reading day of
    this month closes. A meter read on day ``d`` is billed for month M over the intervals
    from day ``d`` of month M-1, 00:00 local time, up to day ``d`` of month M, 00:00
    (exclusive): e.g. reading day 15 and M = 2024-04 covers 15 March to 14 April."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1900 <= self.year <= 9998:
            raise BillingError(f"no such billing month {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str) -> BillingMonth:
        """'YYYY-MM'."""
        try:
            year, month = (int(p) for p in text.split("-"))
        except ValueError:
            raise BillingError(f"billing month {text!r} is not YYYY-MM") from None
        return cls(year, month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def previous(self) -> BillingMonth:
        return (
            BillingMonth(self.year - 1, 12)
            if self.month == 1
            else BillingMonth(self.year, self.month - 1)
        )

    def cycle_dates(self, reading_day: int) -> tuple[date, date]:
        """(first day, day after the last day) of the cycle, local dates."""
        _check_reading_day(reading_day)
        prev = self.previous()
        return date(prev.year, prev.month, reading_day), date(self.year, self.month, reading_day)

    def cycle_span(self, reading_day: int, timezone: str) -> tuple[datetime, datetime]:
        """The cycle as UTC instants [start, end): its reads have interval ends in
        (start, end]."""
        first, after = self.cycle_dates(reading_day)
        return _local_midnight(first, timezone), _local_midnight(after, timezone)

    def window(self, timezone: str) -> tuple[datetime, datetime]:
        """The span covering the cycles of every reading day (1 .. 28) of this month."""
        return (
            self.cycle_span(1, timezone)[0],
            self.cycle_span(MAX_READING_DAY, timezone)[1],
        )


def _check_reading_day(day: int) -> None:
    if not 1 <= day <= MAX_READING_DAY:
        raise BillingError(f"meter-reading day {day} is outside 1..{MAX_READING_DAY}")


def _local_midnight(day: date, timezone: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def _epoch_s(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise BillingError(f"{moment} has no time zone")
    seconds = int(moment.timestamp())
    if seconds % INTERVAL_S or moment.microsecond:
        raise BillingError(f"{moment.isoformat()} is not on the 30-minute grid")
    return seconds


@dataclass(frozen=True, eq=False)
class BillingCalendar:
    """Lookup tables for the interval ends ``first_end, first_end + 30 min, ...`` (``slots``
    of them). Build with :meth:`build` or :meth:`for_month`."""

    book: TariffBook
    first_end: int  # Unix seconds of the first interval end covered
    slots: int
    period_lut: npt.NDArray[np.int8] = field(repr=False)  # [tariff * slots + slot]
    cycle_lut: npt.NDArray[np.int32] = field(repr=False)  # [reading_day * slots + slot]
    # [(tariff * 29 + reading_day) * slots + slot] -> (cycle start - base_day) << 8 | period,
    # or -1 outside the cycles billed: what a read needs, in one lookup
    packed_lut: npt.NDArray[np.int32] = field(repr=False)
    month: BillingMonth | None = None  # set: only that month's cycles are in cycle_lut

    @property
    def last_end(self) -> int:
        return self.first_end + (self.slots - 1) * INTERVAL_S

    @property
    def span(self) -> tuple[datetime, datetime]:
        """The covered span as UTC instants [start, end): interval ends in (start, end]."""
        return (
            datetime.fromtimestamp(self.first_end - INTERVAL_S, UTC),
            datetime.fromtimestamp(self.last_end, UTC),
        )

    def tariff_index(self, code: str) -> int:
        try:
            return self.book.codes.index(code)
        except ValueError:
            raise BillingError(f"unknown tariff {code!r}") from None

    @classmethod
    def for_month(cls, book: TariffBook, month: BillingMonth) -> BillingCalendar:
        """The calendar of one billing month: every reading day's cycle, and nothing else
        (reads outside a meter's cycle of ``month`` are left out of its determinants)."""
        start, end = month.window(book.timezone)
        return cls.build(book, start, end, month)

    @classmethod
    def build(
        cls,
        book: TariffBook,
        start: datetime,
        end: datetime,
        month: BillingMonth | None = None,
    ) -> BillingCalendar:
        """The calendar for interval ends in (start, end]; both aware and on the 30-minute
        grid. Without ``month`` every cycle touching the span is kept (for accumulating a
        day at a time); with it, only that month's cycles."""
        first = _epoch_s(start) + INTERVAL_S
        last = _epoch_s(end)
        if last < first:
            raise BillingError("the calendar span is empty")
        slots = (last - first) // INTERVAL_S + 1
        if slots > MAX_SPAN_DAYS * 48:
            raise BillingError(f"the calendar span is longer than {MAX_SPAN_DAYS} days")
        local = _local_columns(first, slots, book.timezone)
        periods = np.concatenate([_periods(t, local) for t in book.tariffs])
        cycles = _cycles(local, month, book.timezone, first, slots)
        packed = _packed(periods, cycles, first, slots)
        return cls(book, first, slots, periods, cycles, packed, month)

    @property
    def base_day(self) -> int:
        """Days since 1970-01-01 that ``packed_lut`` counts cycle starts from: no cycle
        holding an interval of the span starts earlier."""
        return _base_day(self.first_end)

    def frame(self) -> pl.DataFrame:
        """The calendar as a frame (tariff, interval_end, period): for people and tests."""
        ends = self.first_end + INTERVAL_S * np.arange(self.slots, dtype=np.int64)
        parts = []
        for i, tariff in enumerate(self.book.tariffs):
            idx = self.period_lut[i * self.slots : (i + 1) * self.slots]
            parts.append(
                pl.DataFrame(
                    {
                        "tariff": pl.Series([tariff.code] * self.slots, dtype=pl.String),
                        "interval_end": pl.from_epoch(pl.Series(ends), "s").dt.replace_time_zone(
                            "UTC"
                        ),
                        "period": pl.Series(np.asarray(tariff.periods)[idx], dtype=pl.String),
                    }
                )
            )
        return pl.concat(parts)

    def cycle_start(self, reading_day: int, interval_end: datetime) -> date | None:
        """Local start date of the cycle holding that interval (None: outside the span or
        outside the calendar's month)."""
        _check_reading_day(reading_day)
        slot = (_epoch_s(interval_end) - self.first_end) // INTERVAL_S
        if not 0 <= slot < self.slots:
            return None
        value = int(self.cycle_lut[reading_day * self.slots + slot])
        return None if value == NO_CYCLE else _EPOCH + timedelta(days=value)


def _base_day(first_end: int) -> int:
    return first_end // 86_400 - 40  # a cycle starts at most ~31 days before its intervals


def _packed(
    periods: npt.NDArray[np.int8], cycles: npt.NDArray[np.int32], first: int, slots: int
) -> npt.NDArray[np.int32]:
    tariffs = periods.size // slots
    period = periods.reshape(tariffs, 1, slots).astype(np.int32)
    cycle = cycles.reshape(1, MAX_READING_DAY + 1, slots).astype(np.int64)
    offset = cycle - _base_day(first)
    if (offset[cycle != NO_CYCLE] < 0).any():  # cannot happen: base_day is early enough
        raise BillingError("a cycle starts before the calendar's base day")
    packed = np.where(cycle == NO_CYCLE, -1, (offset << 8) | period)
    return packed.astype(np.int32).reshape(-1)


def _local_columns(first: int, slots: int, timezone: str) -> pl.DataFrame:
    """Per slot, the local month, date, weekday and minute of the day of the interval START."""
    starts = first - INTERVAL_S + INTERVAL_S * np.arange(slots, dtype=np.int64)
    local = pl.from_epoch(pl.Series("t", starts), "s").dt.replace_time_zone("UTC")
    local = local.dt.convert_time_zone(timezone)
    return pl.DataFrame(
        {
            "month": local.dt.month(),
            "day": local.dt.day(),
            "year": local.dt.year(),
            "weekday": local.dt.weekday(),  # ISO: Monday 1 .. Sunday 7
            "date": local.dt.date(),
            "minute": local.dt.hour().cast(pl.Int16) * 60 + local.dt.minute().cast(pl.Int16),
        }
    )


def holiday_dates(tariff: Tariff, years: list[int]) -> list[date]:
    """Public holidays of the tariff's country and its extra holidays, for ``years``
    (weekday rest days are not listed: they are matched by weekday)."""
    found: set[date] = set()
    if tariff.holiday_country is not None:
        found.update(holidays.country_holidays(tariff.holiday_country, years=years).keys())
    for year in years:
        for month, day in tariff.extra_holidays:
            if month == 2 and day == 29 and not _leap(year):
                continue
            found.add(date(year, month, day))
    return sorted(found)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _periods(tariff: Tariff, local: pl.DataFrame) -> npt.NDArray[np.int8]:
    years = local.get_column("year").unique().sort().to_list()
    days = holiday_dates(tariff, years)
    holiday = pl.col("weekday").is_in(sorted(tariff.rest_days)) | pl.col("date").is_in(
        pl.Series(days, dtype=pl.Date).implode()
    )
    out = local.with_columns(holiday=holiday).select(period=tariff.period_index())
    column = out.get_column("period")
    if column.null_count():  # load_tariffs rules this out; a hand-built Tariff might not
        raise BillingError(f"tariff {tariff.code!r} leaves some intervals without a period")
    return column.to_numpy().astype(np.int8)


def _cycles(
    local: pl.DataFrame, month: BillingMonth | None, timezone: str, first: int, slots: int
) -> npt.NDArray[np.int32]:
    """cycle_lut: row 0 is unused so that the reading day indexes it directly."""
    days = pl.DataFrame({"rd": pl.int_range(1, MAX_READING_DAY + 1, eager=True)})
    grid = days.join(local.select("year", "month", "day"), how="cross")
    # months since year 0 of the cycle start: this month if on/after the reading day
    ym = pl.col("year") * 12 + pl.col("month") - 1 - (pl.col("day") < pl.col("rd")).cast(pl.Int32)
    start = pl.date(ym // 12, ym % 12 + 1, pl.col("rd"))
    values = grid.select(start.cast(pl.Int32)).to_series().to_numpy().astype(np.int32)
    table = np.full((MAX_READING_DAY + 1, slots), NO_CYCLE, dtype=np.int32)
    table[1:] = values.reshape(MAX_READING_DAY, slots)
    if month is not None:
        ends = first + INTERVAL_S * np.arange(slots, dtype=np.int64)
        for rd in range(1, MAX_READING_DAY + 1):
            lo, hi = month.cycle_span(rd, timezone)
            outside = (ends <= int(lo.timestamp())) | (ends > int(hi.timestamp()))
            table[rd, outside] = NO_CYCLE
    return table.reshape(-1)
