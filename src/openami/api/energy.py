"""Customer energy views, computed: use per day or month, a home against similar homes, and
the estimated cost of a month under the customer's tariff. Pure functions over Polars frames
and plain values (no HTTP here); ``energy_routes`` reads the stores and the registry, asks
the caller's rights, and calls these.

Which reads count is billing's rule (``openami.mdm.billing.validated_reads``): an interval
counts when both its import and export reads have a value and passed VEE, or were estimated
or edited by it. What a customer sees as their use is what a bill would be computed from.

Local time is the tariff book's (Asia/Tokyo): an interval belongs to the local day in which
it STARTS (the read identified by 00:00 is the previous day's last half hour).

Cost estimates price billing's determinants (``accumulate``/``finalize`` on a calendar month
seen as the cycle of meter-reading day 1) with the price table ``prices.toml`` beside the
tariff book: illustrative prices, not any utility's published rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from openami.bus.contract import Channel
from openami.config import read_toml
from openami.errors import AmiError, ConfigError
from openami.mdm.billing import (
    INTERVAL_S,
    BillingCalendar,
    BillingMonth,
    TariffBook,
    accumulate,
    finalize,
)
from openami.mdm.vee.flags import ESTIMATED, FAILED, Quality
from openami.store.validated import Origin

__all__ = [
    "MIN_PEERS",
    "PRICES_FORMAT",
    "Comparison",
    "Contract",
    "CostEstimate",
    "NoAnswer",
    "PeriodCost",
    "PriceBook",
    "TariffPrices",
    "TooFewPeers",
    "billable",
    "compare",
    "day_span",
    "estimate_cost",
    "grid_up",
    "group_quantile",
    "load_prices",
    "month_calendar",
    "month_span",
    "parse_prices",
    "usage",
]

MIN_PEERS = 5  # a comparison needs at least this many OTHER similar homes
PRICES_FORMAT = 1
_REPLACED = int(ESTIMATED | Quality.EDITED)
_SEN = Decimal("0.01")


class NoAnswer(AmiError):
    """The data cannot answer the question asked (no reads, no contract in the month); the
    message says why, for the caller."""


class TooFewPeers(NoAnswer):
    """Fewer than ``MIN_PEERS`` other similar homes to compare with: their aggregates could
    tell one home's own use."""


# -- time ----------------------------------------------------------------------------------


def local_midnight(day: date, timezone: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def day_span(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """The local days ``first`` .. ``last`` (both included) as UTC instants (start, end]:
    their reads have interval ends in (start, end]."""
    return local_midnight(first, timezone), local_midnight(last + timedelta(days=1), timezone)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def month_span(year: int, month: int, timezone: str) -> tuple[datetime, datetime]:
    """The local calendar month as UTC instants (start, end]."""
    after = _next_month(year, month)
    return (
        local_midnight(date(year, month, 1), timezone),
        local_midnight(date(*after, 1), timezone),
    )


def _local(seconds: pl.Expr, timezone: str) -> pl.Expr:
    return (
        pl.from_epoch(seconds, time_unit="s")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(timezone)
    )


# -- reads ---------------------------------------------------------------------------------


def billable(rows: pl.DataFrame) -> pl.DataFrame:
    """Validated reads (``DataSource.interval_reads``: meter_id, channel, interval_end in
    Unix s, value_wh, flags, origin) as one row per meter and interval: ``meter_id``,
    ``end_s``, ``import_wh``, ``export_wh``, ``valid`` (billing's rule, both channels)."""
    flags = pl.col("flags").cast(pl.Int64)
    ok = (
        pl.col("value_wh").is_not_null()
        & (pl.col("origin") != int(Origin.MISSING))
        & (((flags & int(FAILED)) == 0) | ((flags & _REPLACED) != 0))
    )

    def side(channel: Channel, name: str) -> pl.DataFrame:
        return rows.filter(pl.col("channel") == int(channel)).select(
            pl.col("meter_id").cast(pl.Int64),
            pl.col("interval_end").cast(pl.Int64).alias("end_s"),
            pl.col("value_wh").cast(pl.Int64).alias(f"{name}_wh"),
            ok.alias(f"{name}_ok"),
        )

    both = side(Channel.IMPORT_INTERVAL, "import").join(
        side(Channel.EXPORT_INTERVAL, "export"),
        on=["meter_id", "end_s"],
        how="full",
        coalesce=True,
    )
    return both.select(
        "meter_id",
        "end_s",
        "import_wh",
        "export_wh",
        valid=pl.col("import_ok").fill_null(False) & pl.col("export_ok").fill_null(False),
    ).sort("meter_id", "end_s")


# -- use per day or month --------------------------------------------------------------------


def usage(
    reads: pl.DataFrame, start: datetime, end: datetime, timezone: str, *, monthly: bool
) -> pl.DataFrame:
    """Use per local day (or month) of the whole local days in (start, end]: ``period``
    ('YYYY-MM-DD' or 'YYYY-MM'), ``import_wh``, ``export_wh`` (valid intervals only),
    ``intervals`` (valid intervals it is based on) and ``intervals_expected`` (30-minute
    intervals in the period). ``reads``: :func:`billable` rows of one meter."""
    lo, hi = int(start.timestamp()), int(end.timestamp())
    label = (
        _local(pl.col("end_s") - 1, timezone)  # the day in which the interval starts
        .dt.strftime("%Y-%m" if monthly else "%Y-%m-%d")
        .alias("period")
    )
    grid = pl.DataFrame(
        {"end_s": pl.int_range(lo + INTERVAL_S, hi + 1, INTERVAL_S, dtype=pl.Int64, eager=True)}
    )
    expected = grid.group_by(label).agg(intervals_expected=pl.len().cast(pl.Int64))
    got = (
        reads.filter(pl.col("valid") & (pl.col("end_s") > lo) & (pl.col("end_s") <= hi))
        .group_by(label)
        .agg(
            pl.col("import_wh").sum(),
            pl.col("export_wh").sum(),
            intervals=pl.len().cast(pl.Int64),
        )
    )
    return (
        expected.join(got, on="period", how="left")
        .select(
            "period",
            pl.col("import_wh", "export_wh", "intervals").fill_null(0).cast(pl.Int64),
            "intervals_expected",
        )
        .sort("period")
    )


# -- a home against similar homes ------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One home's import against its peer group's, over the same half hours. The group's
    figures are aggregates of at least ``MIN_PEERS`` other homes: none is one home's value
    (see :func:`group_quantile`)."""

    import_wh: int  # this home, over the intervals compared
    intervals: int  # the intervals compared: this home's valid ones
    peers: int  # other similar homes in the comparison
    left_out: int  # similar homes without a valid read for every one of those intervals
    p25_wh: float
    median_wh: float
    p75_wh: float
    percentile: float  # share of the peers using less than this home, ties counted half


def group_quantile(values: pl.Series, numerator: int, denominator: int) -> float:
    """The ``numerator/denominator`` quantile of ``values`` (at least three), never one
    value on its own: between two values it is the linear interpolation of both; where the
    rank falls exactly on one value it is the mean of that value and its two neighbours."""
    ordered = values.cast(pl.Float64).sort()
    n = ordered.len()
    if n < 3:
        raise ValueError("a group quantile needs at least three values")
    whole, part = divmod(numerator * (n - 1), denominator)
    if part:
        share = part / denominator
        return float(ordered[whole] * (1 - share) + ordered[whole + 1] * share)
    whole = min(max(whole, 1), n - 2)
    return float(ordered.slice(whole - 1, 3).mean())  # type: ignore[arg-type]


def compare(reads: pl.DataFrame, meter_id: int, peers: list[int]) -> Comparison:
    """``meter_id``'s import against ``peers`` (other homes), all over the intervals where
    ``meter_id`` has a valid read; a peer counts only when it has a valid read for every
    one of them. ``reads``: :func:`billable` rows of the meter and its peers."""
    mine = reads.filter((pl.col("meter_id") == meter_id) & pl.col("valid"))
    if mine.height == 0:
        raise NoAnswer(f"meter {meter_id} has no validated reads in this span")
    others = (
        reads.filter(pl.col("meter_id").is_in(peers) & (pl.col("meter_id") != meter_id))
        .filter(pl.col("valid"))
        .join(mine.select("end_s"), on="end_s", how="semi")
        .group_by("meter_id")
        .agg(wh=pl.col("import_wh").sum(), n=pl.len())
        .filter(pl.col("n") == mine.height)
        .get_column("wh")
    )
    similar = len(set(peers) - {meter_id})
    if others.len() < MIN_PEERS:
        raise TooFewPeers(
            f"only {others.len()} other similar home(s) have reads for the same half hours "
            f"({similar} similar in all); a comparison needs at least {MIN_PEERS}, so that "
            "no home's own use can be told"
        )
    own = int(mine.get_column("import_wh").sum())
    below = int((others < own).sum())
    ties = int((others == own).sum())
    return Comparison(
        import_wh=own,
        intervals=mine.height,
        peers=others.len(),
        left_out=similar - others.len(),
        p25_wh=group_quantile(others, 1, 4),
        median_wh=group_quantile(others, 1, 2),
        p75_wh=group_quantile(others, 3, 4),
        percentile=round(100 * (below + ties / 2) / others.len(), 1),
    )


# -- prices --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TariffPrices:
    code: str
    basic_yen_per_ampere: Decimal  # per contract ampere, per month
    energy_yen_per_kwh: tuple[tuple[str, Decimal], ...]  # per period, in the tariff's order

    def energy(self, period: str) -> Decimal:
        return dict(self.energy_yen_per_kwh)[period]


@dataclass(frozen=True)
class PriceBook:
    """Prices per tariff of a tariff book (``prices.toml``: illustrative, see there)."""

    currency: str
    source: str
    tariffs: tuple[TariffPrices, ...]

    def __getitem__(self, code: str) -> TariffPrices:
        for prices in self.tariffs:
            if prices.code == code:
                return prices
        raise KeyError(code)


def load_prices(book: TariffBook, path: Path | None = None) -> PriceBook:
    """The price table in ``path``, or the illustrative one shipped beside the tariff book
    (``openami/mdm/billing/prices.toml``), checked against ``book``."""
    data, source = read_toml(path, "openami.mdm.billing", "prices.toml", "price file")
    return parse_prices(data, book, source)


def _unknown(table: Mapping[str, Any], keys: set[str], where: str) -> None:
    extra = sorted(set(table) - keys)
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}")


def _price(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: must be a number, zero or more")
    return Decimal(str(value))


def parse_prices(data: Mapping[str, Any], book: TariffBook, source: str = "prices") -> PriceBook:
    """Check and build a price book: every tariff of ``book`` priced, every one of its
    periods and no other; every error names where it is."""
    if data.get("format") != PRICES_FORMAT:
        raise ConfigError(f"{source}: 'format' must be {PRICES_FORMAT}")
    _unknown(data, {"format", "currency", "source", "prices"}, source)
    currency, origin, table = data.get("currency"), data.get("source"), data.get("prices")
    if not isinstance(currency, str) or not currency:
        raise ConfigError(f"{source}: 'currency' must be a currency code such as 'JPY'")
    if not isinstance(origin, str) or not origin:
        raise ConfigError(f"{source}: 'source' must say where the prices come from")
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: no [prices.CODE] tables")
    strangers = sorted(set(table) - set(book.codes))
    if strangers:
        raise ConfigError(f"{source}: prices for unknown tariff(s) {', '.join(strangers)}")
    out = []
    for tariff in book.tariffs:
        where = f"{source}: prices of {tariff.code!r}"
        body = table.get(tariff.code)
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: missing (every tariff needs prices)")
        _unknown(body, {"basic_yen_per_ampere", "energy_yen_per_kwh"}, where)
        energy = body.get("energy_yen_per_kwh")
        if not isinstance(energy, dict):
            raise ConfigError(f"{where}: needs an [energy_yen_per_kwh] table")
        _unknown(energy, set(tariff.periods), f"{where}: energy_yen_per_kwh")
        missing = [p for p in tariff.periods if p not in energy]
        if missing:
            raise ConfigError(f"{where}: no energy price for period(s) {', '.join(missing)}")
        out.append(
            TariffPrices(
                tariff.code,
                _price(body.get("basic_yen_per_ampere"), f"{where}: basic_yen_per_ampere"),
                tuple(
                    (p, _price(energy[p], f"{where}: energy_yen_per_kwh.{p}"))
                    for p in tariff.periods
                ),
            )
        )
    return PriceBook(currency, origin, tuple(out))


# -- cost ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contract:
    """The retail contract a meter is billed under, as the registry has it."""

    contract_id: str
    meter_id: int
    tariff: str  # tariff-book code
    amps: int  # contract current
    valid_from: datetime  # UTC, on the 30-minute grid
    valid_to: datetime | None  # exclusive; None: open


@dataclass(frozen=True)
class PeriodCost:
    period: str
    wh: int
    yen_per_kwh: Decimal
    charge: Decimal


@dataclass(frozen=True)
class CostEstimate:
    contract: Contract
    span_start: datetime  # the reads priced have interval ends in (span_start, span_end]
    span_end: datetime
    intervals_expected: int
    intervals_valid: int
    periods: tuple[PeriodCost, ...]
    energy_charge: Decimal
    basic_share: Decimal  # the part of the month the contract covers
    basic_charge: Decimal
    total: Decimal
    currency: str
    source: str


def month_calendar(book: TariffBook, year: int, month: int) -> BillingCalendar:
    """Billing's calendar of one local calendar month: the cycle that meter-reading day 1
    of the next month closes."""
    start, end = month_span(year, month, book.timezone)
    return BillingCalendar.build(book, start, end, BillingMonth(*_next_month(year, month)))


def grid_up(moment: datetime) -> datetime:
    """The first 30-minute boundary at or after ``moment``."""
    seconds = -(-int(moment.timestamp()) // INTERVAL_S) * INTERVAL_S
    return datetime.fromtimestamp(seconds, UTC)


def _money(value: Decimal) -> Decimal:
    return value.quantize(_SEN, rounding=ROUND_HALF_UP)


def estimate_cost(
    reads: pl.DataFrame,
    contract: Contract,
    calendar: BillingCalendar,
    prices: PriceBook,
    data_from: datetime | None = None,
) -> CostEstimate:
    """The month's estimated cost under ``contract``: billing's determinants of the month
    (import per time-of-use period, valid reads within the contract and after
    ``data_from``) priced per period, plus the basic charge per contract ampere for the part
    of the month the contract covers. Money is rounded to the sen, half up, per line."""
    month_start, month_end = calendar.span
    cut_from = max(contract.valid_from, grid_up(data_from or contract.valid_from))
    frame = pl.DataFrame(
        {
            "contract_id": [contract.contract_id],
            "meter_id": [contract.meter_id],
            "tariff": [contract.tariff],
            "contract_amps": [contract.amps],
            "reading_day": [1],
            "valid_from": [cut_from],
            "valid_to": [contract.valid_to],
        },
        schema={
            "contract_id": pl.String,
            "meter_id": pl.Int64,
            "tariff": pl.String,
            "contract_amps": pl.Int64,
            "reading_day": pl.Int32,
            "valid_from": pl.Datetime("us", "UTC"),
            "valid_to": pl.Datetime("us", "UTC"),
        },
    )
    inputs = reads.filter(pl.col("meter_id") == contract.meter_id).select(
        "meter_id",
        pl.from_epoch("end_s", time_unit="s")
        .dt.replace_time_zone("UTC")
        .cast(pl.Datetime("us", "UTC"))
        .alias("interval_end"),
        "import_wh",
        "export_wh",
        "valid",
    )
    found = finalize(accumulate(inputs, frame, calendar), frame, calendar)
    if found.height != 1:
        raise NoAnswer(f"contract {contract.contract_id} covers none of this month")
    row = found.row(0, named=True)
    tariff_prices = prices[contract.tariff]
    lines = tuple(
        PeriodCost(
            p["period"],
            int(p["wh"]),
            tariff_prices.energy(p["period"]),
            _money(Decimal(int(p["wh"])) / 1000 * tariff_prices.energy(p["period"])),
        )
        for p in row["period_wh"]
    )
    # the basic charge follows the contract (not the reads a consent lets a caller see)
    covered_to = month_end if contract.valid_to is None else min(contract.valid_to, month_end)
    covered = (covered_to - max(contract.valid_from, month_start)).total_seconds()
    share = Decimal(int(max(covered, 0))) / Decimal(int((month_end - month_start).total_seconds()))
    basic = _money(tariff_prices.basic_yen_per_ampere * contract.amps * share)
    energy = sum((line.charge for line in lines), Decimal(0))
    return CostEstimate(
        contract=contract,
        span_start=row["span_start"],
        span_end=row["span_end"],
        intervals_expected=int(row["intervals_expected"]),
        intervals_valid=int(row["intervals_valid"]),
        periods=lines,
        energy_charge=energy,
        basic_share=share,
        basic_charge=basic,
        total=energy + basic,
        currency=prices.currency,
        source=prices.source,
    )
