from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.bus.contract import Channel, CollectRequest, ReadSource
from openami.mdm.gaps import (
    MAX_ENTRIES_PER_REQUEST,
    find_gaps,
    gap_requests,
    stored_totals,
)
from openami.store.lake import IntervalLake

DAY0 = int(datetime(2026, 8, 3, tzinfo=UTC).timestamp())
STEP = 1800
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Read = tuple[int, int, int, int]  # meter_id, channel, interval_end, value_wh


def ids(*values: int) -> IntArray:
    return np.array(values, dtype=np.int64)


def grid(first: int, count: int) -> IntArray:
    return DAY0 + STEP * np.arange(first, first + count, dtype=np.int64)


def make_lake(root: Path, reads: list[Read]) -> IntervalLake:
    lake = IntervalLake(root)
    result = lake.append(
        {
            "meter_id": [r[0] for r in reads],
            "channel": [r[1] for r in reads],
            "interval_end": [r[2] for r in reads],
            "value_wh": [r[3] for r in reads],
            "source": [int(ReadSource.PUSH)] * len(reads),
            "status": [0] * len(reads),
        }
    )
    assert result.written == len(reads)
    return lake


def spans(requests: list[CollectRequest]) -> list[tuple[int, int, int]]:
    return [(r.meter_id, r.from_end, r.to_end) for r in requests]


# --- find_gaps ---------------------------------------------------------------------------


def test_find_gaps_returns_exactly_the_missing_pairs(tmp_path: Path) -> None:
    meter_ids = ids(1, 2, 4, 5, 6)
    ends = grid(1, 48)
    missing = {(2, 5), (2, 6), (4, 1), (6, 48)} | {(5, k) for k in range(1, 49)}
    reads: list[Read] = []
    for m in meter_ids.tolist():
        for k in range(0, 50):  # one interval either side of the window
            end = DAY0 + k * STEP
            if (m, k) not in missing:
                reads.append((m, Channel.IMPORT_INTERVAL, end, 10))
            # Other channels are present even where the import interval is missing.
            reads.append((m, Channel.IMPORT_REGISTER, end, 1000 + k))
            reads.append((m, Channel.EXPORT_INTERVAL, end, 0))
    reads += [(3, Channel.IMPORT_INTERVAL, DAY0 + STEP, 1), (99, Channel.IMPORT_INTERVAL, DAY0, 1)]
    lake = make_lake(tmp_path, reads)

    gaps = find_gaps(lake, meter_ids, ends)
    assert gaps.shape == (5, 48)
    assert gaps.dtype == np.bool_
    got = {(int(meter_ids[m]), int(t) + 1) for m, t in zip(*np.nonzero(gaps), strict=True)}
    assert got == missing


def test_find_gaps_on_a_window_inside_the_stored_data(tmp_path: Path) -> None:
    reads: list[Read] = [
        (1, Channel.IMPORT_INTERVAL, DAY0 + k * STEP, 5) for k in range(1, 49) if k != 20
    ]
    lake = make_lake(tmp_path, reads)
    gaps = find_gaps(lake, ids(1, 2), grid(18, 4))  # ends 18..21
    assert gaps.tolist() == [[False, False, True, False], [True, True, True, True]]


def test_find_gaps_on_an_empty_lake_finds_everything_missing(tmp_path: Path) -> None:
    gaps = find_gaps(IntervalLake(tmp_path), ids(1, 2, 3), grid(1, 4))
    assert gaps.shape == (3, 4)
    assert gaps.all()


def test_find_gaps_with_no_meters_or_no_ends(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, [(1, Channel.IMPORT_INTERVAL, DAY0 + STEP, 1)])
    assert find_gaps(lake, ids(), grid(1, 3)).shape == (0, 3)
    assert find_gaps(lake, ids(1, 2), ids()).shape == (2, 0)


@settings(max_examples=20, deadline=None)
@given(st.sets(st.tuples(st.integers(0, 4), st.integers(0, 11))))
def test_find_gaps_is_the_complement_of_what_is_stored(present: set[tuple[int, int]]) -> None:
    meter_ids = ids(3, 8, 9, 20, 21)
    ends = grid(1, 12)
    reads: list[Read] = [
        (int(meter_ids[m]), Channel.IMPORT_INTERVAL, int(ends[t]), 1) for m, t in present
    ]
    with tempfile.TemporaryDirectory() as folder:
        lake = make_lake(Path(folder), reads)
        gaps = find_gaps(lake, meter_ids, ends)
    expected = np.ones((5, 12), dtype=bool)
    for m, t in present:
        expected[m, t] = False
    assert np.array_equal(gaps, expected)


# --- gap_requests ------------------------------------------------------------------------


def test_consecutive_missing_intervals_of_a_meter_become_one_request() -> None:
    meter_ids = ids(10, 20, 30)
    ends = grid(1, 10)
    missing = np.zeros((3, 10), dtype=bool)
    missing[0, 2:5] = True
    missing[0, 7] = True
    missing[0, 9] = True
    missing[1, 0] = True  # right after meter 10's last missing interval: another meter
    missing[2, :] = True
    requests = gap_requests(missing, meter_ids, ends)
    assert spans(requests) == [
        (10, int(ends[2]), int(ends[4])),
        (10, int(ends[7]), int(ends[7])),
        (10, int(ends[9]), int(ends[9])),
        (20, int(ends[0]), int(ends[0])),
        (30, int(ends[0]), int(ends[9])),
    ]
    assert all(isinstance(r, CollectRequest) for r in requests)
    assert len({r.request_id for r in requests}) == len(requests)
    assert all(r.request_id for r in requests)


def test_nothing_missing_means_no_requests() -> None:
    assert gap_requests(np.zeros((2, 5), dtype=bool), ids(1, 2), grid(1, 5)) == []


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (MAX_ENTRIES_PER_REQUEST - 1, [(0, MAX_ENTRIES_PER_REQUEST - 2)]),
        (MAX_ENTRIES_PER_REQUEST, [(0, MAX_ENTRIES_PER_REQUEST - 1)]),
        (
            MAX_ENTRIES_PER_REQUEST + 1,
            [(0, MAX_ENTRIES_PER_REQUEST - 1), (MAX_ENTRIES_PER_REQUEST, MAX_ENTRIES_PER_REQUEST)],
        ),
        (
            2 * MAX_ENTRIES_PER_REQUEST + 58,
            [
                (0, MAX_ENTRIES_PER_REQUEST - 1),
                (MAX_ENTRIES_PER_REQUEST, 2 * MAX_ENTRIES_PER_REQUEST - 1),
                (2 * MAX_ENTRIES_PER_REQUEST, 2 * MAX_ENTRIES_PER_REQUEST + 57),
            ],
        ),
    ],
)
def test_long_runs_are_split(length: int, expected: list[tuple[int, int]]) -> None:
    ends = grid(1, length + 10)
    missing = np.zeros((1, ends.size), dtype=bool)
    missing[0, 5 : 5 + length] = True
    requests = gap_requests(missing, ids(7), ends)
    assert spans(requests) == [(7, int(ends[5 + a]), int(ends[5 + b])) for a, b in expected]


@st.composite
def missing_matrices(draw: st.DrawFn) -> BoolArray:
    rows = draw(st.integers(1, 4))
    cols = draw(st.integers(1, 3 * MAX_ENTRIES_PER_REQUEST))
    density = draw(st.sampled_from([0.05, 0.5, 0.95, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).random((rows, cols)) < density


@given(missing_matrices())
def test_requests_cover_exactly_the_missing_intervals(missing: BoolArray) -> None:
    meter_ids = 100 + 3 * np.arange(missing.shape[0], dtype=np.int64)
    ends = grid(1, missing.shape[1])
    requests = gap_requests(missing, meter_ids, ends)
    covered = np.zeros_like(missing, dtype=np.int64)
    for r in requests:
        m = int(np.searchsorted(meter_ids, r.meter_id))
        lo, hi = (int(np.searchsorted(ends, e)) for e in (r.from_end, r.to_end))
        assert meter_ids[m] == r.meter_id
        assert ends[lo] == r.from_end and ends[hi] == r.to_end
        assert 1 <= hi - lo + 1 <= MAX_ENTRIES_PER_REQUEST
        covered[m, lo : hi + 1] += 1
    assert np.array_equal(covered, missing.astype(np.int64))  # every gap once, nothing else
    # As few requests as the size limit allows: ceil(run / limit) per run of a meter.
    runs = 0
    for row in missing:
        padded = np.r_[False, row, False].astype(np.int8)
        starts = np.flatnonzero(np.diff(padded) == 1)
        stops = np.flatnonzero(np.diff(padded) == -1)
        lengths = (stops - starts).tolist()
        runs += sum(-(-n // MAX_ENTRIES_PER_REQUEST) for n in lengths)
    assert len(requests) == runs


# --- stored_totals / Reconciliation ------------------------------------------------------

METERS = (1, 2, 3, 4)
FIRST, LAST = 2, 50  # first and last register reads at DAY0 + k * STEP


def consistent_reads() -> list[Read]:
    """Intervals adding up to the register change for every meter; meter 2 also exports.
    Reads outside (FIRST, LAST] and at FIRST itself are there to be ignored."""
    reads: list[Read] = []
    for m in METERS:
        register = exported = 1_000_000 * m
        for k in range(0, LAST + 2):
            end = DAY0 + k * STEP
            used = 7 * m + (k * 13) % 29
            register += used
            reads.append((m, Channel.IMPORT_INTERVAL, end, used))
            reads.append((m, Channel.IMPORT_REGISTER, end, register))
            if m == 2:
                fed = (k * 5) % 11
                exported += fed
                reads.append((m, Channel.EXPORT_INTERVAL, end, fed))
                reads.append((m, Channel.EXPORT_REGISTER, end, exported))
    return reads


def expected_import_sum(meter: int) -> int:
    return sum(7 * meter + (k * 13) % 29 for k in range(FIRST + 1, LAST + 1))


def test_consistent_reads_reconcile(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, consistent_reads())
    meter_ids = ids(*METERS)
    totals = stored_totals(lake, meter_ids, DAY0 + FIRST * STEP, DAY0 + LAST * STEP)
    assert totals.failures().tolist() == []
    assert totals.meter_ids.tolist() == list(METERS)
    assert totals.import_sum_wh.tolist() == [expected_import_sum(m) for m in METERS]
    assert np.array_equal(totals.import_sum_wh, totals.import_register_delta_wh)
    assert totals.register_intervals.tolist() == [LAST - FIRST] * len(METERS)
    export = sum((k * 5) % 11 for k in range(FIRST + 1, LAST + 1))
    assert totals.export_sum_wh.tolist() == [0, export, 0, 0]
    assert totals.export_register_delta_wh.tolist() == [0, export, 0, 0]


def test_only_registers_and_intervals_exactly_at_the_bounds_count(tmp_path: Path) -> None:
    reads: list[Read] = [
        (1, Channel.IMPORT_REGISTER, DAY0, 100),
        (1, Channel.IMPORT_INTERVAL, DAY0, 1_000),  # ends at the first register: excluded
        (1, Channel.IMPORT_INTERVAL, DAY0 + STEP, 30),
        (1, Channel.IMPORT_REGISTER, DAY0 + STEP, 130),
        (1, Channel.IMPORT_INTERVAL, DAY0 + 2 * STEP, 20),
        (1, Channel.IMPORT_REGISTER, DAY0 + 2 * STEP, 150),
        (1, Channel.IMPORT_INTERVAL, DAY0 + 3 * STEP, 5_000),  # after the last: excluded
        (1, Channel.IMPORT_REGISTER, DAY0 + 3 * STEP, 5_150),
    ]
    totals = stored_totals(make_lake(tmp_path, reads), ids(1), DAY0, DAY0 + 2 * STEP)
    assert totals.import_sum_wh.tolist() == [50]
    assert totals.import_register_delta_wh.tolist() == [50]
    assert totals.register_intervals.tolist() == [2]
    assert totals.failures().tolist() == []


def _tamper(reads: list[Read], meter: int, channel: int, k: int, delta: int | None) -> list[Read]:
    """Change (or, with ``delta`` None, drop) one read."""
    end = DAY0 + k * STEP
    out: list[Read] = []
    for r in reads:
        if r[:3] == (meter, channel, end):
            if delta is None:
                continue
            r = (r[0], r[1], r[2], r[3] + delta)
        out.append(r)
    return out


@pytest.mark.parametrize(
    ("meter", "channel", "k", "delta"),
    [
        (3, Channel.IMPORT_INTERVAL, 17, 1),
        (1, Channel.IMPORT_INTERVAL, LAST, -1),  # the last interval counts
        (4, Channel.IMPORT_INTERVAL, 30, None),  # a missing interval
        (2, Channel.EXPORT_INTERVAL, 3, 2),  # the first interval after FIRST counts
        (1, Channel.IMPORT_REGISTER, LAST, 1),
        (2, Channel.EXPORT_REGISTER, FIRST, -1),
    ],
)
def test_one_changed_read_reports_exactly_that_meter(
    tmp_path: Path, meter: int, channel: int, k: int, delta: int | None
) -> None:
    reads = _tamper(consistent_reads(), meter, channel, k, delta)
    lake = make_lake(tmp_path / "tampered", reads)
    totals = stored_totals(lake, ids(*METERS), DAY0 + FIRST * STEP, DAY0 + LAST * STEP)
    assert totals.failures().tolist() == [meter]


@pytest.mark.parametrize(
    ("channel", "k"),
    [
        (Channel.IMPORT_INTERVAL, FIRST),  # ends at the first register: not in the sum
        (Channel.IMPORT_INTERVAL, LAST + 1),  # after the window
        (Channel.IMPORT_REGISTER, FIRST + 5),  # a register between the two used ones
    ],
)
def test_a_changed_read_outside_what_is_compared_reports_nothing(
    tmp_path: Path, channel: int, k: int
) -> None:
    reads = _tamper(consistent_reads(), 3, channel, k, 1_000)
    lake = make_lake(tmp_path, reads)
    totals = stored_totals(lake, ids(*METERS), DAY0 + FIRST * STEP, DAY0 + LAST * STEP)
    assert totals.failures().tolist() == []


def test_a_missing_register_reports_the_meter(tmp_path: Path) -> None:
    reads = _tamper(consistent_reads(), 4, Channel.IMPORT_REGISTER, LAST, None)
    totals = stored_totals(
        make_lake(tmp_path, reads), ids(*METERS), DAY0 + FIRST * STEP, DAY0 + LAST * STEP
    )
    assert totals.failures().tolist() == [4]


def test_a_meter_without_any_stored_reads_is_reported(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, consistent_reads())
    totals = stored_totals(lake, ids(*METERS, 77), DAY0 + FIRST * STEP, DAY0 + LAST * STEP)
    assert totals.failures().tolist() == [77]
    assert totals.register_intervals.tolist()[-1] == 0


def test_meters_stored_but_not_asked_for_are_left_out(tmp_path: Path) -> None:
    reads = _tamper(consistent_reads(), 2, Channel.IMPORT_INTERVAL, 10, 5)
    lake = make_lake(tmp_path, reads)
    totals = stored_totals(lake, ids(1, 3), DAY0 + FIRST * STEP, DAY0 + LAST * STEP)
    assert totals.meter_ids.tolist() == [1, 3]
    assert totals.failures().tolist() == []
    assert totals.import_sum_wh.tolist() == [expected_import_sum(1), expected_import_sum(3)]


def test_stored_totals_with_no_meters(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, consistent_reads())
    totals = stored_totals(lake, ids(), DAY0 + FIRST * STEP, DAY0 + LAST * STEP)
    assert totals.failures().tolist() == []
