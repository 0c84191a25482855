"""Finding what is missing, asking for it again, and checking that the totals add up.

Both checks run over the whole window in DuckDB and NumPy: a presence matrix of meters x
interval ends for gaps, grouped sums for reconciliation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from openami.bus.contract import Channel, CollectRequest
from openami.store.lake import IntervalLake

__all__ = ["Reconciliation", "find_gaps", "gap_requests", "stored_totals"]

IntArray = npt.NDArray[np.int64]
MAX_ENTRIES_PER_REQUEST = 96  # keeps one answer well inside a UDP datagram


def _present(lake: IntervalLake, meter_ids: IntArray, ends: IntArray) -> npt.NDArray[np.bool_]:
    """presence[m, t]: meter ``meter_ids[m]`` has an import-interval read for ``ends[t]``."""
    con = lake.connect()
    rows = con.execute(
        "SELECT meter_id, epoch(interval_end)::BIGINT FROM interval_reads "
        "WHERE channel = ? AND interval_end BETWEEN to_timestamp(?) AND to_timestamp(?)",
        [int(Channel.IMPORT_INTERVAL), int(ends[0]), int(ends[-1])],
    ).fetchnumpy()
    con.close()
    presence = np.zeros((meter_ids.size, ends.size), dtype=bool)
    got_meter = np.asarray(rows["meter_id"], dtype=np.int64)
    got_end = np.asarray(rows[list(rows.keys())[1]], dtype=np.int64)
    m = np.searchsorted(meter_ids, got_meter)
    t = np.searchsorted(ends, got_end)
    ok = (m < meter_ids.size) & (t < ends.size)
    ok[ok] &= (meter_ids[m[ok]] == got_meter[ok]) & (ends[t[ok]] == got_end[ok])
    presence[m[ok], t[ok]] = True
    return presence


def find_gaps(lake: IntervalLake, meter_ids: IntArray, ends: IntArray) -> npt.NDArray[np.bool_]:
    """missing[m, t] for sorted ``meter_ids`` and sorted interval ``ends``."""
    if meter_ids.size == 0 or ends.size == 0:
        return np.zeros((meter_ids.size, ends.size), dtype=bool)
    return ~_present(lake, meter_ids, ends)


def gap_requests(
    missing: npt.NDArray[np.bool_], meter_ids: IntArray, ends: IntArray
) -> list[CollectRequest]:
    """One individual-collection request per run of consecutive missing intervals of a meter
    (split so that no answer holds more than ``MAX_ENTRIES_PER_REQUEST`` entries)."""
    rows, cols = np.nonzero(missing)  # row-major: sorted by meter, then interval
    if rows.size == 0:
        return []
    starts = np.ones(rows.size, dtype=bool)
    starts[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1] + 1)
    first = np.flatnonzero(starts)
    last = np.r_[first[1:] - 1, rows.size - 1]
    requests = []
    for a, b in zip(first.tolist(), last.tolist(), strict=True):
        for lo in range(a, b + 1, MAX_ENTRIES_PER_REQUEST):
            hi = min(lo + MAX_ENTRIES_PER_REQUEST - 1, b)
            requests.append(
                CollectRequest(
                    int(meter_ids[rows[lo]]),
                    int(ends[cols[lo]]),
                    int(ends[cols[hi]]),
                    uuid.uuid4().hex,
                )
            )
    return requests


@dataclass(frozen=True)
class Reconciliation:
    """Stored interval sums per meter against the change of the cumulative registers."""

    meter_ids: IntArray
    import_sum_wh: IntArray
    export_sum_wh: IntArray
    import_register_delta_wh: IntArray  # from the stored registers: last - first
    export_register_delta_wh: IntArray
    register_intervals: IntArray  # how many stored intervals lie between the two registers

    def failures(self) -> IntArray:
        """Meters whose stored intervals after the first register read do not add up to the
        registers' change."""
        bad = (self.import_sum_wh != self.import_register_delta_wh) | (
            self.export_sum_wh != self.export_register_delta_wh
        )
        return np.asarray(self.meter_ids[bad], dtype=np.int64)


def stored_totals(
    lake: IntervalLake, meter_ids: IntArray, first_end: int, last_end: int
) -> Reconciliation:
    """For each meter: the register change between its reads at ``first_end`` and
    ``last_end``, and the sum of its stored intervals ending in (first_end, last_end]."""
    if meter_ids.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Reconciliation(meter_ids, empty, empty, empty, empty, empty)
    con = lake.connect()
    rows = con.execute(
        """
        WITH w AS (
            SELECT meter_id, channel, epoch(interval_end)::BIGINT AS t, value_wh
            FROM interval_reads
            WHERE interval_end BETWEEN to_timestamp(?) AND to_timestamp(?)
        )
        SELECT meter_id,
            coalesce(sum(value_wh) FILTER (WHERE channel = 1 AND t > ?), 0) AS imp,
            coalesce(sum(value_wh) FILTER (WHERE channel = 2 AND t > ?), 0) AS exp,
            coalesce(max(value_wh) FILTER (WHERE channel = 3 AND t = ?), -1)
              - coalesce(max(value_wh) FILTER (WHERE channel = 3 AND t = ?), -1) AS dimp,
            coalesce(max(value_wh) FILTER (WHERE channel = 4 AND t = ?), -1)
              - coalesce(max(value_wh) FILTER (WHERE channel = 4 AND t = ?), -1) AS dexp,
            count(*) FILTER (WHERE channel = 1 AND t > ?) AS n
        FROM w GROUP BY meter_id ORDER BY meter_id
        """,
        [
            first_end,
            last_end,
            first_end,
            first_end,
            last_end,
            first_end,
            last_end,
            first_end,
            first_end,
        ],
    ).fetchnumpy()
    con.close()
    got = np.asarray(rows["meter_id"], dtype=np.int64)
    out = {k: np.zeros(meter_ids.size, dtype=np.int64) for k in ("imp", "exp", "dimp", "dexp", "n")}
    out["dimp"][:] = -1
    out["dexp"][:] = -1
    pos = np.searchsorted(meter_ids, got)
    ok = (pos < meter_ids.size) & (meter_ids[np.minimum(pos, meter_ids.size - 1)] == got)
    for key in out:
        out[key][pos[ok]] = np.asarray(rows[key], dtype=np.int64)[ok]
    return Reconciliation(meter_ids, out["imp"], out["exp"], out["dimp"], out["dexp"], out["n"])
