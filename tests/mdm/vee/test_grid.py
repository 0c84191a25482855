"""The grid builder: where each read lands, which copy wins, and that neither the order of
the reads nor how they are split into batches changes the grid."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
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
