"""Periodic whole-fleet collection, a slice at a time, in the meters' time."""

from __future__ import annotations

import numpy as np
import pytest

from openami.headend.schedule import CollectionSchedule

STEP = 1800
DAY = 86_400
MIDNIGHT = 1_785_024_000  # a multiple of a day (UTC)


def test_a_round_covers_every_meter_and_the_period_before_it() -> None:
    schedule = CollectionSchedule(np.arange(1, 11, dtype=np.int64), DAY, STEP, slice_size=4)
    assert schedule.due(None) == []
    assert schedule.due(MIDNIGHT + 3 * STEP) == []  # the first round waits for its day's end
    assert schedule.due(MIDNIGHT + DAY - STEP) == []
    requests = []
    while part := schedule.due(MIDNIGHT + DAY):
        requests += part
    assert schedule.rounds == 1
    assert sorted({r.meter_id for r in requests}) == list(range(1, 11))
    for meter in range(1, 11):
        mine = sorted((r.from_end, r.to_end) for r in requests if r.meter_id == meter)
        # 48 intervals in one request would do; the split keeps each answer under 96 entries
        assert mine == [(MIDNIGHT + STEP, MIDNIGHT + DAY)]
    assert len({r.request_id for r in requests}) == len(requests)
    assert schedule.due(MIDNIGHT + DAY + STEP) == []  # the next round is a day later
    assert schedule.due(MIDNIGHT + 2 * DAY)[0].from_end == MIDNIGHT + DAY + STEP


def test_long_periods_are_split_into_answers_that_fit_a_datagram() -> None:
    schedule = CollectionSchedule(np.array([7], dtype=np.int64), 3 * DAY, STEP)
    assert schedule.due(3 * DAY * 600) == []  # on a boundary: the round is the next one
    requests = schedule.due(3 * DAY * 601)
    # 144 intervals: 96 in the first answer, 48 in the second
    assert [r.to_end - r.from_end for r in requests] == [95 * STEP, 47 * STEP]
    assert requests[0].to_end + STEP == requests[1].from_end


def test_the_period_is_whole_intervals() -> None:
    with pytest.raises(ValueError, match="whole number of intervals"):
        CollectionSchedule(np.array([1], dtype=np.int64), 1000, STEP)
