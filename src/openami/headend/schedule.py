"""Periodic collection: the whole fleet collected on a schedule, as a safety net under pushes.

Pushes bring nearly every read within minutes, and the MDMS asks for what it finds missing;
a utility still collects every meter's profile on a schedule (typically once a day, at
night), so that a meter whose pushes fail silently is noticed and its data comes in anyway.
``CollectionSchedule`` hands out the requests of each round a slice at a time (the collector
paces them per access point), for the window of interval ends since the previous round in
the meters' own time (the newest interval end the head-end has seen), so an accelerated
simulation and a fleet on the wall clock are collected alike.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from openami.bus.contract import CollectRequest

__all__ = ["CollectionSchedule"]

IntArray = npt.NDArray[np.int64]
MAX_INTERVALS_PER_REQUEST = 96  # one answer well inside a UDP datagram (as mdm.gaps)


class CollectionSchedule:
    def __init__(self, meter_ids: IntArray, every_s: int, step_s: int, slice_size: int = 5_000):
        if every_s < step_s or every_s % step_s:
            raise ValueError("collect every whole number of intervals, at least one")
        self.meter_ids = np.sort(meter_ids)
        self.every_s = every_s
        self.step_s = step_s
        self.slice_size = slice_size
        self.rounds = 0
        self.requested = 0
        self._next_end: int | None = None  # the round starts once this interval end is seen
        self._window: tuple[int, int] | None = None
        self._cursor = 0

    def due(self, newest_end: int | None) -> list[CollectRequest]:
        """The next slice of requests, given the newest interval end pushed so far."""
        if newest_end is None:
            return []
        if self._window is None:
            if self._next_end is None:  # the first round covers the period before it
                self._next_end = newest_end - newest_end % self.every_s + self.every_s
            if newest_end < self._next_end:
                return []
            first = self._next_end - self.every_s + self.step_s
            self._window = (first, self._next_end)
            self._next_end += self.every_s
            self._cursor = 0
            self.rounds += 1
        lo, hi = self._window
        meters = self.meter_ids[self._cursor : self._cursor + self.slice_size]
        self._cursor += meters.size
        if self._cursor >= self.meter_ids.size:
            self._window = None
        span = MAX_INTERVALS_PER_REQUEST * self.step_s
        out = [
            CollectRequest(int(m), start, min(start + span - self.step_s, hi), f"sched-{start}-{m}")
            for m in meters.tolist()
            for start in range(lo, hi + 1, span)
        ]
        self.requested += len(out)
        return out
