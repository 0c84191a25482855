"""The validated store, versions and edits: actual replaces estimate and keeps it as the
previous version, edits are audited and survive later VEE passes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from openami.errors import StoreError
from openami.mdm.vee.edit import EditError, edit_reads
from openami.mdm.vee.engine import new_versions
from openami.mdm.vee.flags import Quality
from openami.store.validated import Origin, ValidatedStore
from tests.mdm.vee.support import DAY0, NOW, Day, attributes, end, flat, run
from tests.mdm.vee.test_estimate import asked

DAY = date(2026, 8, 3)
AT = datetime(2026, 8, 5, 9, 0, tzinfo=UTC)


def store_pass(store: ValidatedStore, day: Day, **kwargs: object) -> pl.DataFrame:
    """One VEE pass over ``day`` stored the way ``run_day`` stores it; the rows written."""
    result = run(day, attributes([1, 2]), **kwargs)  # type: ignore[arg-type]
    current = store.current(DAY) if store.files(DAY) else None
    rows = new_versions(result.reads, current)
    store.append(rows)
    return rows


def value(store: ValidatedStore, meter: int, slot: int, channel: int = 1) -> dict[str, Any]:
    cur = store.current(DAY).filter(
        (pl.col("meter_id") == meter)
        & (pl.col("channel") == channel)
        & (pl.col("interval_end") == end(slot))
    )
    assert cur.height == 1
    return cur.row(0, named=True)


def test_store_round_trip_and_atomic_files(tmp_path: Path) -> None:
    store = ValidatedStore(tmp_path)
    rows = store_pass(store, Day().meter(1, flat(100)).meter(2, flat(200)))
    assert rows.height == 2 * 2 * 48 and set(rows["version"].to_list()) == {1}
    cur = store.current(DAY)
    assert cur.height == rows.height
    assert cur.schema["interval_end"] == pl.Int64
    assert cur["interval_end"].min() == DAY0
    assert not list(tmp_path.rglob("*.tmp"))
    assert 0 < store.bytes_per_read(DAY) < 100
    only = store.current(DAY, [2])
    assert set(only["meter_id"].to_list()) == {2}
    none = store.versions(DAY, [])
    assert none.height == 0 and none.schema == store.versions(DAY).schema


def test_one_append_across_two_days_lands_in_each_days_file(tmp_path: Path) -> None:
    """Rows of two UTC days in one call (an edit of a night): each day's file gets its own
    rows, with who and why where they were given and null where not."""
    store = ValidatedStore(tmp_path)
    rows = pl.DataFrame(
        {
            "meter_id": [7, 7, 8],
            "channel": pl.Series([1, 1, 2], dtype=pl.Int8),
            "interval_end": [DAY0 - 1800, DAY0, DAY0 + 1800],
            "value_wh": [10, None, 30],
            "version": pl.Series([2, 1, 1], dtype=pl.Int16),
            "flags": pl.Series([0, 1, 0], dtype=pl.UInt32),
            "origin": pl.Series([3, 0, 1], dtype=pl.Int8),
            "edited_by": ["operator-3", None, None],
            "reason": ["register photo", None, None],
        }
    )
    assert store.append(rows, written_at=AT) == 3
    before = store.versions(date(2026, 8, 2))
    assert before.select("meter_id", "value_wh", "edited_by", "reason").rows() == [
        (7, 10, "operator-3", "register photo")
    ]
    day = store.versions(DAY).sort("interval_end")
    assert day.select("meter_id", "value_wh", "edited_by", "reason").rows() == [
        (7, None, None, None),
        (8, 30, None, None),
    ]
    assert day.schema["edited_by"] == pl.String
    without_text = rows.drop("edited_by", "reason").with_columns(pl.col("version") + 1)
    store.append(without_text, written_at=AT)
    assert store.versions(DAY).get_column("reason").null_count() == 4


@pytest.mark.parametrize(
    "column", ["meter_id", "channel", "interval_end", "flags", "origin", "version"]
)
def test_a_null_where_a_value_must_be_is_refused_and_nothing_is_stored(
    tmp_path: Path, column: str
) -> None:
    store = ValidatedStore(tmp_path)
    rows = pl.DataFrame(
        {
            "meter_id": [1, 2],
            "channel": [1, 1],
            "interval_end": [DAY0, DAY0],
            "value_wh": [5, None],  # a missing value may be null
            "flags": [0, 0],
            "origin": [int(Origin.MEASURED), int(Origin.MISSING)],
            "version": [1, 1],
        }
    )
    assert store.append(rows) == 2
    broken = rows.with_columns(pl.when(pl.col("meter_id") == 2).then(pl.col(column)))
    with pytest.raises(StoreError, match=f"not stored: no value in column '{column}'"):
        store.append(broken)
    assert store.current(DAY).height == 2
    assert len(store.files(DAY)) == 1


def test_an_unchanged_pass_writes_nothing(tmp_path: Path) -> None:
    store = ValidatedStore(tmp_path)
    day = Day().meter(1, flat(100)).meter(2, flat(200))
    store_pass(store, day)
    assert store_pass(store, day).height == 0
    assert len(store.files(DAY)) == 1


def test_actual_replaces_the_estimate_which_stays_as_the_previous_version(
    tmp_path: Path,
) -> None:
    store = ValidatedStore(tmp_path)
    values = flat(100)
    values[10] = None
    late = Day().meter(1, values, register_offset={k: 130 for k in range(11, 48)})
    late.meter(2, flat(200))
    store_pass(store, late)  # first pass: missing, asked for
    first = value(store, 1, 10)
    assert first["value_wh"] is None and first["origin"] == int(Origin.MISSING)
    store_pass(store, late, gaps=asked(1, [10]))  # re-collection failed: estimate
    est = value(store, 1, 10)
    assert est["value_wh"] == 130 and est["origin"] == int(Origin.ESTIMATED)
    assert est["version"] == 2
    assert store_pass(store, late, gaps=asked(1, [10])).height == 0  # not re-estimated
    arrived = Day().meter(1, [*flat(100)[:10], 130, *flat(100)[11:]])
    arrived.meter(2, flat(200))
    rows = store_pass(store, arrived, gaps=asked(1, [10]))
    assert rows.select("meter_id", "channel", "interval_end").rows() == [
        (1, 1, end(10)),
        (1, 2, end(10)),
    ]
    actual = value(store, 1, 10)
    assert actual["value_wh"] == 130 and actual["origin"] == int(Origin.MEASURED)
    assert actual["flags"] == 0 and actual["version"] == 3
    history = store.versions(DAY).filter(
        (pl.col("meter_id") == 1) & (pl.col("channel") == 1) & (pl.col("interval_end") == end(10))
    )
    assert history.sort("version")["origin"].to_list() == [
        int(Origin.MISSING),
        int(Origin.ESTIMATED),
        int(Origin.MEASURED),
    ]


def test_edits_are_audited_and_stay(tmp_path: Path) -> None:
    store = ValidatedStore(tmp_path)
    values = flat(100)
    values[5] = 9000  # a spike with the register intact: estimated as 100
    day = Day().meter(1, values, register_offset={k: -8900 for k in range(5, 48)})
    day.meter(2, flat(200))
    store_pass(store, day)
    before = value(store, 1, 5)
    assert before["value_wh"] == 100 and before["flags"] & Quality.ESTIMATED_LINEAR
    edits = pl.DataFrame(
        {"meter_id": [1], "channel": [1], "interval_end": [end(5)], "value_wh": [120]}
    )
    edit_reads(store, edits, user="tanaka", reason="customer's kettle log", at=AT)
    after = value(store, 1, 5)
    assert after["value_wh"] == 120 and after["origin"] == int(Origin.EDITED)
    assert after["flags"] & Quality.EDITED and after["flags"] & Quality.SPIKE
    assert not after["flags"] & (Quality.ESTIMATED_LINEAR | Quality.PRORATED)
    assert after["version"] == before["version"] + 1
    audit = store.audit([DAY])
    assert audit.height == 1
    row = audit.row(0, named=True)
    assert (row["edited_by"], row["reason"]) == ("tanaka", "customer's kettle log")
    assert (row["previous_value_wh"], row["value_wh"]) == (100, 120)
    assert row["previous_version"] == before["version"]
    assert row["previous_origin"] == int(Origin.ESTIMATED)
    assert row["written_at"] == AT
    assert store_pass(store, day).height == 0  # a later VEE pass leaves the edit alone
    assert value(store, 1, 5)["value_wh"] == 120


@pytest.mark.parametrize(
    ("edits", "user", "reason", "at", "message"),
    [
        ({"meter_id": [1]}, "", "why", AT, "user who makes it"),
        ({"meter_id": [1]}, "me", " ", AT, "reason"),
        ({"meter_id": [1]}, "me", "why", datetime(2026, 8, 5, 9), "timezone-aware"),  # noqa: DTZ001
        ({"meter_id": [9]}, "me", "why", AT, "not validated yet"),
        ({"meter_id": [1, 1]}, "me", "why", AT, "edited twice"),
        ({"meter_id": [1], "value_wh": [-5]}, "me", "why", AT, "negative"),
    ],
)
def test_bad_edits_are_refused(
    tmp_path: Path,
    edits: dict[str, list[int]],
    user: str,
    reason: str,
    at: datetime,
    message: str,
) -> None:
    store = ValidatedStore(tmp_path)
    store_pass(store, Day().meter(1, flat(100)).meter(2, flat(100)))
    n = len(edits["meter_id"])
    frame = pl.DataFrame(
        {"channel": [1] * n, "interval_end": [end(3)] * n, "value_wh": [1] * n, **edits}
    )
    with pytest.raises(EditError, match=message):
        edit_reads(store, frame, user=user, reason=reason, at=at)


def test_side_files_round_trip(tmp_path: Path) -> None:
    store = ValidatedStore(tmp_path)
    result = run(Day().meter(1, [None, *flat(100)[1:]]), attributes([1]), now=NOW)
    store.save_gaps(DAY, result.gaps)
    store.save_stats(DAY, result.stats)
    assert store.load_gaps(DAY) is not None
    loaded = store.load_gaps(DAY)
    assert loaded is not None and loaded.equals(result.gaps)
    stats = store.load_stats([DAY, date(2026, 8, 2)])
    assert stats is not None and stats["meter_id"].to_list() == [1]
    assert store.load_gaps(date(2020, 1, 1)) is None


def test_an_unusable_root_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError):
        ValidatedStore(blocker)
