"""Builders for billing inputs: reads on the 30-minute grid, contracts and events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import polars as pl

JST = ZoneInfo("Asia/Tokyo")
STEP = 1800
FLAT, TOU, SEASONAL = "jp-residential-flat", "jp-residential-tou", "jp-residential-tou-seasonal"


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Japan-time instant, as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=JST).astimezone(UTC)


def utc_column(seconds: npt.ArrayLike) -> pl.Series:
    return pl.from_epoch(pl.Series(np.asarray(seconds, dtype=np.int64)), "s").dt.replace_time_zone(
        "UTC"
    )


def grid(start: datetime, end: datetime) -> npt.NDArray[np.int64]:
    """Interval ends in (start, end], Unix seconds."""
    return np.arange(int(start.timestamp()) + STEP, int(end.timestamp()) + 1, STEP, dtype=np.int64)


def make_reads(
    meter_ids: Sequence[int],
    start: datetime,
    end: datetime,
    value: Callable[[npt.NDArray[np.int64], npt.NDArray[np.int64]], npt.ArrayLike] | int = 1,
    export: int = 0,
) -> pl.DataFrame:
    """Every interval in (start, end] for every meter, valid; ``value(meter, end_s)`` or a
    constant gives import Wh."""
    ends = grid(start, end)
    meters = np.repeat(np.asarray(meter_ids, dtype=np.int64), ends.size)
    all_ends = np.tile(ends, len(meter_ids))
    imp = (
        np.full(meters.size, value, dtype=np.int64)
        if isinstance(value, int)
        else np.asarray(value(meters, all_ends), dtype=np.int64)
    )
    return pl.DataFrame(
        {
            "meter_id": meters,
            "interval_end": utc_column(all_ends),
            "import_wh": imp,
            "export_wh": np.full(meters.size, export, dtype=np.int64),
            "valid": np.ones(meters.size, dtype=bool),
        }
    )


def make_contracts(rows: Sequence[tuple[int, str, int]], amps: int = 30) -> pl.DataFrame:
    """(meter_id, tariff, reading_day) per contract; contract_id = meter_id."""
    return pl.DataFrame(
        {
            "meter_id": [r[0] for r in rows],
            "tariff": [r[1] for r in rows],
            "contract_amps": [amps] * len(rows),
            "reading_day": [r[2] for r in rows],
        },
        schema={
            "meter_id": pl.Int64,
            "tariff": pl.String,
            "contract_amps": pl.Int32,
            "reading_day": pl.Int32,
        },
    )


def make_events(rows: Sequence[tuple[int, str, datetime, datetime]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter_id": [r[0] for r in rows],
            "event_id": [r[1] for r in rows],
            "start": [r[2] for r in rows],
            "end": [r[3] for r in rows],
        },
        schema={
            "meter_id": pl.Int64,
            "event_id": pl.String,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
        },
    )


def periods_of(row: dict[str, object]) -> dict[str, int]:
    """{period: wh} of one determinants row."""
    items = row["period_wh"]
    assert isinstance(items, list)
    return {str(p["period"]): int(p["wh"]) for p in items}


def days(n: int) -> timedelta:
    return timedelta(days=n)
