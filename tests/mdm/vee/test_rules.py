"""Each validation rule on hand-made days: it flags exactly the bad rows, and nothing on
the meters next to them that are right (or that the rule must leave alone)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.mdm.vee.flags import FAILED, Quality
from openami.mdm.vee.grid import GridBuilder, GridInfo, broadcast
from openami.mdm.vee.rules import (
    ATTRIBUTE_COLUMNS,
    EXPORT,
    IMPORT,
    RULES,
    _helper,
    _with_hits,
    evaluate,
    flagged,
)
from tests.mdm.vee.support import (
    INFO,
    SLOTS,
    Day,
    attributes,
    config,
    end,
    flagged_slots,
    flat,
    grid_of,
)

ALL = list(range(SLOTS))


def only(grid: pl.DataFrame, flag: Quality) -> dict[tuple[int, str], list[int]]:
    """Every (meter, channel) that carries ``flag``, with its slots."""
    out: dict[tuple[int, str], list[int]] = {}
    for ch in ("imp", "exp"):
        rows = grid.filter((pl.col(f"flags_{ch}") & int(flag)) != 0)
        for meter, part in rows.group_by("meter_id", maintain_order=True):
            out[(int(str(meter[0])), ch)] = sorted(int(s) for s in part["slot"])
    return out


def test_missing_flags_exactly_the_absent_intervals() -> None:
    imp = flat(100)
    imp[5:8] = [None, None, None]
    day = Day().meter(1, imp).meter(2, flat(100))
    grid = grid_of(day, attributes([1, 2, 3]))
    assert only(grid, Quality.MISSING) == {
        (1, "imp"): [5, 6, 7],
        (1, "exp"): [5, 6, 7],
        (3, "imp"): ALL,  # a meter that sent nothing all day
        (3, "exp"): ALL,
    }


def test_spike_against_the_meters_own_history() -> None:
    big, below = flat(100), flat(100)
    big[20] = 3000  # > 3 x 600 peak, > 100 + 10 x 1.4826 x 20, > 500 Wh floor
    below[20] = 1700  # under 3 x the peak
    day = Day().meter(1, big).meter(2, below).meter(3, big)
    attrs = attributes([1, 2, 3], hist_peak=[600.0, 600.0, None])  # 3: no history yet
    grid = grid_of(day, attrs)
    assert only(grid, Quality.SPIKE) == {(1, "imp"): [20]}
    assert only(grid, Quality.REGISTER_MISMATCH) == {}  # registers counted the real use


def test_spike_floor_spares_a_near_idle_meter() -> None:
    idle = flat(5)
    idle[10] = 400  # 80 x its history, but only 800 W: a kettle
    grid = grid_of(Day().meter(1, idle), attributes([1], hist_median=[5.0], hist_peak=[10.0]))
    assert flagged_slots(grid, 1, Quality.SPIKE) == []


def test_reverse_flow_only_where_the_meter_has_no_pv() -> None:
    exp = [0] * SLOTS
    exp[10:13] = [50, 60, 70]
    imp = flat(100)
    day = Day().meter(1, imp, exp).meter(2, imp, exp).meter(3, imp, exp)
    negative = flat(100)
    negative[30] = -40  # corrupt: interval values are never negative
    day.meter(4, negative, registers=False)
    grid = grid_of(day, attributes([1, 2, 3, 4], has_pv=[False, True, None, True]))
    assert only(grid, Quality.REVERSE_FLOW) == {(1, "exp"): [10, 11, 12], (4, "imp"): [30]}


def test_register_mismatch_flags_the_span_of_the_day() -> None:
    offset = {k: 100 for k in range(30, SLOTS)}
    small = {k: 1 for k in range(30, SLOTS)}  # within the 2 Wh tolerance
    holes = flat(100)
    holes[40] = None
    day = (
        Day()
        .meter(1, flat(100), register_offset=offset)
        .meter(2, flat(100), register_offset=small)
        .meter(3, holes, register_offset=offset)
        .meter(4, flat(100), register_offset=offset, opening=True)
    )
    grid = grid_of(day, attributes([1, 2, 3, 4]))
    assert only(grid, Quality.REGISTER_MISMATCH) == {
        (1, "imp"): list(range(1, SLOTS)),  # after the first register read
        # a missing interval (and the one after it, whose register step is unknown) drops
        # out of the sums; the rest still shows the mismatch
        (3, "imp"): [k for k in range(1, SLOTS) if k not in (40, 41)],
        (4, "imp"): ALL,  # the opening register at 00:00 covers slot 0 too
    }


def test_register_mismatch_tolerance_grows_with_the_change() -> None:
    offset = {k: 40 for k in range(30, SLOTS)}  # 40 Wh on 48 kWh: under 0.5 %
    day = Day().meter(1, flat(1000), register_offset=offset)
    assert only(grid_of(day, attributes([1])), Quality.REGISTER_MISMATCH) == {}


def test_zero_use_at_an_occupied_premise() -> None:
    def zeros(n: int) -> list[int | None]:
        values = flat(100)
        values[10 : 10 + n] = [0] * n
        return values

    pv_exp = [0] * SLOTS
    pv_exp[10:23] = [40] * 13
    day = (
        Day()
        .meter(1, zeros(13))  # 6.5 h
        .meter(2, zeros(11))  # 5.5 h: too short
        .meter(3, zeros(13))  # not occupied
        .meter(4, zeros(13), status={16: 0x80})  # a power cut splits the run
        .meter(5, zeros(13), pv_exp)  # exporting: the home makes its own power
    )
    attrs = attributes([1, 2, 3, 4, 5], occupied=[True, True, False, True, True])
    grid = grid_of(day, attrs)
    assert only(grid, Quality.ZERO_USE) == {(1, "imp"): list(range(10, 23))}


def test_clock_error_from_the_meters_status() -> None:
    day = Day().meter(1, flat(100), status={3: 0x02, 4: 0x02}).meter(2, flat(100))
    grid = grid_of(day, attributes([1, 2]))
    assert only(grid, Quality.CLOCK_ERROR) == {(1, "imp"): [3, 4], (1, "exp"): [3, 4]}


def test_time_shift_off_the_grid_or_ahead_of_receipt() -> None:
    values = flat(100)
    values[10] = None
    early = flat(100)
    early[20] = None
    day = Day().meter(1, values).meter(2, early, registers=False)
    for channel in (1, 2, 3, 4):
        day.read(1, channel, end(10) + 7, 100)  # stamped seven seconds late
    for channel in (1, 2):
        day.read(2, channel, end(20), 100, received_at=end(19))  # an hour before its end
    grid = grid_of(day, attributes([1, 2]))
    assert only(grid, Quality.TIME_SHIFT) == {
        (1, "imp"): [10],
        (1, "exp"): [10],
        (2, "imp"): [20],
        (2, "exp"): [20],
    }
    missing = only(grid, Quality.MISSING)
    assert missing[(1, "imp")] == [10]  # the skewed read gives no value
    assert (2, "imp") not in missing  # the early one does: the interval is on the grid


def test_conflict_when_copies_disagree() -> None:
    day = Day().meter(1, flat(100)).meter(2, flat(100)).meter(3, flat(100))
    day.read(1, 1, end(15), 140)  # a second copy with another value
    day.read(2, 1, end(15), 100)  # a second identical copy: fine
    day.read(3, 1, end(15), 160, version=2)  # a newer version
    grid = grid_of(day, attributes([1, 2, 3]))
    assert only(grid, Quality.CONFLICT) == {(1, "imp"): [15], (3, "imp"): [15]}
    value = grid.filter(pl.col("slot") == 15).sort("meter_id")["imp"].to_list()
    assert value == [100, 100, 160]  # first copy among equals; the highest version


def test_over_contract_current() -> None:
    day = Day()
    for meter, peak in ((1, 1600), (2, 1500), (3, 1600)):
        values = flat(100)
        values[19] = peak
        day.meter(meter, values)
    # 30 A x 100 V = 3 kW = 1500 Wh per half hour
    attrs = attributes([1, 2, 3], contract_amps=[30.0, 30.0, None], hist_peak=[9e9] * 3)
    assert only(grid_of(day, attrs), Quality.OVER_CONTRACT) == {(1, "imp"): [19]}


def test_short_interval_reads_between_slots() -> None:
    day = Day().meter(1, flat(50)).meter(2, flat(100))
    for k in range(1, SLOTS):
        day.read(1, 1, end(k) - 900, 50)  # a 15-minute meter configured as 30
    grid = grid_of(day, attributes([1, 2]))
    assert only(grid, Quality.SHORT_INTERVAL) == {
        (1, "imp"): list(range(1, SLOTS)),
        (1, "exp"): list(range(1, SLOTS)),
    }


def test_long_interval_after_an_interval_change() -> None:
    hourly: list[int | None] = [None if k % 2 else 100 for k in range(SLOTS)]
    hourly = [v if k == 0 or v is None else 200 for k, v in enumerate(hourly)]
    one_gap = flat(100)
    one_gap[9] = None
    # registers follow the hourly values: every read covers the hour before it
    day = Day().meter(1, hourly).meter(2, one_gap).meter(3, hourly, registers=False)
    grid = grid_of(day, attributes([1, 2, 3]))
    longs = only(grid, Quality.LONG_INTERVAL)
    assert longs[(1, "imp")] == list(range(2, SLOTS, 2))
    assert longs[(3, "imp")] == list(range(2, SLOTS, 2))  # without registers: the cadence
    assert (2, "imp") not in longs  # one missing interval is a gap, not a new interval


def test_the_first_read_of_a_meters_day_spans_from_no_earlier_read() -> None:
    """A meter whose day starts with missing slots: its first read has no previous read of
    its own (the meter before it in the grid has reads, which must not count)."""
    hourly: list[int | None] = [None if k % 2 else 200 for k in range(SLOTS)]
    late = list(hourly)
    late[0] = None
    day = Day().meter(1, hourly, registers=False).meter(2, late, registers=False)
    longs = only(grid_of(day, attributes([1, 2])), Quality.LONG_INTERVAL)
    assert longs[(1, "imp")] == list(range(2, SLOTS, 2))
    assert longs[(2, "imp")] == list(range(4, SLOTS, 2))


def test_power_down_is_information_not_a_failure() -> None:
    values = flat(100)
    values[7] = 0
    grid = grid_of(Day().meter(1, values, status={7: 0x80}), attributes([1]))
    row = grid.filter(pl.col("slot") == 7).row(0, named=True)
    assert row["flags_imp"] == int(Quality.POWER_DOWN)
    assert not row["flags_imp"] & int(FAILED)


def test_flagged_returns_the_rows_of_one_rule() -> None:
    values = flat(100)
    values[3] = 5000
    day = Day().meter(1, values).meter(2, flat(100))
    attrs = attributes([1, 2])
    grid = broadcast(day.builder([1, 2]).frame(), attrs, ATTRIBUTE_COLUMNS, SLOTS)
    rows = flagged(grid, "spike", INFO, config(), IMPORT)
    assert rows.select("meter_id", "slot").rows() == [(1, 3)]
    assert rows.columns == grid.columns
    assert flagged(grid, "reverse_flow", INFO, config(), EXPORT).height == 0


def test_a_disabled_rule_flags_nothing() -> None:
    values = flat(100)
    values[3] = 5000
    day = Day().meter(1, values)
    cfg = config(rules={"spike": {"enabled": False}})
    assert only(grid_of(day, attributes([1]), cfg), Quality.SPIKE) == {}


@pytest.mark.parametrize("rule", [r.name for r in RULES])
def test_every_rule_is_quiet_on_a_clean_day(rule: str) -> None:
    day = Day()
    for meter in range(1, 6):
        day.meter(meter, [90 + (7 * k * meter) % 40 for k in range(SLOTS)], opening=True)
    grid = grid_of(day, attributes(range(1, 6)))
    flag = next(r.flag for r in RULES if r.name == rule)
    assert only(grid, flag) == {}


def test_replace_follows_the_estimate_setting() -> None:
    values = flat(100)
    values[3] = 5000
    day = Day().meter(1, values)
    grid = grid_of(day, attributes([1]))
    assert grid.filter(pl.col("replace_imp"))["slot"].to_list() == [3]
    cfg = config(rules={"spike": {"estimate": False}})
    assert grid_of(day, attributes([1]), cfg)["replace_imp"].sum() == 0


def test_a_fifteen_minute_grid_scales_the_thresholds() -> None:
    info = GridInfo(INFO.day0, 900, 96)
    b = GridBuilder(np.array([1, 2]), info)
    ends = info.day0 + np.arange(96) * 900
    high = np.full(96, 100)
    high[40] = 800  # 3.2 kW for a quarter hour, over 30 A x 100 V
    zeros = np.full(96, 100)
    zeros[10:34] = 0  # six hours
    for meter, imp in ((1, high), (2, zeros)):
        b.add(np.full(96, meter), np.full(96, 1), ends, imp)
        b.add(np.full(96, meter), np.full(96, 2), ends, np.zeros(96))
    attrs = attributes([1, 2], contract_amps=[30.0, 30.0], hist_peak=[9e9, 9e9])
    grid = broadcast(b.frame(), attrs, ATTRIBUTE_COLUMNS, 96)
    out, _ = evaluate(grid, info, config())
    assert only(out, Quality.OVER_CONTRACT) == {(1, "imp"): [40]}
    assert only(out, Quality.ZERO_USE) == {(2, "imp"): list(range(10, 34))}


@settings(max_examples=60, deadline=None)
@given(
    days=st.lists(
        st.tuples(
            # a meter's day: every slot read, or a hole now and then, or an hourly cadence
            st.sampled_from(["full", "holes", "hourly", "late start"]),
            st.booleans(),  # registers
            st.integers(0, 2**32 - 1),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_a_rule_with_a_scope_flags_what_it_flags_on_the_whole_grid(
    days: list[tuple[str, bool, int]],
) -> None:
    """The scope is a promise (``rules.Check``): run only on the meters inside it, a rule
    must find exactly what it finds on every meter."""
    day = Day()
    for meter, (shape, registers, seed) in enumerate(days, start=1):
        rng = np.random.default_rng(seed)
        values: list[int | None] = [int(v) for v in rng.integers(0, 400, SLOTS)]
        if shape == "holes":
            values = [None if rng.random() < 0.15 else v for v in values]
        elif shape == "hourly":
            values = [None if k % 2 else 2 * v for k, v in enumerate(values) if v is not None]
        elif shape == "late start":
            values[: int(rng.integers(1, 6))] = [None] * 5
            values = values[:SLOTS]
        day.meter(meter, values, registers=registers)
    ids = list(range(1, len(days) + 1))
    grid = broadcast(day.builder(ids).frame(), attributes(ids), ATTRIBUTE_COLUMNS, SLOTS)
    cfg = config(rules={"long_interval": {"min_run": 2}})
    scoped = [
        r
        for r in RULES
        if any(
            r.build(cfg.rules[r.name], ch, INFO, _helper(r.name, ch)).scope is not None
            for ch in r.channels
        )
    ]
    assert scoped, "no rule has a scope: nothing to hold to its promise"
    for r in scoped:
        for ch in r.channels:
            check = r.build(cfg.rules[r.name], ch, INFO, _helper(r.name, ch))
            inside = _with_hits(grid, {"hit": check}).get_column("hit")
            everywhere = _with_hits(grid, {"hit": replace(check, scope=None)}).get_column("hit")
            assert inside.to_list() == everywhere.to_list(), (r.name, ch.value)
