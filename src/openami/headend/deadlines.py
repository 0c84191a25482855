"""Deadline statistics: how much of each interval's reads was collected how soon.

A utility judges collection by deadlines after each interval's end: the share of meters
whose read for the interval was in by T+10 min (the pushes' window), T+1 h and T+24 h
(re-collection). ``DeadlineStats`` counts, per interval, the import-interval reads stored
on the bus in each band of delay after the interval's end; the time is passed in, so the
same counters serve the head-end on the wall clock and the demo on its simulated clock.

Counts live in a ring of ``slots`` intervals (four days of half-hours by default), as a
NumPy array that can be a file mapped into memory: each ingest worker keeps its own and
the supervisor sums them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["DEADLINES_S", "DeadlineShares", "DeadlineStats"]

DEADLINES_S = (600, 3_600, 86_400)  # T+10 min, T+1 h, T+24 h
_BANDS = len(DEADLINES_S) + 1  # the last band: later than T+24 h

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DeadlineShares:
    """Of the ``expected`` reads of the interval ending at ``interval_end``: the share in by
    each deadline (cumulative), and in at all."""

    interval_end: int
    by_10_min: float
    by_1_h: float
    by_24_h: float
    at_all: float


def mapped_zeros(path: Path, shape: tuple[int, ...], *, keep: bool) -> IntArray:
    """An int64 table in ``path``, memory-mapped for writing, that other processes read.

    With ``keep`` a table already there is taken as it is; otherwise it starts again at
    zeros. A new file is written aside and renamed into place, so a reader, or the next
    start after a SIGKILL, never finds it empty or half written."""
    if not (keep and path.exists()):
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with fresh.open("wb") as out:
            np.save(out, np.zeros(shape, dtype=np.int64))
        os.replace(fresh, path)
    table: IntArray = np.load(path, mmap_mode="r+")
    return table


class DeadlineStats:
    def __init__(self, step_s: int, slots: int = 192, path: Path | None = None) -> None:
        self.step_s = step_s
        self.slots = slots
        if path is None:
            self.table: IntArray = np.zeros((slots, 1 + _BANDS), dtype=np.int64)
        else:
            self.table = mapped_zeros(path, (slots, 1 + _BANDS), keep=True)
        # column 0: the interval number the slot holds (0: empty); then the bands

    def record(self, interval_ends: IntArray, now_s: float) -> None:
        """Reads of the intervals ending at ``interval_ends`` were stored at ``now_s``."""
        if interval_ends.size == 0:
            return
        numbers = interval_ends // self.step_s
        band = np.searchsorted(np.asarray(DEADLINES_S), now_s - interval_ends, side="left")
        # a batch holds few distinct intervals: count per (interval, band) with one bincount
        unique, inverse = np.unique(numbers, return_inverse=True)
        counts = np.bincount(
            inverse.ravel() * _BANDS + band, minlength=unique.size * _BANDS
        ).reshape(unique.size, _BANDS)
        for number, row in zip(unique.tolist(), counts, strict=True):
            s = number % self.slots
            if self.table[s, 0] != number:  # an old interval's slot: start it again
                self.table[s] = 0
                self.table[s, 0] = number
            self.table[s, 1:] += row

    @staticmethod
    def shares(tables: list[IntArray], step_s: int, expected: int) -> list[DeadlineShares]:
        """Per interval held in any of ``tables`` (summed), oldest first."""
        counts: dict[int, npt.NDArray[np.int64]] = {}
        for table in tables:
            for row in np.asarray(table):
                number = int(row[0])
                if number:
                    counts[number] = counts.get(number, np.zeros(_BANDS, np.int64)) + row[1:]
        out = []
        for number in sorted(counts):
            cum = np.cumsum(counts[number]) / max(expected, 1)
            out.append(
                DeadlineShares(
                    number * step_s,
                    float(min(cum[0], 1.0)),
                    float(min(cum[1], 1.0)),
                    float(min(cum[2], 1.0)),
                    float(min(cum[3], 1.0)),
                )
            )
        return out

    @staticmethod
    def overall(shares: list[DeadlineShares]) -> dict[str, float]:
        """Mean shares over the intervals, for a one-line summary."""
        if not shares:
            return {}
        return {
            "by_10_min": round(float(np.mean([s.by_10_min for s in shares])), 4),
            "by_1_h": round(float(np.mean([s.by_1_h for s in shares])), 4),
            "by_24_h": round(float(np.mean([s.by_24_h for s in shares])), 4),
        }
