"""Estimation on hand-made days: which method, what value, and the register's sum."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.mdm.vee.engine import GAP_SCHEMA
from openami.mdm.vee.flags import Quality
from openami.mdm.vee.gap_policy import GapAction
from openami.store.validated import Origin
from tests.mdm.vee.support import NOW, SLOTS, Day, attributes, config, end, flat, run, series

ASKED = NOW - 5 * 3600  # asked long enough ago for the default 4 h wait


def asked(meter: int, slots: list[int], at: int = ASKED) -> pl.DataFrame:
    """A gap book saying these slots were asked for once, at ``at``."""
    n = len(slots)
    return pl.DataFrame(
        {
            "meter_id": [meter] * n,
            "interval_end": [end(k) for k in slots],
            "first_seen_at": [at] * n,
            "asks": [1] * n,
            "first_asked_at": [at] * n,
            "last_asked_at": [at] * n,
        },
        schema=GAP_SCHEMA,
    )


def values_of(result_series: pl.DataFrame, slots: list[int]) -> list[int | None]:
    rows = result_series.filter(pl.col("interval_end").is_in([end(k) for k in slots]))
    return rows["value_wh"].to_list()


def flags_at(result_series: pl.DataFrame, slot: int) -> int:
    return int(result_series.filter(pl.col("interval_end") == end(slot))["flags"][0])


def test_a_fresh_gap_is_asked_for_not_estimated() -> None:
    values = flat(100)
    values[10:13] = [None, None, None]
    result = run(Day().meter(1, values), attributes([1]))
    assert [(r.meter_id, r.from_end, r.to_end) for r in result.requests] == [(1, end(10), end(12))]
    s = series(result, 1)
    assert s.filter(pl.col("value_wh").is_null())["interval_end"].to_list() == [
        end(10),
        end(11),
        end(12),
    ]
    assert flags_at(s, 10) == int(Quality.MISSING)
    book = result.gaps.sort("interval_end")
    assert book["asks"].to_list() == [1, 1, 1]
    assert book["first_asked_at"].to_list() == [NOW] * 3


def test_short_gap_linear_and_prorated_to_the_register() -> None:
    ramp: list[int | None] = [100 + 10 * k for k in range(SLOTS)]
    truth = [ramp[k] for k in (10, 11, 12)]
    ramp[10:13] = [None, None, None]
    # the registers count the real use of the missing intervals too
    offset = {k: sum(v or 0 for v in truth) for k in range(13, SLOTS)}
    day = Day().meter(1, ramp, register_offset=offset)
    result = run(day, attributes([1]), gaps=asked(1, [10, 11, 12]))
    s = series(result, 1)
    assert values_of(s, [10, 11, 12]) == truth
    expected = Quality.MISSING | Quality.ESTIMATED_LINEAR | Quality.PRORATED
    assert flags_at(s, 11) == int(expected)
    origin = s.filter(pl.col("interval_end") == end(11))["origin"][0]
    assert origin == int(Origin.ESTIMATED)
    assert result.requests == []
    assert result.counts["gaps/estimate"] == 1


def test_without_registers_the_line_is_rounded() -> None:
    values: list[int | None] = flat(100)
    values[9] = 100
    values[13] = 150
    values[10:13] = [None, None, None]
    result = run(
        Day().meter(1, values, registers=False), attributes([1]), gaps=asked(1, [10, 11, 12])
    )
    s = series(result, 1)
    assert values_of(s, [10, 11, 12]) == [112, 125, 138]  # 100 + 50 k / 4, rounded half even
    assert flags_at(s, 10) == int(Quality.MISSING | Quality.ESTIMATED_LINEAR)


def test_a_spike_is_replaced_by_the_registers_change() -> None:
    values = flat(100)
    values[20] = 9000
    offset = {k: -8900 for k in range(20, SLOTS)}  # the register never counted it
    result = run(Day().meter(1, values, register_offset=offset), attributes([1]))
    s = series(result, 1)
    assert values_of(s, [20]) == [100]
    flags = flags_at(s, 20)
    assert flags & Quality.SPIKE and flags & Quality.PRORATED and flags & Quality.ESTIMATED_LINEAR


def test_long_gap_follows_the_reference_profile() -> None:
    shape = [100 + (300 if 14 <= k < 22 else 0) for k in range(SLOTS)]  # an evening peak
    values: list[int | None] = list(shape)
    gap = list(range(12, 24))
    truth = sum(shape[k] for k in gap)
    for k in gap:
        values[k] = None
    offset = {k: truth for k in range(24, SLOTS)}
    profile = pl.DataFrame(
        {
            "meter_id": [1] * SLOTS,
            "slot": list(range(SLOTS)),
            "imp_wh": [float(v) for v in shape],
            "exp_wh": [0.0] * SLOTS,
        }
    )
    day = Day().meter(1, values, register_offset=offset)
    result = run(day, attributes([1]), gaps=asked(1, gap), profile=profile)
    s = series(result, 1)
    assert values_of(s, gap) == [shape[k] for k in gap]  # exact: the shape, scaled to the sum
    assert flags_at(s, 15) & Quality.ESTIMATED_PROFILE
    without = run(day, attributes([1]), gaps=asked(1, gap))  # no profile: a line
    assert flags_at(series(without, 1), 15) & Quality.ESTIMATED_LINEAR
    assert sum(v or 0 for v in values_of(series(without, 1), gap)) == truth  # the register


def test_the_profile_loader_is_asked_only_for_meters_that_need_it() -> None:
    asked_for: list[list[int]] = []

    def loader(meters: pl.Series) -> pl.DataFrame | None:
        asked_for.append(sorted(meters.to_list()))
        return None

    values = flat(100)
    values[5] = None
    day = Day().meter(1, values).meter(2, flat(100))
    run(day, attributes([1, 2]), gaps=asked(1, [5]), profile=loader)
    assert asked_for == [[1]]


def test_nothing_to_go_on_stays_missing() -> None:
    result = run(Day().meter(2, flat(100)), attributes([1, 2]), gaps=asked(1, list(range(SLOTS))))
    s = series(result, 1)
    assert s["value_wh"].null_count() == SLOTS
    assert set(s["origin"].to_list()) == {int(Origin.MISSING)}
    assert flags_at(s, 0) == int(Quality.MISSING)


def test_a_gap_at_midnight_uses_the_opening_interval() -> None:
    values: list[int | None] = flat(100)
    values[0:2] = [None, None]
    values[2] = 300
    day = Day().meter(1, values, registers=False, opening=True)
    day.rows = [r for r in day.rows if not (r[2] == end(-1) and r[1] == 1)]
    day.read(1, 1, end(-1), 0)
    result = run(day, attributes([1]), gaps=asked(1, [0, 1]))
    assert values_of(series(result, 1), [0, 1]) == [100, 200]  # from 0 at 00:00 to 300


def test_estimation_waits_for_the_policy() -> None:
    values = flat(100)
    values[30] = None
    recently = NOW - 1800  # asked half an hour ago: keep waiting
    result = run(Day().meter(1, values), attributes([1]), gaps=asked(1, [30], at=recently))
    assert values_of(series(result, 1), [30]) == [None]
    assert result.counts[f"gaps/{GapAction.WAIT.name.lower()}"] == 1
    assert result.requests == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 2000), min_size=SLOTS, max_size=SLOTS),
    st.integers(1, SLOTS - 2),
    st.integers(1, 20),
)
def test_estimates_are_whole_and_sum_to_the_register(
    values: list[int], first: int, length: int
) -> None:
    gap = list(range(first, min(first + length, SLOTS - 1)))
    truth = [values[k] for k in gap]
    day_values: list[int | None] = list(values)
    for k in gap:
        day_values[k] = None
    offset = {k: sum(truth) for k in range(gap[-1] + 1, SLOTS)}
    day = Day().meter(1, day_values, register_offset=offset)
    result = run(day, attributes([1], hist_peak=[None]), gaps=asked(1, gap))
    got = values_of(series(result, 1), gap)
    assert len(got) == len(gap)
    assert all(v is not None and v >= 0 for v in got)
    assert sum(v or 0 for v in got) == sum(truth)


def test_cfg_max_linear_decides_the_method() -> None:
    values = flat(100)
    gap = [10, 11, 12, 13, 14, 15]
    for k in gap:
        values[k] = None
    profile = pl.DataFrame(
        {
            "meter_id": [1] * SLOTS,
            "slot": list(range(SLOTS)),
            "imp_wh": [100.0] * SLOTS,
            "exp_wh": [0.0] * SLOTS,
        }
    )
    day = Day().meter(1, values, registers=False)
    short = run(
        day,
        attributes([1]),
        config(estimation={"max_linear_intervals": 8}),
        gaps=asked(1, gap),
        profile=profile,
    )
    long = run(day, attributes([1]), gaps=asked(1, gap), profile=profile)
    assert flags_at(series(short, 1), 12) & Quality.ESTIMATED_LINEAR
    assert flags_at(series(long, 1), 12) & Quality.ESTIMATED_PROFILE
    assert values_of(series(long, 1), gap) == [100] * len(gap)
