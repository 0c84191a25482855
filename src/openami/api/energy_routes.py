"""Customer energy views over the same API as the reads: use per day or month, a home
against similar homes, and the estimated cost of a month under the customer's tariff.

The same rules as the interval reads: any caller that may read the meter (an operator, the
customer, a third party with the customer's consent; anyone else gets the 404 of a meter that
does not exist), from the consent's history on; every access audited. The computation is in
``energy`` (Polars, no HTTP); here: parameters, the registry, rights and the answers' shape.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select, true

from openami.api.access import Caller, Denied
from openami.api.data_routes import MAX_SPAN, PROTECTED, Who, audit, state_of
from openami.api.energy import (
    MIN_PEERS,
    Contract,
    NoAnswer,
    PriceBook,
    TooFewPeers,
    billable,
    compare,
    day_span,
    estimate_cost,
    grid_up,
    load_prices,
    month_calendar,
    month_span,
    usage,
)
from openami.api.errors_doc import DATA_ERRORS, Refusal
from openami.mdm.billing import BillingCalendar, TariffBook, load_tariffs
from openami.mdm.registry import Registry, UsagePoint
from openami.mdm.registry.schema import (
    customer_agreement,
    meter,
    pricing_structure,
    usage_point,
    usage_point_meter,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["energy"], responses=DATA_ERRORS)
DEFAULT_AMPS = 30  # a contract whose tariff and agreement name no contract current
ESTIMATE_NOTE = (
    "estimate: validated reads so far priced with openami's illustrative price table (not any "
    "utility's published rate, no fuel cost adjustment or renewable energy surcharge); not a bill"
)
COMPARISON_NOTE = (
    f"aggregates of at least {MIN_PEERS} other similar homes over the same half hours; no "
    "figure is one home's own use"
)

MeterId = Annotated[int, Path(ge=1, le=2**40 - 1, description="The meter.")]
Month = Annotated[
    str,
    Query(
        pattern=r"^[0-9]{4}-[0-9]{2}$",
        description="A calendar month, Japan time: YYYY-MM",
        examples=["2026-08"],
    ),
]
DayOrMonth = r"^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$"


# -- what the answers look like --------------------------------------------------------------


class UsagePeriod(StrEnum):
    daily = "daily"
    monthly = "monthly"


class UsageRow(BaseModel):
    period: str = Field(description="The local day YYYY-MM-DD or month YYYY-MM (Japan time)")
    import_kwh: float
    export_kwh: float
    import_wh: int
    export_wh: int
    intervals: int = Field(description="The 30-minute intervals with a valid read it is based on")
    intervals_expected: int = Field(description="The 30-minute intervals in the day or month")
    complete: bool = Field(description="Every interval of the day or month has a valid read")


class EnergyUsage(BaseModel):
    meter_id: int
    period: UsagePeriod
    timezone: str
    start: str = Field(description="The first day's start, UTC (ISO 8601)")
    end: str = Field(description="The last day's end, UTC (ISO 8601)")
    usage: list[UsageRow]


class PeerGroup(BaseModel):
    area: str
    occupants: int
    all_electric: bool
    solar: bool = Field(description="Homes with (true) or without (false) solar generation")
    homes: int = Field(description="Other similar homes compared (at least 5)")
    left_out: int = Field(description="Similar homes without a valid read for every interval")
    p25_kwh: float
    median_kwh: float
    p75_kwh: float


class EnergyComparison(BaseModel):
    meter_id: int
    month: str
    start: str
    end: str
    intervals: int = Field(description="The half hours compared: this home's valid reads")
    import_kwh: float = Field(description="This home's use over those half hours")
    percentile: float = Field(description="Share (%) of the similar homes using less")
    peer_group: PeerGroup
    note: str


class PeriodCharge(BaseModel):
    period: str
    kwh: float
    wh: int
    yen_per_kwh: float
    energy_charge_yen: float


class EnergyCost(BaseModel):
    kind: Literal["estimate"] = Field(description="Always an estimate, never a bill")
    note: str
    meter_id: int
    month: str
    contract: str
    tariff: str
    tariff_name: str
    contract_amps: int
    currency: str
    prices_source: str
    start: str = Field(description="The reads priced end after this (UTC)")
    end: str = Field(description="... and at or before this (UTC)")
    intervals_expected: int
    intervals_valid: int
    complete: bool
    periods: list[PeriodCharge]
    energy_charge_yen: float
    basic_charge_yen: float
    basic_share: float = Field(description="The part of the month the contract covers")
    total_yen: float


def _refusals(**statuses: str) -> dict[int | str, dict[str, Any]]:
    return {
        int(code[1:]): {"model": Refusal, "description": text, "content": {"application/json": {}}}
        for code, text in statuses.items()
    }


# -- the tariff and price books ---------------------------------------------------------------


@functools.cache
def _books() -> tuple[TariffBook, PriceBook]:
    book = load_tariffs()
    return book, load_prices(book)


@functools.lru_cache(maxsize=24)
def _calendar(year: int, month: int) -> BillingCalendar:
    return month_calendar(_books()[0], year, month)


def _timezone() -> str:
    return _books()[0].timezone


# -- parameters -------------------------------------------------------------------------------


def _month(text: str, now: datetime) -> tuple[int, int, datetime, datetime]:
    year, month = int(text[:4]), int(text[5:7])
    if not 1 <= month <= 12 or not 1971 <= year <= 9998:
        raise Denied(400, f"month {text!r} is not a month YYYY-MM")
    start, end = month_span(year, month, _timezone())
    if start >= now:
        raise Denied(400, f"the month {text} has not begun")
    return year, month, start, end


def _day(text: str | None, default: date, *, last: bool, monthly: bool) -> date:
    """A day from 'YYYY-MM-DD', or from 'YYYY-MM' (its first day; its last when ``last``);
    counting in months (``monthly``), the first or last day of that day's month."""
    parts = [default.year, default.month, default.day]
    try:
        if text is not None:
            parts = [int(p) for p in text.split("-")]
        day = date(parts[0], parts[1], parts[2] if len(parts) == 3 else 1)
        if last and (monthly or len(parts) == 2):
            return _month_end(day)
        return day.replace(day=1) if monthly else day
    except ValueError:
        raise Denied(400, f"{text!r} is not a date YYYY-MM-DD or a month YYYY-MM") from None


def _month_end(day: date) -> date:
    after = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
    return after - timedelta(days=1)


def _data_start(who: Caller, start: datetime, end: datetime) -> datetime:
    begin = who.clip(start)
    if begin >= end:
        raise Denied(400, "nothing in this span is within what the consent allows")
    return begin


# -- the registry -----------------------------------------------------------------------------


def _home(registry: Registry, meter_id: int, at: datetime) -> UsagePoint:
    point = registry.usage_point_at(meter_id, at)
    if point is None:
        raise Denied(404, f"meter {meter_id} was at no usage point then")
    return point


def _similar(registry: Registry, point: UsagePoint, at: datetime) -> list[int]:
    """The electricity meters of the other occupied homes like ``point`` at ``at``: same
    area, household size and all-electric or not, with solar generation or without."""
    m, i, u = meter.c, usage_point_meter.c, usage_point.c
    solar = u.generation_kw > 0 if point.generation_kw > 0 else u.generation_kw <= 0
    query = (
        select(i.meter_id)
        .select_from(usage_point_meter)
        .join(usage_point, u.mrid == i.usage_point)
        .join(meter, m.meter_id == i.meter_id)
        .where(
            i.valid_from <= at,
            or_(i.valid_to.is_(None), i.valid_to > at),
            u.mrid != point.mrid,
            u.area == point.area,
            u.occupants == point.occupants,
            u.all_electric == point.all_electric,
            u.occupied == true(),
            solar,
            m.commodity == "electricity",
        )
        .order_by(i.meter_id)
    )
    with registry.engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(query)]


def _contract(registry: Registry, meter_id: int, start: datetime, end: datetime) -> Contract:
    """The contract the meter is billed under in (start, end]: the last one in force there
    (the one in force at the end, unless it ended before), with the contract current of the
    agreement, else of its tariff, else ``DEFAULT_AMPS``; its tariff-book code is the
    tariff's ``periods_ref``, else its code (as the MDMS's billing takes them)."""
    a, i, p = customer_agreement.c, usage_point_meter.c, pricing_structure.c
    query = (
        select(
            a.mrid,
            a.tariff,
            p.periods_ref,
            a.contract_current_a,
            p.contract_current_a,
            a.valid_from,
            a.valid_to,
            i.valid_from,
            i.valid_to,
        )
        .select_from(customer_agreement)
        .join(usage_point_meter, i.usage_point == a.usage_point)
        .outerjoin(pricing_structure, p.code == a.tariff)
        .where(
            i.meter_id == meter_id,
            and_(a.valid_from < end, or_(a.valid_to.is_(None), a.valid_to > start)),
            and_(i.valid_from < end, or_(i.valid_to.is_(None), i.valid_to > start)),
        )
    )
    with registry.engine.connect() as conn:
        rows = list(conn.execute(query))
    found = []
    for mrid, tariff, ref, amps, tariff_amps, a_from, a_to, i_from, i_to in rows:
        lo = max(grid_up(a_from), grid_up(i_from))
        ends = [grid_up(t) for t in (a_to, i_to) if t is not None]
        hi = min(ends) if ends else None
        if (hi is None or hi > lo) and lo < end and (hi is None or hi > start):
            code = ref or tariff
            found.append(
                Contract(mrid, meter_id, code, amps or tariff_amps or DEFAULT_AMPS, lo, hi)
            )
    if not found:
        raise Denied(404, f"meter {meter_id} is under no contract in that month")
    return max(found, key=lambda c: c.valid_from)


# -- the routes -------------------------------------------------------------------------------


def _kwh(wh: float) -> float:
    return round(wh / 1000, 3)


@router.get(
    "/meters/{meter_id}/usage",
    openapi_extra={"security": PROTECTED},
    response_model=EnergyUsage,
)
def meter_usage(
    request: Request,
    who: Who,
    meter_id: MeterId,
    period: Annotated[
        UsagePeriod, Query(description="Per Japan-time day or month")
    ] = UsagePeriod.daily,
    start: Annotated[
        str | None,
        Query(
            pattern=DayOrMonth,
            description="The first day YYYY-MM-DD (or month YYYY-MM); default: a week, or a "
            "year of months, before the end",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            pattern=DayOrMonth,
            description="The last day YYYY-MM-DD (or month YYYY-MM), included; default and "
            "at most: today",
        ),
    ] = None,
) -> EnergyUsage:
    """kWh imported and exported per Japan-time day or month, from the validated reads (what
    a bill is computed from); each day or month says how many of its 30-minute intervals
    it is based on."""
    who.may_read(meter_id)
    tz = _timezone()
    monthly = period is UsagePeriod.monthly
    today = datetime.now(ZoneInfo(tz)).date()
    last = min(_day(end, today, last=True, monthly=monthly), today)
    if monthly:
        back = date(last.year - (last.month <= 11), (last.month - 12) % 12 + 1, 1)
    else:
        back = last - timedelta(days=6)
    first = _day(start, back, last=False, monthly=monthly)
    if last < first:
        raise Denied(400, "end must not be before start (and no later than today)")
    if (last - first).days + 1 > MAX_SPAN.days:
        raise Denied(400, f"at most {MAX_SPAN.days} days per request")
    begin, stop = day_span(first, last, tz)
    api = state_of(request)
    reads = billable(api.data.interval_reads([meter_id], _data_start(who, begin, stop), stop))
    rows = usage(reads, begin, stop, tz, monthly=monthly)
    audit(request, who, 200, rows.height)
    return EnergyUsage(
        meter_id=meter_id,
        period=period,
        timezone=tz,
        start=begin.isoformat(),
        end=stop.isoformat(),
        usage=[
            UsageRow(
                period=r["period"],
                import_kwh=_kwh(r["import_wh"]),
                export_kwh=_kwh(r["export_wh"]),
                import_wh=r["import_wh"],
                export_wh=r["export_wh"],
                intervals=r["intervals"],
                intervals_expected=r["intervals_expected"],
                complete=r["intervals"] == r["intervals_expected"],
            )
            for r in rows.iter_rows(named=True)
        ],
    )


@router.get(
    "/meters/{meter_id}/comparison",
    openapi_extra={"security": PROTECTED},
    response_model=EnergyComparison,
    responses=_refusals(
        s403="Too few similar homes to compare with (privacy: at least 5 others), the "
        "home's household size is unknown, or the operator's role does not allow this.",
        s404="No such meter among those the caller may see, or no reads of it that month.",
    ),
)
def meter_comparison(
    request: Request, who: Who, meter_id: MeterId, month: Month
) -> EnergyComparison:
    """This home's use in a month against similar homes: the same area and household size,
    all-electric or not, with solar generation or without. Only the group's aggregates
    (size, 25th percentile, median, 75th percentile) and this home's place in it, over the
    same half hours; refused when fewer than 5 other similar homes can be compared."""
    who.may_read(meter_id)
    now = datetime.now(UTC)
    year, mon, start, end = _month(month, now)
    begin = _data_start(who, start, end)
    api = state_of(request)
    at = min(end, now) - timedelta(seconds=1)
    point = _home(api.data.registry, meter_id, at)
    if point.occupants is None:
        raise Denied(403, f"the household size at meter {meter_id} is unknown: no peer group")
    peers = _similar(api.data.registry, point, at)
    if len(peers) < MIN_PEERS:
        raise Denied(
            403,
            f"only {len(peers)} other similar home(s); a comparison needs at least {MIN_PEERS}, "
            "so that no home's own use can be told",
        )
    reads = billable(api.data.interval_reads([meter_id, *peers], begin, end))
    try:
        found = compare(reads, meter_id, peers)
    except TooFewPeers as exc:
        raise Denied(403, str(exc)) from None
    except NoAnswer as exc:
        raise Denied(404, str(exc)) from None
    audit(request, who, 200, 1)
    return EnergyComparison(
        meter_id=meter_id,
        month=f"{year:04d}-{mon:02d}",
        start=begin.isoformat(),
        end=end.isoformat(),
        intervals=found.intervals,
        import_kwh=_kwh(found.import_wh),
        percentile=found.percentile,
        peer_group=PeerGroup(
            area=point.area,
            occupants=point.occupants,
            all_electric=point.all_electric,
            solar=point.generation_kw > 0,
            homes=found.peers,
            left_out=found.left_out,
            p25_kwh=_kwh(found.p25_wh),
            median_kwh=_kwh(found.median_wh),
            p75_kwh=_kwh(found.p75_wh),
        ),
        note=COMPARISON_NOTE,
    )


@router.get(
    "/meters/{meter_id}/cost",
    openapi_extra={"security": PROTECTED},
    response_model=EnergyCost,
    responses=_refusals(
        s404="No such meter among those the caller may see, or no contract for it that month.",
    ),
)
def meter_cost(request: Request, who: Who, meter_id: MeterId, month: Month) -> EnergyCost:
    """An ESTIMATE of a month's cost under the customer's contract: kWh per time-of-use
    period of its tariff (Japanese public holidays included), the energy charge of each
    period, the basic charge per contract ampere, and the total. Prices are openami's
    illustrative table, not any utility's published rate."""
    who.may_read(meter_id)
    year, mon, start, end = _month(month, datetime.now(UTC))
    begin = _data_start(who, start, end)
    api = state_of(request)
    book, prices = _books()
    contract = _contract(api.data.registry, meter_id, start, end)
    if contract.tariff not in book.codes:
        raise Denied(404, f"the contract's tariff {contract.tariff!r} is not in the tariff book")
    reads = billable(api.data.interval_reads([meter_id], begin, end))
    try:
        found = estimate_cost(reads, contract, _calendar(year, mon), prices, begin)
    except NoAnswer as exc:
        raise Denied(404, str(exc)) from None
    audit(request, who, 200, len(found.periods))
    return EnergyCost(
        kind="estimate",
        note=ESTIMATE_NOTE,
        meter_id=meter_id,
        month=f"{year:04d}-{mon:02d}",
        contract=contract.contract_id,
        tariff=contract.tariff,
        tariff_name=book[contract.tariff].name,
        contract_amps=contract.amps,
        currency=found.currency,
        prices_source=found.source,
        start=found.span_start.isoformat(),
        end=found.span_end.isoformat(),
        intervals_expected=found.intervals_expected,
        intervals_valid=found.intervals_valid,
        complete=found.intervals_valid == found.intervals_expected,
        periods=[
            PeriodCharge(
                period=line.period,
                kwh=_kwh(line.wh),
                wh=line.wh,
                yen_per_kwh=float(line.yen_per_kwh),
                energy_charge_yen=float(line.charge),
            )
            for line in found.periods
        ],
        energy_charge_yen=float(found.energy_charge),
        basic_charge_yen=float(found.basic_charge),
        basic_share=float(found.basic_share),
        total_yen=float(found.total),
    )
