"""The grid builder: where each read lands, which copy wins, and that neither the order of
the reads nor how they are split into batches changes the grid."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.mdm.vee.grid import GridBuilder, broadcast
from tests.mdm.vee.support import INFO, SLOTS, Day, end

Read = tuple[int, int, int, int, int]  # meter, channel, slot, version, value


def build(reads: list[Read], meters: list[int], batches: int = 1) -> pl.DataFrame:
    b = GridBuilder(np.asarray(meters, dtype=np.int64), INFO)
    arr = np.asarray(reads, dtype=np.int64).reshape(-1, 5)
    for part in np.array_split(np.arange(arr.shape[0]), batches):
        r = arr[part]
        b.add(r[:, 0], r[:, 1], INFO.day0 + r[:, 2] * INFO.step_s, r[:, 4], version=r[:, 3])
    return b.frame()


@st.composite
def read_sets(draw: st.DrawFn) -> tuple[list[Read], list[int]]:
    meters = sorted(draw(st.sets(st.integers(1, 10**9), min_size=1, max_size=4)))
    identities = draw(
        st.lists(
            st.tuples(st.sampled_from(meters), st.integers(1, 4), st.integers(0, SLOTS - 1)),
            unique=True,
            max_size=40,
        )
    )
    reads: list[Read] = []
    for meter, channel, slot in identities:
        versions = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3, unique=True))
        for v in versions:
            value = draw(st.integers(0, 5000))
            reads += [(meter, channel, slot, v, value)] * draw(st.integers(1, 2))
    return reads, meters


@settings(max_examples=150, deadline=None)
@given(read_sets(), st.randoms(use_true_random=False), st.integers(1, 4))
def test_highest_version_wins_whatever_the_order_and_batches(
    drawn: tuple[list[Read], list[int]], rnd: random.Random, batches: int
) -> None:
    reads, meters = drawn
    shuffled = list(reads)
    rnd.shuffle(shuffled)
    grid = build(shuffled, meters, batches).sort("meter_id", "slot")
    columns = {1: "imp", 2: "exp", 3: "imp_reg", 4: "exp_reg"}
    expect: dict[tuple[int, int, int], tuple[int, int]] = {}
    values: dict[tuple[int, int, int], set[int]] = {}
    for meter, channel, slot, version, value in reads:
        key = (meter, channel, slot)
        values.setdefault(key, set()).add(value)
        if key not in expect or version > expect[key][0]:
            expect[key] = (version, value)
    rows = {(r["meter_id"], r["slot"]): r for r in grid.iter_rows(named=True)}
    assert len(rows) == len(meters) * SLOTS
    for (meter, slot), row in rows.items():
        for channel, column in columns.items():
            got = expect.get((meter, channel, slot))
            assert row[column] == (got[1] if got else None)
        for channel, column in ((1, "conflict_imp"), (2, "conflict_exp")):
            assert row[column] == (len(values.get((meter, channel, slot), ())) > 1)


def test_sparse_meter_ids_use_a_search_not_a_table() -> None:
    ids = [5, 10**9, 2 * 10**12]
    day = Day().meter(10**9, [100] * SLOTS).meter(2 * 10**12, [7] * SLOTS)
    day.read(6, 1, end(0), 1)  # not one of ours
    b = day.builder(ids)
    assert b._lut is None
    grid = b.frame()
    assert grid.filter(pl.col("meter_id") == 5)["imp"].null_count() == SLOTS
    assert grid.filter(pl.col("meter_id") == 2 * 10**12)["imp"].to_list() == [7] * SLOTS
    assert b.unknown_meter == 1


def test_what_does_not_belong_to_the_day() -> None:
    day = Day().meter(1, [100] * SLOTS, opening=True)
    day.read(1, 1, end(48), 5)  # the next day's first interval
    day.read(1, 5, end(3), 40)  # a gas index: not VEE'd here
    day.read(1, 1, end(-3), 9)  # an older interval of the previous day
    b = day.builder([1])
    grid = b.frame()
    assert b.outside == 2
    assert grid["open_imp"].unique().to_list() == [100]
    assert grid["open_imp_reg"].unique().to_list() == [1_000_000]
    assert b.placed == 4 * SLOTS


def test_status_bits_of_a_slot_are_combined() -> None:
    day = Day().meter(1, [100] * SLOTS)
    day.read(1, 3, end(4), 1_000_500, status=0x80)
    day.read(1, 1, end(4), 100, status=0x02)
    grid = day.builder([1]).frame()
    assert grid.filter(pl.col("slot") == 4)["status"].item() == 0x82


def test_broadcast_fills_unknown_meters_with_nulls() -> None:
    grid = Day().meter(1, [1] * SLOTS).meter(2, [1] * SLOTS).builder([1, 2]).frame()
    per_meter = pl.DataFrame({"meter_id": [2], "has_pv": [True]})
    out = broadcast(grid, per_meter, {"has_pv": pl.Boolean(), "occupied": pl.Boolean()}, SLOTS)
    assert out.filter(pl.col("meter_id") == 1)["has_pv"].null_count() == SLOTS
    assert out.filter(pl.col("meter_id") == 2)["has_pv"].to_list() == [True] * SLOTS
    assert out["occupied"].null_count() == 2 * SLOTS


# --- every rule at once, against a read-by-read reading of grid.py's docstring ----------

Raw = tuple[int, int, int, int, int, int, int]  # meter, channel, end, value, version, status, rec


def _reference(
    reads: list[Raw], meters: list[int], grid_s: int = 300, tol: int = 300
) -> dict[str, Any]:
    """What the builder must hold after ``reads``, worked out one read at a time."""
    rows = {m: i for i, m in enumerate(meters)}
    held: dict[tuple[int, int, int], tuple[int, int]] = {}  # (row, slot, ch) -> (version, value)
    conflict: set[tuple[int, ...]] = set()
    opening: dict[tuple[int, int], tuple[int, int]] = {}
    status: dict[tuple[int, int], int] = {}
    skew: set[tuple[int, int]] = set()
    sub: set[tuple[int, int]] = set()
    counts = {"placed": 0, "unknown": 0, "outside": 0}

    def keep(
        store: dict[Any, tuple[int, int]], key: tuple[int, ...], version: int, value: int
    ) -> None:
        if key in store:
            if store[key][1] != value:
                conflict.add(key)
            if version > store[key][0]:
                store[key] = (version, value)
        else:
            store[key] = (version, value)

    for meter, channel, at, value, version, bits, rec in reads:
        version = max(version, 1)
        offset = at - INFO.day0
        slot, rem = divmod(offset, INFO.step_s)
        legal = offset % grid_s == 0
        if rem:
            slot = (
                -(-offset // INFO.step_s) if legal else (offset + INFO.step_s // 2) // INFO.step_s
            )
        if meter not in rows:
            counts["unknown"] += 1
            continue
        row = rows[meter]
        if not 0 <= slot < SLOTS:
            if slot == -1 and rem == 0 and 1 <= channel <= 4:
                keep(opening, (row, channel), version, value)
            else:
                counts["outside"] += 1
            continue
        if rem:
            (sub if legal else skew).add((row, slot))
        if at > rec + tol:
            skew.add((row, slot))
        if bits:
            status[(row, slot)] = status.get((row, slot), 0) | bits
        if rem or not 1 <= channel <= 4:
            continue
        counts["placed"] += 1
        keep(held, (row, slot, channel), version, value)
    return {
        "held": held,
        "conflict": conflict,
        "opening": opening,
        "status": status,
        "skew": skew,
        "sub": sub,
        "counts": counts,
    }


@st.composite
def raw_batches(draw: st.DrawFn) -> tuple[list[Raw], list[int]]:
    # ids close together (a lookup table) or far apart (a search: the sparse path)
    spread = draw(st.sampled_from([1, 10**9]))
    meters = sorted(m * spread for m in draw(st.sets(st.integers(1, 50), min_size=1, max_size=3)))
    stamps = st.one_of(
        # mostly a few slots at both ends of the day, so that copies of a read meet
        st.sampled_from([-2, -1, 0, 1, 2, SLOTS - 1, SLOTS]).map(end),
        st.integers(-2, SLOTS).map(end),
        st.integers(-2 * 12, SLOTS * 12).map(lambda k: INFO.day0 + k * 300),  # shorter
        st.integers(INFO.day0 - 7200, INFO.day0 + 86_400 + 7200),  # anywhere
        # wild clocks: either side of where the kernel stops dividing by a float
        st.integers(-(2**41), 2**41).map(lambda k: INFO.day0 + k),
        st.integers(-(2**61), 2**61),
    )
    read = st.tuples(
        st.sampled_from([*meters, 99 * spread]),  # 99: a meter not in the grid
        st.sampled_from([1, 1, 2, 2, 3, 4, 0, 5]),  # channels outside 1..4 included
        stamps,
        st.integers(-2, 2),  # few values, so copies often agree and sometimes not
        st.integers(0, 3),  # version 0 counts as 1
        st.sampled_from([0, 0, 0, 0x02, 0x80]),
        # received this long after the stamp; -300 is the edge of the tolerance
        st.sampled_from([-900, -301, -300, -299, 0, 30, 900]),
    ).map(lambda r: (r[0], r[1], r[2], r[3], r[4], r[5], r[2] + r[6]))
    return draw(st.lists(read, max_size=60)), meters


@settings(max_examples=300, deadline=None)
@given(raw_batches(), st.integers(1, 3))
def test_every_rule_read_by_read(drawn: tuple[list[Raw], list[int]], batches: int) -> None:
    reads, meters = drawn
    want = _reference(reads, meters)
    b = GridBuilder(np.asarray(meters, dtype=np.int64), INFO)
    arr = np.asarray(reads, dtype=np.int64).reshape(-1, 7)
    for part in np.array_split(np.arange(arr.shape[0]), batches):
        r = arr[part]
        b.add(
            r[:, 0], r[:, 1], r[:, 2], r[:, 3], version=r[:, 4], status=r[:, 5], received_at=r[:, 6]
        )
    grid = b.frame()
    assert (b.reads, b.placed, b.unknown_meter, b.outside) == (
        len(reads),
        want["counts"]["placed"],
        want["counts"]["unknown"],
        want["counts"]["outside"],
    )
    names = {1: "imp", 2: "exp", 3: "imp_reg", 4: "exp_reg"}
    for i, row in enumerate(grid.iter_rows(named=True)):
        meter_row, slot = divmod(i, SLOTS)
        for channel, name in names.items():
            got = want["held"].get((meter_row, slot, channel))
            assert row[name] == (got[1] if got else None)
            opened = want["opening"].get((meter_row, channel))
            assert row[f"open_{name}"] == (opened[1] if opened else None)
        for channel, name in ((1, "conflict_imp"), (2, "conflict_exp")):
            assert row[name] == ((meter_row, slot, channel) in want["conflict"])
        assert row["status"] == want["status"].get((meter_row, slot), 0)
        assert row["skew"] == ((meter_row, slot) in want["skew"])
        assert row["sub"] == ((meter_row, slot) in want["sub"])


def test_a_batch_with_columns_of_different_lengths_is_refused() -> None:
    b = GridBuilder(np.asarray([1], dtype=np.int64), INFO)
    with pytest.raises(ValueError, match="one value per read"):
        b.add([1, 1], [1, 1], [end(0), end(1)], [5, 6], version=[1])
    with pytest.raises(ValueError, match="differ in length"):
        b.add([1, 1], [1], [end(0), end(1)], [5, 6])
