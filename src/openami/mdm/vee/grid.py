"""The partition VEE works on: one day of many meters as a dense long grid.

Raw reads arrive long (one row per meter, channel, interval end, version) in whatever order
the pushes came. VEE turns a partition of them into one row per (meter, interval slot) with
the four channels side by side, and a row for every expected slot, present or not:

- long, not wide: a rule is one expression over a handful of columns, whatever the interval
  length (48 slots a day at 30 minutes, 96 at 15); a wide frame (one column per slot) would
  make every rule a 48-way horizontal expression and break when a meter's interval changes.
- dense: a missing interval is a row with nulls, so "missing" is ``is_null``, the previous
  interval is ``shift(1)`` and a run of zeros is a run-length id; no rule has to rebuild the
  calendar, and estimates have a row to land in.
- sorted by meter then slot, so per-meter windows (``over("meter_id")``) use sorted groups.

Building it is a scatter, not a join: each read's position is ``meter_row * slots + slot``,
with the meter's row found through a lookup table (or a binary search for sparse ids). The
builder takes reads batch by batch (a Parquet file or row group at a time): its memory is
the grid's (meters x slots), not the raw data's, so a partition streams from disk.

What a slot keeps per channel: the value of the highest version (the first arrival among
equal versions, as the raw lake keeps the first copy of an identity), and whether any two
copies disagreed. Reads stamped between slots give no value: a stamp on the 5-minute grid
but between two configured interval ends (a meter on a shorter interval) marks the slot
that contains it as ``sub``; a stamp off the 5-minute grid (a clock that slipped) marks the
nearest slot as ``skew``. A read stamped ahead of its receipt keeps its value and marks its
slot ``skew`` too. The interval that ends at the start of the day, from the previous
partition, is kept as the opening values (``open_*``) for the register check and for
interpolation across midnight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from openami.bus.contract import Channel

__all__ = ["CHANNELS", "GridBuilder", "GridInfo", "broadcast", "unix_seconds"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
# grid column per channel: interval energy both ways, then both registers
CHANNELS: dict[int, str] = {
    int(Channel.IMPORT_INTERVAL): "imp",
    int(Channel.EXPORT_INTERVAL): "exp",
    int(Channel.IMPORT_REGISTER): "imp_reg",
    int(Channel.EXPORT_REGISTER): "exp_reg",
}
_LUT_SPREAD = 8  # use a lookup table while the id range is at most this many times the count


@dataclass(frozen=True)
class GridInfo:
    """The shape of a grid: its day (Unix seconds of 00:00 UTC), interval and slot count."""

    day0: int
    step_s: int
    slots: int

    @property
    def per_hour(self) -> float:
        return 3600.0 / self.step_s


class _Slots:
    """Values of the four channels of ``n`` slots, interleaved (slot * 4 + channel - 1) so
    that one scatter places a batch of every channel. One more element at the end, the
    trash, takes the reads that give no value, so a batch is scattered without first
    being filtered. A slot holds a read when its version is above 0 (versions start at
    1): one array less to scatter into than a separate presence mask."""

    def __init__(self, n: int) -> None:
        self.size = 4 * n
        self.trash = 4 * n
        self.value = np.zeros(4 * n + 1, dtype=np.int64)
        self.version = np.zeros(4 * n + 1, dtype=np.int16)
        self.conflict = np.zeros(4 * n + 1, dtype=bool)
        # scratch for finding keys repeated within a batch (see ``_put``); never read
        # before being written in the same call
        self.owner = np.empty(4 * n + 1, dtype=np.int32)

    def column(self, channel: int) -> tuple[IntArray, BoolArray, BoolArray]:
        k = channel - 1
        return (
            np.ascontiguousarray(self.value[k : self.size : 4]),
            self.version[k : self.size : 4] > 0,
            np.ascontiguousarray(self.conflict[k : self.size : 4]),
        )


class GridBuilder:
    """Scatters raw reads of one day into the dense grid of ``meter_ids`` x slots."""

    def __init__(
        self,
        meter_ids: IntArray,
        info: GridInfo,
        *,
        grid_s: int = 300,
        future_tolerance_s: int = 300,
    ) -> None:
        ids = np.asarray(meter_ids, dtype=np.int64)
        if ids.size and np.any(np.diff(ids) <= 0):
            raise ValueError("meter_ids must be sorted and unique")
        if 86_400 % info.step_s or info.slots != 86_400 // info.step_s:
            raise ValueError(f"a day of {info.step_s} s intervals has {86_400 // info.step_s}")
        self.meter_ids = ids
        self.info = info
        self.grid_s = grid_s
        self.future_tolerance_s = future_tolerance_s
        m, s = ids.size, info.slots
        n = m * s
        self._slots = _Slots(n)
        self._opening = _Slots(m)  # the interval ending at 00:00, per meter
        self.status = np.zeros(n, dtype=np.int16)
        self.skew = np.zeros(n, dtype=bool)
        self.sub = np.zeros(n, dtype=bool)
        self.reads = 0
        self.placed = 0
        self.unknown_meter = 0
        self.outside = 0  # reads whose slot lies in another day
        self._lut: IntArray | None = None
        if ids.size and int(ids[-1] - ids[0]) < _LUT_SPREAD * ids.size + 1024:
            lut = np.full(int(ids[-1] - ids[0]) + 1, -1, dtype=np.int64)
            lut[ids - ids[0]] = np.arange(ids.size, dtype=np.int64)
            self._lut = lut

    # --- placing reads ------------------------------------------------------------------

    def _rows(self, meter_id: IntArray) -> IntArray:
        ids = self.meter_ids
        if ids.size == 0:
            return np.full(meter_id.shape, -1, dtype=np.int64)
        if self._lut is not None:
            rel = meter_id - ids[0]
            if rel.size and rel.min() >= 0 and rel.max() < self._lut.size:
                return np.asarray(self._lut[rel], dtype=np.int64)
            ok = (rel >= 0) & (rel < self._lut.size)
            return np.where(ok, self._lut[np.where(ok, rel, 0)], -1)
        pos = np.searchsorted(ids, meter_id)
        pos_c = np.minimum(pos, ids.size - 1)
        return np.where(ids[pos_c] == meter_id, pos_c, -1).astype(np.int64)

    def add(
        self,
        meter_id: npt.ArrayLike,
        channel: npt.ArrayLike,
        interval_end: npt.ArrayLike,
        value_wh: npt.ArrayLike,
        *,
        version: npt.ArrayLike | None = None,
        status: npt.ArrayLike | None = None,
        received_at: npt.ArrayLike | None = None,
    ) -> None:
        """Place a batch of raw reads (``interval_end`` and ``received_at`` in Unix
        seconds). Reads of channels other than the four electricity channels are ignored.

        The common case (every read of a known meter, on the grid, inside the day) takes
        a few whole-array operations; the exceptions are worked out on their own rows."""
        mid = np.asarray(meter_id, dtype=np.int64)
        ch = np.asarray(channel, dtype=np.int64)
        end = np.asarray(interval_end, dtype=np.int64)
        val = np.asarray(value_wh, dtype=np.int64)
        n = mid.size
        if version is None:
            ver = np.ones(n, np.int16)
        else:  # versions start at 1, and a stored version above 0 marks a read present
            ver = np.maximum(np.asarray(version, dtype=np.int16), np.int16(1))
        self.reads += n
        if n == 0:
            return
        info, step, slots = self.info, self.info.step_s, self.info.slots
        row = self._rows(mid)
        slot, rem = np.divmod(end - info.day0, step)
        off_grid = np.flatnonzero(rem)
        if off_grid.size:
            # a shorter legal interval: the slot containing it; a slipped clock: the nearest
            off = end[off_grid] - info.day0
            legal = off % self.grid_s == 0
            slot[off_grid] = np.where(legal, -(-off // step), (off + step // 2) // step)
        key = row * slots + slot
        no_value = [off_grid]  # rows that give no value: their key goes to the trash
        misplaced = np.zeros(0, dtype=np.int64)  # rows outside this grid altogether
        if row.min() < 0 or slot.min() < 0 or slot.max() >= slots:
            misplaced = np.flatnonzero((row < 0) | (slot < 0) | (slot >= slots))
            self._misplaced(misplaced, row, slot, rem, ch, val, ver)
            no_value.append(misplaced)
        if ch.min() < 1 or ch.max() > 4:
            no_value.append(np.flatnonzero((ch < 1) | (ch > 4)))

        def inside(idx: IntArray) -> IntArray:
            return idx if misplaced.size == 0 else np.setdiff1d(idx, misplaced)

        if off_grid.size:
            mark = inside(off_grid)
            legal = (end[mark] - info.day0) % self.grid_s == 0
            self.sub[key[mark[legal]]] = True
            self.skew[key[mark[~legal]]] = True
        if received_at is not None:
            rec = np.asarray(received_at, dtype=np.int64)
            ahead = inside(np.flatnonzero(end > rec + self.future_tolerance_s))
            self.skew[key[ahead]] = True
        if status is not None:
            st = np.asarray(status, dtype=np.int16)
            flagged = inside(np.flatnonzero(st))
            np.bitwise_or.at(self.status, key[flagged], st[flagged])
        key4 = key * 4 + ch - 1
        dropped = np.unique(np.concatenate(no_value))
        key4[dropped] = self._slots.trash
        self.placed += n - dropped.size
        _put(self._slots, key4, val, ver)

    def _misplaced(
        self,
        idx: IntArray,
        row: IntArray,
        slot: IntArray,
        rem: IntArray,
        ch: IntArray,
        val: IntArray,
        ver: npt.NDArray[np.int16],
    ) -> None:
        """Count reads of unknown meters and of other days; keep the opening interval."""
        known = row[idx] >= 0
        self.unknown_meter += int((~known).sum())
        opening = known & (slot[idx] == -1) & (rem[idx] == 0) & (ch[idx] >= 1) & (ch[idx] <= 4)
        self.outside += int((known & ~opening).sum())
        o = idx[opening]
        if o.size:
            _put(self._opening, row[o] * 4 + ch[o] - 1, val[o], ver[o])

    # --- the frame ----------------------------------------------------------------------

    def frame(self, *, release: bool = False) -> pl.DataFrame:
        """The grid, sorted by meter then slot (``release``: free the builder's arrays
        once copied, for a pass that is done adding). Columns: ``meter_id``, ``slot``,
        ``interval_end`` (Unix s), ``imp``/``exp`` (interval Wh, null where missing),
        ``imp_reg``/``exp_reg`` (register Wh at the interval end), ``status`` (OR of the
        AMR status of the slot's reads), ``conflict_imp``/``conflict_exp``, ``skew``,
        ``sub``, and per meter (repeated) ``open_imp``/``open_exp``/``open_imp_reg``/
        ``open_exp_reg`` for the interval ending at 00:00."""
        info = self.info
        m, s = self.meter_ids.size, info.slots
        slot = np.tile(np.arange(s, dtype=np.int16), m)
        cols: dict[str, pa.Array] = {
            "meter_id": pa.array(np.repeat(self.meter_ids, s)),
            "slot": pa.array(slot),
            "interval_end": pa.array(info.day0 + slot.astype(np.int64) * info.step_s),
        }
        conflicts = {}
        for c, name in CHANNELS.items():
            value, present, conflict = self._slots.column(c)
            cols[name] = pa.array(value, mask=~present)
            conflicts[name] = conflict
        cols["status"] = pa.array(self.status)
        cols["conflict_imp"] = pa.array(conflicts["imp"])
        cols["conflict_exp"] = pa.array(conflicts["exp"])
        cols["skew"] = pa.array(self.skew)
        cols["sub"] = pa.array(self.sub)
        for c, name in CHANNELS.items():
            value, present, _ = self._opening.column(c)
            cols[f"open_{name}"] = pa.array(np.repeat(value, s), mask=np.repeat(~present, s))
        frame = pl.from_arrow(pa.table(cols))
        if release:
            self._slots = _Slots(0)
            self._opening = _Slots(0)
            self.status = np.zeros(0, dtype=np.int16)
            self.skew = np.zeros(0, dtype=bool)
            self.sub = np.zeros(0, dtype=bool)
        assert isinstance(frame, pl.DataFrame)
        return frame.with_columns(pl.col("meter_id").set_sorted())


def _put(slots: _Slots, key: IntArray, val: IntArray, ver: npt.NDArray[np.int16]) -> None:
    """Store reads at ``key``: the highest version wins, the first arrival among equals
    (a value already stored arrived first); ``conflict`` records that copies of one
    identity disagreed.

    Everything is scattered at once; then the few keys that got several reads, or that
    already held one, are settled again from their candidates (saved before the scatter)."""
    if key.size == 0:
        return
    value, version = slots.value, slots.version
    seen = version[key] > 0
    # Keys repeated within the batch, without counting every key of the grid: each row
    # writes its own index at its key; a row that reads back another index shares its key.
    owner = slots.owner
    index = np.arange(key.size, dtype=np.int32)
    owner[key] = index
    repeated = key[owner[key] != index]
    if repeated.size == 0 and not seen.any():
        value[key], version[key] = val, ver
        return
    settle = seen | np.isin(key, repeated) if repeated.size else seen
    rows = np.flatnonzero(settle)
    keys = np.unique(key[rows])
    old = keys[version[keys] > 0]
    old_val, old_ver = value[old].copy(), version[old].copy()
    value[key], version[key] = val, ver
    # candidates per key: what was stored (arrival -1), then the batch's rows in order
    cand_key = np.concatenate([old, key[rows]])
    cand_val = np.concatenate([old_val, val[rows]])
    cand_ver = np.concatenate([old_ver, ver[rows]]).astype(np.int64)
    arrival = np.concatenate([np.full(old.size, -1, dtype=np.int64), rows])
    order = np.lexsort((arrival, -cand_ver, cand_key))
    cand_key, cand_val, cand_ver = cand_key[order], cand_val[order], cand_ver[order]
    starts = np.flatnonzero(np.r_[True, cand_key[1:] != cand_key[:-1]])
    winners = cand_key[starts]
    value[winners] = cand_val[starts]
    version[winners] = cand_ver[starts]
    low = np.minimum.reduceat(cand_val, starts)
    high = np.maximum.reduceat(cand_val, starts)
    slots.conflict[winners[low != high]] = True


def unix_seconds(column: pa.ChunkedArray | pa.Array) -> IntArray:
    """Unix seconds from an Arrow timestamp column of any unit (Parquet keeps second
    timestamps as milliseconds) or from plain integers."""
    kind = column.type
    raw = column.cast(pa.int64()).to_numpy()
    if pa.types.is_timestamp(kind):
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[kind.unit]
        return np.asarray(raw // per_second, dtype=np.int64)
    return np.asarray(raw, dtype=np.int64)


def broadcast(
    grid: pl.DataFrame,
    per_meter: pl.DataFrame,
    columns: Mapping[str, pl.DataType],
    slots: int,
) -> pl.DataFrame:
    """Add per-meter columns of ``per_meter`` (keyed by ``meter_id``) to the grid, repeated
    over each meter's slots (null for meters it does not list, and for columns it lacks).
    The join is on the meters only; the repetition is a gather by position, since the
    grid's meters are sorted and each has ``slots`` rows."""
    ids = pl.DataFrame({"meter_id": grid["meter_id"].gather_every(slots)})
    have = [c for c in columns if c in per_meter.columns]
    keyed = per_meter.select("meter_id", *have).unique("meter_id", keep="last")
    aligned = ids.join(keyed, on="meter_id", how="left", maintain_order="left")
    index = pl.Series(np.repeat(np.arange(ids.height, dtype=np.int64), slots))
    out = [
        (pl.col(c).cast(dtype) if c in have else pl.lit(None, dtype=dtype)).alias(c)
        for c, dtype in columns.items()
    ]
    expanded = aligned.with_columns(out).select(list(columns)).select(pl.all().gather(index))
    return grid.hstack(expanded)
