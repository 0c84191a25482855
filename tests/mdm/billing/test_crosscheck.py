"""Every determinant of 2,000 simulated meters over a month, against plain DuckDB SQL.

The SQL below is written independently of the Polars code: it converts each interval's
start to Japan time with DuckDB's own time zone support, assigns periods with CASE
expressions hand-written from the tariff descriptions (not from the rule engine), finds the
cycle from the reading day with date arithmetic, and joins events by time range. Only the
list of Japanese public holidays is shared (it is data: the ``holidays`` package).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest

from openami.fleet.fleet import Fleet
from openami.mdm.billing import (
    BillingCalendar,
    BillingMonth,
    TariffBook,
    accumulate,
    billing_determinants,
    finalize,
    holiday_dates,
    merge_partials,
)

from .builders import FLAT, SEASONAL, TOU, utc_column

MONTH = BillingMonth(2024, 8)  # July: Marine Day; August: Mountain Day and Obon
METERS = 2_000
SWITCHED = 40  # meters whose contract changes during their cycle


@pytest.fixture(scope="module")
def inputs(august: BillingCalendar) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Reads of the simulated fleet over the month's window (with holes, invalid reads and
    PV export), contracts (some switched mid-cycle) and events."""
    start, _ = august.span
    fleet = Fleet.simple(METERS, start, seed=11)
    imports, exports = [], []
    for _ in range(august.slots):
        values = fleet.advance()
        imports.append(values.import_wh)
        exports.append(values.export_wh)
    ends = august.first_end + 1800 * np.arange(august.slots, dtype=np.int64)
    rng = np.random.default_rng(2024)
    n = METERS * august.slots
    reads = pl.DataFrame(
        {
            "meter_id": np.tile(fleet.meter_ids, august.slots),
            "interval_end": utc_column(np.repeat(ends, METERS)),
            "import_wh": np.concatenate(imports),
            "export_wh": np.concatenate(exports),
            "valid": rng.random(n) > 0.0005,
        }
    )
    # holes: one read in 2,000 lost; and 60% of the meters complete (bill-ready)
    keep = (rng.random(n) > 0.0005) | (reads.get_column("meter_id").to_numpy() % 5 < 3)
    reads = reads.filter(pl.Series(keep))
    reads = reads.with_columns(
        valid=pl.col("valid") | (pl.col("meter_id") % 5 < 3),
        # ties for the maximum demand: a flat top on some meters
        import_wh=pl.when((pl.col("meter_id") % 97 == 0) & (pl.col("import_wh") > 600))
        .then(600)
        .otherwise(pl.col("import_wh")),
    )
    tariffs = np.array([FLAT, TOU, SEASONAL])[rng.integers(0, 3, METERS)]
    reading_day = rng.integers(1, 29, METERS)
    contracts = pl.DataFrame(
        {
            "contract_id": fleet.meter_ids * 10,
            "meter_id": fleet.meter_ids,
            "tariff": tariffs,
            "contract_amps": fleet.contract_amps.astype(np.int32),
            "reading_day": reading_day.astype(np.int32),
            "valid_from": pl.Series([None] * METERS, dtype=pl.Datetime("us", "UTC")),
            "valid_to": pl.Series([None] * METERS, dtype=pl.Datetime("us", "UTC")),
        }
    )
    # the first SWITCHED meters move to a new contract 10 days and 5 hours into their cycle
    switched = []
    for i in range(SWITCHED):
        lo, _ = MONTH.cycle_span(int(reading_day[i]), "Asia/Tokyo")
        at = datetime.fromtimestamp(int(lo.timestamp()) + 10 * 86_400 + 5 * 3600, UTC)
        switched.append((i, at))
    new_rows = pl.DataFrame(
        {
            "contract_id": [int(fleet.meter_ids[i]) * 10 + 1 for i, _ in switched],
            "meter_id": [int(fleet.meter_ids[i]) for i, _ in switched],
            "tariff": [SEASONAL] * SWITCHED,
            "contract_amps": [60] * SWITCHED,
            "reading_day": [int(reading_day[i]) for i, _ in switched],
            "valid_from": [at for _, at in switched],
            "valid_to": pl.Series([None] * SWITCHED, dtype=pl.Datetime("us", "UTC")),
        },
        schema=contracts.schema,
    )
    ends_at = pl.Series([at for _, at in switched] + [None] * (METERS - SWITCHED))
    contracts = pl.concat(
        [contracts.with_columns(valid_to=ends_at.cast(pl.Datetime("us", "UTC"))), new_rows]
    )
    # events: 300 meters with a 3-hour CPP event on 30 July and an overlapping PTR event;
    # 50 meters with an event across the end of their cycle
    event_rows: list[tuple[int, str, datetime, datetime]] = []
    for m in range(100, 400):
        event_rows.append((m, "cpp-0730", _jst(2024, 7, 30, 13), _jst(2024, 7, 30, 16)))
        event_rows.append((m, "ptr-0730", _jst(2024, 7, 30, 15), _jst(2024, 7, 30, 18)))
    for m in range(500, 550):
        day = int(reading_day[m - 1])
        event_rows.append((m, "edge", _jst(2024, 8, day, 0) - _h(2), _jst(2024, 8, day, 0) + _h(2)))
    events = pl.DataFrame(
        event_rows,
        schema={
            "meter_id": pl.Int64,
            "event_id": pl.String,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )
    return reads, contracts, events


def _jst(year: int, month: int, day: int, hour: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(year, month, day, hour, tzinfo=ZoneInfo("Asia/Tokyo")).astimezone(UTC)


def _h(hours: int) -> Any:
    from datetime import timedelta

    return timedelta(hours=hours)


CTES = """
WITH cyc AS (
    SELECT c.*,
           make_timestamptz($py, $pm, reading_day, 0, 0, 0, 'Asia/Tokyo') AS c_lo,
           make_timestamptz($y, $m, reading_day, 0, 0, 0, 'Asia/Tokyo') AS c_hi
    FROM contracts c
),
span AS (
    SELECT *, greatest(c_lo, coalesce(valid_from, c_lo)) AS lo,
              least(c_hi, coalesce(valid_to, c_hi)) AS hi
    FROM cyc
),
billed AS (SELECT * FROM span WHERE hi > lo),
r AS (
    SELECT b.contract_id, b.tariff, r.*,
           timezone('Asia/Tokyo', r.interval_end - INTERVAL 30 MINUTE) AS ls
    FROM billed b JOIN reads r
      ON r.meter_id = b.meter_id AND r.interval_end > b.lo AND r.interval_end <= b.hi
),
p AS (
    SELECT *, CASE
        WHEN tariff = 'jp-residential-flat' THEN 'all'
        WHEN tariff = 'jp-residential-tou' THEN
            CASE WHEN hour(ls) >= 23 OR hour(ls) < 7 THEN 'night' ELSE 'day' END
        ELSE CASE
            WHEN hour(ls) >= 23 OR hour(ls) < 7 THEN 'night'
            WHEN isodow(ls) IN (6, 7) OR CAST(ls AS DATE) IN (SELECT d FROM hol) THEN 'offpeak'
            WHEN month(ls) IN (7, 8, 9) AND hour(ls) >= 13 AND hour(ls) < 16 THEN 'peak'
            ELSE 'daytime' END
        END AS period
    FROM r
),
mx AS (
    SELECT contract_id, max(import_wh) FILTER (WHERE valid) AS m FROM p GROUP BY contract_id
),
agg AS (
    SELECT p.contract_id,
           coalesce(sum(import_wh) FILTER (WHERE valid), 0) AS import_wh,
           coalesce(sum(export_wh) FILTER (WHERE valid), 0) AS export_wh,
           count(*) AS present,
           count(*) FILTER (WHERE valid) AS nvalid,
           min(interval_end) FILTER (WHERE valid AND import_wh = mx.m) AS max_at
    FROM p JOIN mx USING (contract_id)
    GROUP BY p.contract_id
),
per AS (
    SELECT contract_id, period, coalesce(sum(import_wh) FILTER (WHERE valid), 0) AS wh
    FROM p GROUP BY contract_id, period
),
ev AS (
    SELECT p.contract_id, e.event_id, p.interval_end, p.import_wh, p.valid
    FROM p JOIN events e
      ON e.meter_id = p.meter_id AND p.interval_end > e.start AND p.interval_end <= e."end"
),
ev_one AS (
    SELECT contract_id, event_id,
           coalesce(sum(import_wh) FILTER (WHERE valid), 0) AS wh,
           count(*) FILTER (WHERE valid) AS n
    FROM ev GROUP BY contract_id, event_id
),
ev_all AS (
    SELECT contract_id, coalesce(sum(import_wh) FILTER (WHERE valid), 0) AS wh,
           count(*) FILTER (WHERE valid) AS n
    FROM (SELECT DISTINCT contract_id, interval_end, import_wh, valid FROM ev)
    GROUP BY contract_id
)
"""
SQL_CYCLES = (
    CTES
    + """
SELECT b.contract_id,
       epoch(b.hi - b.lo)::BIGINT // 1800 AS expected,
       CAST(timezone('Asia/Tokyo', b.c_lo) AS DATE) AS cycle_start,
       a.import_wh, a.export_wh, a.present, a.nvalid, m.m AS max_wh, a.max_at,
       ea.wh AS event_wh, ea.n AS event_n
FROM billed b
LEFT JOIN agg a USING (contract_id)
LEFT JOIN mx m USING (contract_id)
LEFT JOIN ev_all ea USING (contract_id)
ORDER BY b.contract_id
"""
)
# the CTE chain again, ending in the per-period and per-event tables (constants only)
SQL_PERIODS = CTES + "SELECT contract_id, period, wh FROM per"  # noqa: S608
SQL_EVENTS = CTES + "SELECT contract_id, event_id, wh, n FROM ev_one"  # noqa: S608


def direct(
    book: TariffBook,
    reads: pl.DataFrame,
    contracts: pl.DataFrame,
    events: pl.DataFrame,
) -> tuple[
    dict[int, dict[str, Any]], dict[tuple[int, str], int], dict[tuple[int, str], tuple[int, int]]
]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    years = [2024]
    hol = pl.DataFrame({"d": holiday_dates(book[SEASONAL], years)})
    con.register("reads", reads.to_arrow())
    con.register("contracts", contracts.to_arrow())
    con.register("events", events.to_arrow())
    con.register("hol", hol.to_arrow())
    prev = MONTH.previous()
    params = {"py": prev.year, "pm": prev.month, "y": MONTH.year, "m": MONTH.month}
    rows = con.execute(SQL_CYCLES, params).fetchall()
    names = [d[0] for d in con.description or []]
    cycles = {int(r[0]): dict(zip(names, r, strict=True)) for r in rows}
    periods = {(int(c), str(p)): int(w) for c, p, w in con.execute(SQL_PERIODS, params).fetchall()}
    per_event = {
        (int(c), str(e)): (int(w), int(n))
        for c, e, w, n in con.execute(SQL_EVENTS, params).fetchall()
    }
    con.close()
    return cycles, periods, per_event


def compare(
    ours: pl.DataFrame,
    expected: tuple[
        dict[int, dict[str, Any]],
        dict[tuple[int, str], int],
        dict[tuple[int, str], tuple[int, int]],
    ],
) -> None:
    cycles, periods, per_event = expected
    assert ours.get_column("contract_id").to_list() == sorted(cycles)
    for row in ours.iter_rows(named=True):
        sql = cycles[row["contract_id"]]
        cid = row["contract_id"]
        assert row["cycle_start"] == sql["cycle_start"], cid
        assert row["intervals_expected"] == sql["expected"], cid
        assert row["intervals_present"] == (sql["present"] or 0), cid
        assert row["intervals_valid"] == (sql["nvalid"] or 0), cid
        assert row["import_wh"] == (sql["import_wh"] or 0), cid
        assert row["export_wh"] == (sql["export_wh"] or 0), cid
        assert row["max_demand_wh"] == sql["max_wh"], cid
        assert row["max_demand_at"] == sql["max_at"], cid
        assert row["event_wh"] == (sql["event_wh"] or 0), cid
        assert row["event_intervals"] == (sql["event_n"] or 0), cid
        for item in row["period_wh"]:
            assert item["wh"] == periods.get((cid, item["period"]), 0), (cid, item)
        assert {(cid, p["period"]) for p in row["period_wh"] if p["wh"]} == {
            k for k, w in periods.items() if k[0] == cid and w
        }
        for event in row["events"]:
            assert (event["wh"], event["intervals"]) == per_event[(cid, event["event_id"])]
        assert {e["event_id"] for e in row["events"]} == {k[1] for k in per_event if k[0] == cid}
        ready = row["intervals_expected"] == row["intervals_present"] == row["intervals_valid"]
        assert row["bill_ready"] is ready


@pytest.mark.slow
def test_every_determinant_matches_direct_sql(
    book: TariffBook,
    august: BillingCalendar,
    inputs: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    reads, contracts, events = inputs
    ours = billing_determinants(reads, contracts, august, events)
    expected = direct(book, reads, contracts, events)
    compare(ours, expected)
    # the data is not trivial: all kinds of outcome are there
    assert ours.height == METERS + SWITCHED
    ready = ours.get_column("bill_ready")
    assert 0.5 < ready.mean() < 0.9  # type: ignore[operator]
    assert (ours.get_column("export_wh") > 0).sum() > 100  # PV households
    assert (ours.get_column("event_wh") > 0).sum() >= 340
    # and the partitioned path (4 meter shards) gives the same frame
    parts = [
        accumulate(
            reads.filter(pl.col("meter_id") % 4 == s),
            contracts.filter(pl.col("meter_id") % 4 == s),
            august,
            events.filter(pl.col("meter_id") % 4 == s),
        )
        for s in range(4)
    ]
    assert finalize(merge_partials(parts), contracts, august).equals(ours)


@pytest.mark.slow
def test_sparse_meter_ids_match_direct_sql_too(
    book: TariffBook,
    august: BillingCalendar,
    inputs: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    # meter ids far apart: the meter -> contract lookup is a hash join, not an array
    reads, contracts, events = (
        f.with_columns(meter_id=pl.col("meter_id") * 1_000_003_001) for f in inputs
    )
    ours = billing_determinants(reads, contracts, august, events)
    compare(ours, direct(book, reads, contracts, events))
