"""The input contracts of billing: interval reads, contracts and demand-response events.

Each input is a Polars frame with the columns below; ``check_*`` turns one into the internal
form (Unix seconds, validity folded into one flag) after checking what a wrong feed would
otherwise turn into a wrong bill silently: naive or non-UTC times, times off the 30-minute
grid, unknown tariffs, overlapping contracts of one meter.

Reads (one partition; from the VEE, or from the raw lake with :func:`load_interval_reads`):

====================  =====================  =================================================
column                type                   meaning
====================  =====================  =================================================
meter_id              Int64                  the meter
interval_end          Datetime, UTC          END of the 30-minute interval
import_wh             Int64 (>= 0)           energy imported over the interval, Wh
export_wh             Int64 (>= 0)           energy exported over the interval, Wh
valid                 Boolean                billable: measured and passed VEE, or estimated
                                             by VEE; False for a read that failed validation
                                             and was not estimated
====================  =====================  =================================================

At most one row per (meter_id, interval_end). A null value makes the read not valid; the
values of a read that is not valid are ignored.

Contracts (which meter is billed how, and when):

====================  =====================  =================================================
contract_id           Int64 or String        the contract (the registry's agreement mRID);
                      (optional)             defaults to meter_id
meter_id              Int64                  the meter the contract is billed from
tariff                String                 tariff-book code (the registry's
                                             PricingStructure.periods)
contract_amps         integer                contract current, A (basic-charge determinant)
reading_day           integer 1..28          meter-reading day (local date)
valid_from            Datetime, UTC, null    optional: contract starts (null: open)
valid_to              Datetime, UTC, null    optional: contract ends, exclusive (null: open)
====================  =====================  =================================================

A meter may have several contracts (a retailer switch, a move) as long as their validity
spans do not overlap. Bounds are on the 30-minute grid, so every interval lies whole inside
one contract: the one with valid_from < interval_end <= valid_to.

Events (CPP/PTR event windows, from the demand-response programs):

====================  =====================  =================================================
meter_id              Int64                  the meter enrolled
event_id              String                 the event
start                 Datetime, UTC          event start, on the 30-minute grid
end                   Datetime, UTC          event end (exclusive), on the 30-minute grid
====================  =====================  =================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import polars as pl

from openami.mdm.billing.calendar import (
    INTERVAL_S,
    MAX_READING_DAY,
    BillingCalendar,
    BillingError,
)

__all__ = [
    "CONTRACT_COLUMNS",
    "EVENT_COLUMNS",
    "OPEN_FROM",
    "OPEN_TO",
    "READ_COLUMNS",
    "check_contracts",
    "check_events",
    "check_reads",
    "empty_events",
    "events_from_windows",
]

READ_COLUMNS = ("meter_id", "interval_end", "import_wh", "export_wh", "valid")
CONTRACT_COLUMNS = ("meter_id", "tariff", "contract_amps", "reading_day")
EVENT_COLUMNS = ("meter_id", "event_id", "start", "end")
OPEN_FROM = -(2**62)  # valid_from null: since ever
OPEN_TO = 2**62  # valid_to null: for ever


def _require(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BillingError(f"{what} lack column(s) {', '.join(missing)}")


def _integer(frame: pl.DataFrame, name: str, what: str) -> pl.Expr:
    if not frame.schema[name].is_integer():
        raise BillingError(f"{what}: {name} must be an integer column, not {frame.schema[name]}")
    return pl.col(name).cast(pl.Int64)


def _utc_seconds(frame: pl.DataFrame, name: str, what: str) -> pl.Expr:
    dtype = frame.schema[name]
    if not isinstance(dtype, pl.Datetime) or dtype.time_zone != "UTC":
        raise BillingError(f"{what}: {name} must be Datetime in UTC, not {dtype}")
    return pl.col(name).dt.epoch("s")


def check_reads(reads: pl.DataFrame) -> pl.LazyFrame:
    """The reads as (meter_id, end_s, import_wh, export_wh, ok): ``ok`` is valid and
    non-null. Raises BillingError for a wrong schema, an interval end off the 30-minute
    grid or a negative valid value."""
    what = "interval reads"
    _require(reads, READ_COLUMNS, what)
    if reads.schema["valid"] != pl.Boolean:
        raise BillingError(f"{what}: valid must be Boolean, not {reads.schema['valid']}")
    imp, exp = pl.col("import_wh"), pl.col("export_wh")
    lf = reads.lazy().select(
        meter_id=_integer(reads, "meter_id", what),
        end_s=_utc_seconds(reads, "interval_end", what),
        import_wh=_integer(reads, "import_wh", what),
        export_wh=_integer(reads, "export_wh", what),
        ok=pl.col("valid").fill_null(False) & imp.is_not_null() & exp.is_not_null(),
    )
    problems = lf.select(
        off_grid=(pl.col("end_s") % INTERVAL_S != 0).any(),
        null_key=(pl.col("meter_id").is_null() | pl.col("end_s").is_null()).any(),
        negative=(pl.col("ok") & ((imp < 0) | (exp < 0))).any(),
    ).collect()
    if problems.height and problems.item(0, "null_key"):
        raise BillingError(f"{what}: a meter_id or interval_end is null")
    if problems.height and problems.item(0, "off_grid"):
        raise BillingError(f"{what}: an interval end is not on the 30-minute grid")
    if problems.height and problems.item(0, "negative"):
        raise BillingError(f"{what}: a valid read has a negative value")
    return lf


def _contract_id(contracts: pl.DataFrame, what: str) -> pl.Expr:
    if "contract_id" not in contracts.columns:
        return _integer(contracts, "meter_id", what)
    if contracts.schema["contract_id"] in (pl.String, pl.Categorical, pl.Enum):
        return pl.col("contract_id").cast(pl.String)
    return _integer(contracts, "contract_id", what)


def check_contracts(contracts: pl.DataFrame, calendar: BillingCalendar) -> pl.DataFrame:
    """The contracts sorted by (meter_id, from_s) with a dense ``row`` index and the columns
    contract_id, meter_id, tariff, tariff_idx, contract_amps, reading_day, from_s, to_s."""
    what = "contracts"
    _require(contracts, CONTRACT_COLUMNS, what)
    schema = contracts.schema
    if schema["tariff"] not in (pl.String, pl.Categorical, pl.Enum):
        raise BillingError(f"{what}: tariff must be text, not {schema['tariff']}")
    bounds = []
    for name, open_value in (("valid_from", OPEN_FROM), ("valid_to", OPEN_TO)):
        if name in contracts.columns:
            expr = _utc_seconds(contracts, name, what).fill_null(open_value)
        else:
            expr = pl.lit(open_value, pl.Int64)
        bounds.append(expr.alias("from_s" if name == "valid_from" else "to_s"))
    codes = calendar.book.codes
    frame = contracts.select(
        *bounds,
        contract_id=_contract_id(contracts, what),
        meter_id=_integer(contracts, "meter_id", what),
        tariff=pl.col("tariff").cast(pl.String),
        contract_amps=_integer(contracts, "contract_amps", what).cast(pl.Int32),
        reading_day=_integer(contracts, "reading_day", what).cast(pl.Int32),
    )
    if frame.drop("from_s", "to_s").null_count().sum_horizontal().item():
        raise BillingError(f"{what}: a null value outside valid_from/valid_to")
    unknown = sorted(set(frame.get_column("tariff").unique().to_list()) - set(codes))
    if unknown:
        raise BillingError(f"{what}: unknown tariff(s) {', '.join(unknown[:5])}")
    rd = frame.get_column("reading_day")
    if frame.height and (rd.min() < 1 or rd.max() > MAX_READING_DAY):  # type: ignore[operator]
        raise BillingError(f"{what}: reading_day outside 1..{MAX_READING_DAY}")
    if frame.get_column("contract_id").is_duplicated().any():
        raise BillingError(f"{what}: a contract_id appears twice")
    frame = frame.sort("meter_id", "from_s")
    checks = frame.select(
        off_grid=(
            ((pl.col("from_s") % INTERVAL_S != 0) & (pl.col("from_s") != OPEN_FROM))
            | ((pl.col("to_s") % INTERVAL_S != 0) & (pl.col("to_s") != OPEN_TO))
        ).any(),
        empty=(pl.col("from_s") >= pl.col("to_s")).any(),
        overlap=(
            (pl.col("meter_id") == pl.col("meter_id").shift(-1))
            & (pl.col("from_s").shift(-1) < pl.col("to_s"))
        ).any(),
    )
    if frame.height and checks.item(0, "off_grid"):
        raise BillingError(f"{what}: valid_from/valid_to not on the 30-minute grid")
    if frame.height and checks.item(0, "empty"):
        raise BillingError(f"{what}: valid_from is not before valid_to")
    if frame.height and checks.item(0, "overlap"):
        raise BillingError(f"{what}: contracts of one meter overlap in time")
    return frame.with_row_index("row").with_columns(
        pl.col("row").cast(pl.Int64),
        tariff_idx=pl.col("tariff").replace_strict(codes, range(len(codes)), return_dtype=pl.Int32),
    )


def empty_events() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "meter_id": pl.Int64,
            "event_id": pl.String,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
        }
    )


def events_from_windows(
    windows: Mapping[int, Sequence[tuple[datetime, datetime]]],
) -> pl.DataFrame:
    """The events frame from {meter_id: [(start, end), ...]} (aware datetimes); each window
    is named by its start and end, ``2024-07-30T04:00:00+00:00/2024-07-30T07:00:00+00:00``."""
    rows = []
    for meter, spans in windows.items():
        for start, end in spans:
            if start.tzinfo is None or end.tzinfo is None:
                raise BillingError(f"events: a window of meter {meter} has naive times")
            start, end = start.astimezone(UTC), end.astimezone(UTC)
            rows.append((meter, f"{start.isoformat()}/{end.isoformat()}", start, end))
    if not rows:
        return empty_events()
    return pl.DataFrame(rows, schema=empty_events().schema, orient="row")


def check_events(events: pl.DataFrame | None) -> pl.DataFrame:
    """Events as (meter_id, event_id, start_s, end_s)."""
    what = "events"
    events = empty_events() if events is None else events
    _require(events, EVENT_COLUMNS, what)
    if events.schema["event_id"] not in (pl.String, pl.Categorical, pl.Enum):
        raise BillingError(f"{what}: event_id must be text")
    frame = events.select(
        meter_id=_integer(events, "meter_id", what),
        event_id=pl.col("event_id").cast(pl.String),
        start_s=_utc_seconds(events, "start", what),
        end_s=_utc_seconds(events, "end", what),
    )
    if frame.null_count().sum_horizontal().item():
        raise BillingError(f"{what}: a null value")
    bad = frame.filter(
        (pl.col("start_s") % INTERVAL_S != 0)
        | (pl.col("end_s") % INTERVAL_S != 0)
        | (pl.col("start_s") >= pl.col("end_s"))
    )
    if bad.height:
        raise BillingError(
            f"{what}: event {bad.item(0, 'event_id')!r} is empty or not on the 30-minute grid"
        )
    return frame
