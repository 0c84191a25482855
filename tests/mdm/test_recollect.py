"""The MDMS's gap watcher: when it checks, and what it asks the head-end for."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openami.bus.contract import SUBJECT_COLLECT, CollectRequest, decode_message
from openami.bus.memory import MemoryBus
from openami.mdm.recollect import GapWatcher
from tests.mdm.test_gaps import DAY0, STEP, ids, make_lake


def _watcher(
    tmp_path: Path, reads: list[tuple[int, int, int, int]]
) -> tuple[GapWatcher, MemoryBus]:
    bus = MemoryBus()
    lake = make_lake(tmp_path, reads)
    return GapWatcher(lake, bus, ids(1, 2), STEP, quiet_s=1.0, max_fruitless=2), bus


def test_not_due_before_reads_arrive_or_while_meters_are_still_pushing(tmp_path: Path) -> None:
    w, _ = _watcher(tmp_path, [(1, 1, DAY0 + STEP, 5)])
    assert not w.due(10.0, 0.0, None, None, 0)  # nothing seen yet
    assert not w.due(10.0, 9.5, DAY0 + STEP, DAY0 + STEP, 4)  # data 0.5 s ago
    assert w.due(10.0, 8.0, DAY0 + STEP, DAY0 + STEP, 4)


def test_a_check_requests_exactly_the_missing_runs(tmp_path: Path) -> None:
    first, last = DAY0 + STEP, DAY0 + 4 * STEP
    reads = [(1, 1, DAY0 + k * STEP, 1) for k in (1, 2, 3, 4)] + [(2, 1, DAY0 + STEP, 1)]
    w, bus = _watcher(tmp_path, reads)
    sub = bus.subscribe(SUBJECT_COLLECT)
    assert w.check(first, last, reads=5) == 1
    (message,) = sub.fetch()
    request = decode_message(message.data)
    assert isinstance(request, CollectRequest)
    assert (request.meter_id, request.from_end, request.to_end) == (2, first + STEP, last)


def test_after_fruitless_rounds_it_waits_for_something_new(tmp_path: Path) -> None:
    first = DAY0 + STEP
    w, _ = _watcher(tmp_path, [(1, 1, first, 1)])  # meter 2 never answers
    for _ in range(3):  # the first check, then max_fruitless more without progress
        assert w.due(10.0, 0.0, first, first, 4)
        w.check(first, first, reads=4)
    assert not w.due(10.0, 0.0, first, first, 4)
    assert w.due(10.0, 0.0, first, first, 8)  # new reads arrived: check again
    assert w.checks == 3 and w.requests == 3
    assert np.array_equal(w.meter_ids, ids(1, 2))
