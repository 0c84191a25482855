"""The MDMS asking for what is missing: gap checks that turn into collection requests.

When the meters go quiet (no data for ``quiet_s``) and the head-end has nothing pending, the
watcher looks for every meter's missing intervals between the first and last interval seen
and publishes one individual-collection request per run of missing intervals. It checks
again after new reads arrived, and a few times more when a round brought nothing (a meter at
a cell edge may need many tries), then stops until something new arrives.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from openami.bus.base import Bus
from openami.bus.contract import SUBJECT_COLLECT, encode_message
from openami.mdm.gaps import find_gaps, gap_requests
from openami.store.lake import IntervalLake

__all__ = ["GapWatcher"]

IntArray = npt.NDArray[np.int64]


class GapWatcher:
    def __init__(
        self,
        lake: IntervalLake,
        bus: Bus,
        meter_ids: IntArray,
        step_s: int,
        *,
        quiet_s: float = 1.0,
        max_fruitless: int = 5,
    ) -> None:
        self.lake = lake
        self.bus = bus
        self.meter_ids = np.sort(meter_ids)
        self.step_s = step_s
        self.quiet_s = quiet_s
        self.max_fruitless = max_fruitless
        self.checks = 0
        self.requests = 0
        self._checked: tuple[int | None, int | None, int] = (None, None, -1)
        self._fruitless = 0

    def due(
        self, now: float, last_data: float, first_end: int | None, last_end: int | None, reads: int
    ) -> bool:
        """Whether a gap check should run now."""
        if first_end is None or now - last_data < self.quiet_s:
            return False
        progress = (first_end, last_end, reads) != self._checked
        return progress or self._fruitless < self.max_fruitless

    def check(self, first_end: int, last_end: int, reads: int) -> int:
        """Request every missing interval in ``first_end..last_end``; return the requests."""
        progress = (first_end, last_end, reads) != self._checked
        self._fruitless = 0 if progress else self._fruitless + 1
        self._checked = (first_end, last_end, reads)
        ends = np.arange(first_end, last_end + 1, self.step_s, dtype=np.int64)
        missing = find_gaps(self.lake, self.meter_ids, ends)
        requests = gap_requests(missing, self.meter_ids, ends)
        for request in requests:
            self.bus.publish(SUBJECT_COLLECT, encode_message(request))
        self.checks += 1
        self.requests += len(requests)
        return len(requests)
