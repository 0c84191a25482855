"""VEE over the raw lake, end to end: pushes from the fleet simulator, some lost; the
first pass asks for them, a later one estimates, and the re-collected reads replace the
estimates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from openami.bus.contract import ReadSource
from openami.fleet.fleet import Fleet
from openami.mdm.vee.flags import Quality
from openami.mdm.vee.run import day_start, run_day
from openami.store.lake import IntervalLake
from openami.store.validated import Origin, ValidatedStore

DAY1 = date(2026, 8, 2)
DAY2 = date(2026, 8, 3)
METERS = 30
LOST = {(3, k) for k in range(10, 13)} | {(5, k) for k in range(30, 42)}  # (meter, slot)


def _columns(
    meter_id: np.ndarray, end: int, values: list[np.ndarray], source: int
) -> dict[str, np.ndarray]:
    n = meter_id.size
    return {
        "meter_id": np.tile(meter_id, 4),
        "channel": np.repeat(np.arange(1, 5), n),
        "interval_end": np.full(4 * n, end),
        "value_wh": np.concatenate(values),
        "source": np.full(4 * n, source),
        "status": np.zeros(4 * n, dtype=np.int64),
    }


def _fill(lake: IntervalLake) -> dict[tuple[int, int], tuple[list[np.ndarray], int]]:
    """Two days of pushes (the interval ending at 00:00 of the first day too); the lost
    ones are returned instead of stored."""
    start = datetime(DAY1.year, DAY1.month, DAY1.day, tzinfo=UTC) - timedelta(minutes=30)
    fleet = Fleet.simple(METERS, start, seed=5)
    lost = {}
    for _ in range(2 * 48 + 1):
        v = fleet.advance()
        end = fleet.interval_end(v.number)
        values = [v.import_wh, v.export_wh, v.import_register, v.export_register]
        slot = (end - day_start(DAY2)) // 1800
        keep = np.ones(METERS, dtype=bool)
        for meter, k in LOST:
            if 0 <= slot == k:
                keep[meter - 1] = False
                lost[(meter, k)] = ([x[meter - 1 : meter] for x in values], end)
        ids = fleet.meter_ids[keep]
        lake.append(_columns(ids, end, [x[keep] for x in values], int(ReadSource.PUSH)))
    return lost


def test_a_day_asked_for_estimated_and_replaced(tmp_path: Path) -> None:
    lake = IntervalLake(tmp_path / "lake")
    store = ValidatedStore(tmp_path / "mdm")
    lost = _fill(lake)
    attrs = pl.DataFrame({"meter_id": np.arange(1, METERS + 1), "occupied": [True] * METERS})
    close = day_start(DAY2) + 86_400
    first = run_day(lake, store, DAY1, attrs, now=close)
    assert first.requests == [] and first.counts["missing/import"] == 0
    assert first.written == METERS * 2 * 48
    progress: list[tuple[int, int]] = []
    asked = run_day(
        lake,
        store,
        DAY2,
        attrs,
        now=close + 900,
        chunk_meters=8,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert progress[-1] == (METERS, METERS) and len(progress) == 4
    spans = sorted((r.meter_id, r.from_end, r.to_end) for r in asked.requests)
    d2 = day_start(DAY2)
    assert spans == [(3, d2 + 10 * 1800, d2 + 12 * 1800), (5, d2 + 30 * 1800, d2 + 41 * 1800)]
    book = store.load_gaps(DAY2)
    assert book is not None and book.height == len(LOST)
    cur = store.current(DAY2)
    assert cur.filter(pl.col("value_wh").is_null()).height == 2 * len(LOST)

    later = run_day(lake, store, DAY2, attrs, now=close + 900 + 5 * 3600)
    assert later.requests == [] and later.counts["gaps/estimate"] == 2
    assert later.written == 2 * len(LOST)  # the estimates, nothing else
    cur = store.current(DAY2).filter(pl.col("channel") == 1)
    est = cur.filter(pl.col("origin") == int(Origin.ESTIMATED)).sort("meter_id", "interval_end")
    assert est.height == len(LOST)
    assert all(f & Quality.PRORATED for f in est["flags"].to_list())
    truth = {key: int(vals[0][0]) for key, (vals, _) in lost.items()}
    by_meter: dict[int, tuple[int, int]] = {}
    for m, t, v in est.select("meter_id", "interval_end", "value_wh").iter_rows():
        got, want = by_meter.get(m, (0, 0))
        by_meter[m] = (got + v, want + truth[(m, (t - d2) // 1800)])
    assert all(got == want for got, want in by_meter.values())  # the registers' change

    for (meter, _), (values, end) in sorted(lost.items()):  # the head-end collects them
        lake.append(_columns(np.array([meter]), end, values, int(ReadSource.RECOLLECT)))
    replaced = run_day(lake, store, DAY2, attrs, now=close + 9 * 3600)
    assert replaced.written == 2 * len(LOST)
    cur = store.current(DAY2).filter(pl.col("channel") == 1)
    assert cur.filter(pl.col("origin") != int(Origin.MEASURED)).height == 0
    assert int(cur["flags"].to_numpy().max(initial=0)) == 0
    versions = store.versions(DAY2).filter(
        (pl.col("meter_id") == 3)
        & (pl.col("channel") == 1)
        & (pl.col("interval_end") == d2 + 10 * 1800)
    )
    assert sorted(versions["origin"].to_list()) == [
        int(Origin.MISSING),
        int(Origin.MEASURED),
        int(Origin.ESTIMATED),
    ]
    stats = store.load_stats([DAY1])
    assert stats is not None and stats.height == METERS
