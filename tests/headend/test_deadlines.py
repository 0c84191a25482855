"""Deadline statistics: shares of each interval's reads in by T+10 min, T+1 h, T+24 h."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openami.headend.deadlines import DeadlineStats

STEP = 1800
END = 1_785_000_600  # an interval end (a multiple of STEP)


def test_reads_land_in_the_band_of_their_delay() -> None:
    stats = DeadlineStats(STEP)
    ends = np.full(90, END, dtype=np.int64)
    stats.record(ends[:80], END + 300.0)  # pushed: in by T+10 min
    stats.record(ends[80:85], END + 600.0)  # exactly at the deadline still counts
    stats.record(ends[85:88], END + 1_800.0)  # re-collected within the hour
    stats.record(ends[88:89], END + 7_200.0)  # within the day
    stats.record(ends[89:], END + 200_000.0)  # later still
    (share,) = DeadlineStats.shares([stats.table], STEP, expected=100)
    assert share.interval_end == END
    assert (share.by_10_min, share.by_1_h, share.by_24_h, share.at_all) == (0.85, 0.88, 0.89, 0.9)


def test_workers_tables_add_up_and_old_slots_are_reused(tmp_path: Path) -> None:
    a = DeadlineStats(STEP, slots=4, path=tmp_path / "a.npy")
    b = DeadlineStats(STEP, slots=4, path=tmp_path / "b.npy")
    a.record(np.array([END, END + STEP]), END + STEP + 60.0)
    b.record(np.array([END]), END + 120.0)
    shares = DeadlineStats.shares([a.table, b.table], STEP, expected=2)
    assert [s.interval_end for s in shares] == [END, END + STEP]
    assert shares[0].by_10_min == 0.5 and shares[0].by_1_h == 1.0  # a's was 30 min late
    # four intervals later the first slot holds a new interval: the old counts are gone
    a.record(np.array([END + 4 * STEP]), END + 4 * STEP + 1.0)
    again = DeadlineStats(STEP, slots=4, path=tmp_path / "a.npy")  # read back from the file
    ends = [s.interval_end for s in DeadlineStats.shares([again.table], STEP, 1)]
    assert ends == [END + STEP, END + 4 * STEP]


def test_overall_is_the_mean_over_intervals() -> None:
    stats = DeadlineStats(STEP)
    stats.record(np.array([END, END, END + STEP]), END + STEP + 10.0)
    shares = DeadlineStats.shares([stats.table], STEP, expected=2)
    assert DeadlineStats.overall(shares) == {"by_10_min": 0.25, "by_1_h": 0.75, "by_24_h": 0.75}
    assert DeadlineStats.overall([]) == {}
